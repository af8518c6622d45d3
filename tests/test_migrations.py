"""The committed migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import SAWarning

from models import db


def test_migrations_match_the_models(app):
    with db.engine.connect() as connection, warnings.catch_warnings():
        # Alembic cannot reflect SQLite's expression indexes (lower(user_name)) and says so in a warning.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", SAWarning)
        diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert diff == []


def test_link_table_has_the_pair_as_primary_key_and_cascading_foreign_keys(app):
    inspector = inspect(db.engine)
    assert inspector.get_pk_constraint("link")["constrained_columns"] == ["group_id", "user_id"]
    foreign_keys = {fk["referred_table"]: fk for fk in inspector.get_foreign_keys("link")}
    assert foreign_keys["users"]["options"].get("ondelete") == "CASCADE"
    assert foreign_keys["groups"]["options"].get("ondelete") == "CASCADE"
