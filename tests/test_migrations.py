"""The committed migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

import os
import warnings
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.exc import IntegrityError, SAWarning

from app import create_app
from models import DEFAULT_TENANT_ID, Tenant, db
from tests.conftest import AUTH, DATABASE_SETTINGS, TOKEN


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


MIGRATIONS = os.path.join(os.path.dirname(__file__), "..", "migrations")
BEFORE_TENANTS = "0004"


def insert_rows(tables: dict) -> None:
    """A deployment's data as it was before tenants: two users with emails, a group with one member, a
    token and an audit row."""
    at = datetime(2026, 11, 1, tzinfo=UTC)
    resource = {"created": at, "last_modified": at, "version": 1, "external_id": None}
    db.session.execute(tables["users"].insert(), [
        {**resource, "id": f"user-{n}", "data": {"userName": f"u{n}@example.com"}, "user_name": f"u{n}@example.com",
         "display_name": None, "given_name": None, "family_name": None, "active": True, "password_hash": None}
        for n in (1, 2)])
    db.session.execute(tables["user_emails"].insert(), [
        {"user_id": f"user-{n}", "value": f"u{n}@example.com", "type": "work", "is_primary": True} for n in (1, 2)])
    db.session.execute(tables["groups"].insert(), [
        {**resource, "id": "group-1", "data": {"displayName": "Team"}, "display_name": "Team"}])
    db.session.execute(tables["link"].insert(), [{"group_id": "group-1", "user_id": "user-1", "display": None}])
    db.session.execute(tables["tokens"].insert(), [
        {"name": "okta", "kind": "bearer", "basic_user": None, "secret_hash": "0" * 64, "created": at,
         "expires": None, "last_used": None, "revoked": None}])
    db.session.execute(tables["audit"].insert(), [
        {"at": at, "token_name": "okta", "client_ip": "192.0.2.1", "user_agent": None, "method": "GET",
         "path": "/scim/v2/Users", "resource_type": "Users", "resource_id": None, "operation": "list",
         "status": 200, "scim_type": None, "duration_ms": 1.0, "request_body": None}])
    db.session.commit()


def counts() -> dict:
    return {table: db.session.scalar(text(f"SELECT count(*) FROM {table}"))
            for table in ("users", "user_emails", "groups", "link", "tokens", "audit")}


def test_the_tenants_migration_moves_a_populated_database_into_the_default_tenant_and_back(empty_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database, "SCIM_BEARER_TOKEN": TOKEN,
                      "SCIM_AUDIT_FLUSH_SECONDS": 0, **DATABASE_SETTINGS})
    with app.app_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # SQLite's expression indexes, reflected for batch mode
        warnings.simplefilter("ignore", SAWarning)
        upgrade(directory=MIGRATIONS, revision=BEFORE_TENANTS)
        before = MetaData()
        before.reflect(bind=db.engine)
        insert_rows(before.tables)
        expected = counts()
        db.session.remove()  # no read of the old schema stays open across the migration
        upgrade(directory=MIGRATIONS)
        # Every row kept (SQLite rebuilds altered tables: no cascade may take the link or email rows with it),
        # and every one the default tenant's.
        assert counts() == expected
        for table in ("users", "groups", "tokens", "audit"):
            assert db.session.scalars(text(f"SELECT DISTINCT tenant_id FROM {table}")).all() == [DEFAULT_TENANT_ID]
        assert db.session.execute(text("SELECT id, name FROM tenants")).all() == [(DEFAULT_TENANT_ID, "default")]
        db.session.commit()
        listed = app.test_client().get("/scim/v2/Groups/group-1", headers=AUTH)
        assert listed.status_code == 200 and [m["value"] for m in listed.get_json()["members"]] == ["user-1"]
        assert app.test_client().get("/scim/v2/Users", headers=AUTH).get_json()["totalResults"] == 2
        db.session.remove()
        app.extensions["scim.hotpath"].close()
        downgrade(directory=MIGRATIONS, revision=BEFORE_TENANTS)
        after = counts()
        columns = {column["name"] for column in inspect(db.engine).get_columns("users")}
        assert after == {**expected, "audit": after["audit"]} and after["audit"] >= expected["audit"]
        assert "tenant_id" not in columns and "tenants" not in inspect(db.engine).get_table_names()
        with pytest.raises(IntegrityError):  # userName unique across the table again
            db.session.execute(before.tables["users"].insert(), [
                {"id": "user-3", "data": {}, "user_name": "U1@example.com", "created": datetime.now(UTC),
                 "last_modified": datetime.now(UTC), "version": 1}])
            db.session.commit()
        db.session.rollback()
        db.engine.dispose()


def test_the_tenants_migration_goes_down_only_with_the_default_tenant_alone(empty_database, capfd):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database, **DATABASE_SETTINGS})
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        db.session.add(Tenant(name="acme"))
        db.session.commit()
        with pytest.raises(SystemExit):  # Flask-Migrate logs the migration's error and exits 1
            downgrade(directory=MIGRATIONS, revision=BEFORE_TENANTS)
        assert "delete every tenant but 'default'" in capfd.readouterr().err
        db.session.rollback()
        assert db.session.scalar(text("SELECT count(*) FROM tenants")) == 2
        db.session.remove()
        db.engine.dispose()
