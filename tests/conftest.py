"""Test fixtures: an app per test on a fresh database, SQLite, a throwaway PostgreSQL, or that PostgreSQL
behind a throwaway PgBouncer in transaction pooling mode.

TEST_DATABASE=sqlite (default), postgresql or pgbouncer picks the backend; `make test` runs the suite once
with each. TEST_DATABASE_URL points the PostgreSQL run at an existing server instead of starting one.
"""

import contextlib
import os
from json import dumps

import pytest
from flask_migrate import upgrade
from sqlalchemy import delete, event

from app import create_app
from config import Settings
from models import AuditEntry, Group, Link, Token, User, UserEmail, db
from tests.pg import throwaway_pgbouncer, throwaway_postgres

TOKEN = "test-token-7d1f0c9e-4b2a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BACKEND = os.environ.get("TEST_DATABASE", "sqlite")
BACKENDS = ("sqlite", "postgresql", "pgbouncer")
ON_POSTGRESQL = BACKEND != "sqlite"  # straight, or through PgBouncer
# The settings the service needs on the pass's database, as environment variables (for the servers the tests
# start) and as app.config values (for the apps they build from a dict): behind PgBouncer, the pooler's.
DATABASE_ENVIRONMENT = {"SCIM_DB_TRANSACTION_POOLING": "1"} if BACKEND == "pgbouncer" else {}
DATABASE_SETTINGS = {key: value for key, value in Settings.from_env(DATABASE_ENVIRONMENT).to_config("").items()
                     if key in DATABASE_ENVIRONMENT}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if BACKEND == "sqlite":
        yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "scim.db")
    elif BACKEND == "postgresql":
        if os.environ.get("TEST_DATABASE_URL"):
            yield os.environ["TEST_DATABASE_URL"]
        else:
            with throwaway_postgres() as url:
                yield url
    elif BACKEND == "pgbouncer":
        with throwaway_pgbouncer() as (through_pgbouncer, _direct):
            yield through_pgbouncer
    else:
        raise pytest.UsageError(f"TEST_DATABASE must be one of {', '.join(BACKENDS)}, not {BACKEND!r}")


@pytest.fixture(scope="session")
def migrated(database_url):
    """The schema, built once per session by the committed migrations (not by create_all)."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SCIM_BEARER_TOKEN": TOKEN, **DATABASE_SETTINGS})
    with app.app_context():
        upgrade(directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))
        db.engine.dispose()
    return database_url


@pytest.fixture
def app(migrated):
    app = create_app({"SQLALCHEMY_DATABASE_URI": migrated, "SCIM_BEARER_TOKEN": TOKEN, "TESTING": True,
                      "SCIM_AUDIT_PRUNE_ONE_IN": 0,  # no random pruning: statement counts stay exact
                      # every audit row written with its request, so that a test reads it at once
                      # (tests/test_batching.py covers the batches)
                      "SCIM_AUDIT_FLUSH_SECONDS": 0,
                      **DATABASE_SETTINGS})
    with app.app_context():
        for model in (Link, UserEmail, User, Group, Token, AuditEntry):
            db.session.execute(delete(model))
        db.session.commit()
        yield app
        db.session.remove()
        app.extensions["scim.hotpath"].close()
        db.engine.dispose()


@pytest.fixture
def make_app(migrated):
    """Another app on the test database, with its own settings; its connections are closed afterwards."""
    made = []

    def make(**settings):
        other = create_app({"SQLALCHEMY_DATABASE_URI": migrated, "SCIM_BEARER_TOKEN": TOKEN, **DATABASE_SETTINGS,
                            "SCIM_AUDIT_FLUSH_SECONDS": 0, **settings})
        made.append(other)
        return other
    yield make
    for other in made:
        with other.app_context():
            other.extensions["scim.hotpath"].close()
            db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


class Api:
    """The test client with the bearer token and the /scim/v2 prefix, so tests read like the requests."""

    def __init__(self, client):
        self.client = client

    def request(self, method, path, json=None, headers=None, **kw):
        all_headers = {**AUTH, **(headers or {})}
        if json is not None:
            kw["data"] = dumps(json)
            all_headers.setdefault("Content-Type", "application/scim+json")
        return self.client.open("/scim/v2" + path, method=method, headers=all_headers, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.request("PUT", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture
def api(client):
    return Api(client)


def user_body(user_name, given="Barbara", family="Jensen", **extra):
    """A create body shaped like Okta's (docs/idp-behaviour.md#okta-requests-action-by-action)."""
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "active": True,
    }
    body.update(extra)
    return body


@pytest.fixture
def make_user(api):
    def make(user_name, **extra):
        response = api.post("/Users", json=user_body(user_name, **extra))
        assert response.status_code == 201, response.json
        return response.json
    return make


@pytest.fixture
def make_group(api):
    def make(display_name, members=()):
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": display_name,
                "members": [{"value": m} for m in members]}
        response = api.post("/Groups", json=body)
        assert response.status_code == 201, response.json
        return response.json
    return make


class StatementCounter:
    count = 0


@pytest.fixture
def count_statements(app):
    """`with count_statements() as c:` counts the SQL statements sent to the database inside the block."""
    @contextlib.contextmanager
    def counting():
        counter = StatementCounter()

        def on_execute(*_args):
            counter.count += 1
        event.listen(db.engine, "before_cursor_execute", on_execute)
        try:
            yield counter
        finally:
            event.remove(db.engine, "before_cursor_execute", on_execute)
    return counting
