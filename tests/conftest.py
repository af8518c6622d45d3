"""Test fixtures: an app per test on a fresh database, SQLite, a throwaway PostgreSQL, or that PostgreSQL
behind a throwaway PgBouncer in transaction pooling mode.

TEST_DATABASE=sqlite (default), postgresql or pgbouncer picks the backend; `make test` runs the suite once
with each. TEST_DATABASE_URL points the PostgreSQL run at an existing server instead of starting one.
"""

import contextlib
import os
import uuid
from json import dumps

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, delete, event, make_url, select, text

from app import create_app
from config import Settings
from models import (
    DEFAULT_TENANT_ID,
    Admin,
    AdminLogin,
    AuditEntry,
    Delivery,
    Event,
    Group,
    Link,
    Tenant,
    Token,
    User,
    UserEmail,
    Webhook,
    db,
)
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
def empty_database(database_url, tmp_path):
    """A database that exists and holds nothing: `manage.py db upgrade` was forgotten."""
    if BACKEND == "sqlite":
        yield "sqlite:///" + str(tmp_path / "empty.db")
        return
    name = "empty_" + uuid.uuid4().hex[:12]
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def app(migrated):
    app = create_app({"SQLALCHEMY_DATABASE_URI": migrated, "SCIM_BEARER_TOKEN": TOKEN, "TESTING": True,
                      "SCIM_AUDIT_PRUNE_ONE_IN": 0,  # no random pruning: statement counts stay exact
                      # every audit row written with its request, so that a test reads it at once
                      # (tests/test_batching.py covers the batches)
                      "SCIM_AUDIT_FLUSH_SECONDS": 0,
                      **DATABASE_SETTINGS})
    with app.app_context():
        for model in (Delivery, Webhook, Event, Link, UserEmail, User, Group, Token, AuditEntry, Admin, AdminLogin):
            db.session.execute(delete(model))
        db.session.execute(delete(Tenant).where(Tenant.id != DEFAULT_TENANT_ID))  # the default always exists
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

    def __init__(self, client, auth: dict | None = None):
        self.client, self.auth = client, auth or AUTH  # the default tenant's bootstrap token, unless given

    def request(self, method, path, json=None, headers=None, **kw):
        all_headers = {**self.auth, **(headers or {})}
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
def tenant_api(app, client):
    """tenant_api(name): an Api with the token `<name>-token` of a new tenant called `name`."""
    def make(name: str) -> Api:
        from scim.tenants import create_tenant
        from scim.tokens import create_token
        _token, secret = create_token(f"{name}-token", tenant_id=create_tenant(name).id)
        return Api(client, {"Authorization": f"Bearer {secret}"})
    return make


def pytest_generate_tests(metafunc):
    """A module with ON_EVERY_TENANT = True runs each test that uses `api` twice: with the default tenant's
    bootstrap token, and with the token of a second tenant."""
    if getattr(metafunc.module, "ON_EVERY_TENANT", False) and "api" in metafunc.fixturenames:
        metafunc.parametrize("api_tenant", ["default", "second"], indirect=True)


@pytest.fixture
def api_tenant(request):
    return getattr(request, "param", "default")


@pytest.fixture
def api(client, api_tenant, tenant_api):
    return Api(client) if api_tenant == "default" else tenant_api(api_tenant)


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


@pytest.fixture
def events_match_the_directory(app):
    """After the test: each tenant's events, delivered to a webhook receiver on 127.0.0.1 by the delivery
    worker, are signed, are the tenant's feed, and replayed in order give the directory as it now is: every
    user's and group's last event holds what the database holds, the deleted ones end with a `.deleted`,
    and the member events add up to the link table."""
    yield
    from scim import delivery
    from scim.events import as_json
    from scim.webhooks import add_webhook
    from tests.receiver import Receiver, assert_sent_as_in_the_feed

    db.session.rollback()
    app.config.update(SCIM_WEBHOOK_ALLOWED_HOSTS=("127.0.0.1",), SCIM_WEBHOOK_POLL_SECONDS=0.05)
    for tenant in db.session.scalars(select(Tenant)).all():
        with Receiver() as receiver:
            webhook, secret = add_webhook(tenant.id, receiver.url)
            webhook.after_txid = webhook.after_id = 0  # every event the tenant has, not only new ones
            db.session.commit()
            delivery.run(app, once=True)
            sent = receiver.verified(secret)
        feed = [as_json(e, tenant.name) for e in db.session.scalars(
            select(Event).where(Event.tenant_id == tenant.id).order_by(Event.txid, Event.id))]
        assert_sent_as_in_the_feed(sent, feed)
        check_replay(tenant.id, feed)


def check_replay(tenant_id: int, feed: list[dict]) -> None:
    resources, members = {}, set()
    for change in feed:
        kind, resource_id = change["type"], change["resource"]["id"]
        if kind.endswith(".deleted"):
            resources[resource_id] = None
            members = {pair for pair in members if resource_id not in pair}
        elif kind == "group.member_added":
            members.add((resource_id, change["data"]["member"]["value"]))
        elif kind == "group.member_removed":
            members.discard((resource_id, change["data"]["member"]["value"]))
        else:
            resources[resource_id] = change["data"]
    users = {u.id: u for u in db.session.scalars(select(User).where(User.tenant_id == tenant_id))}
    groups = {g.id: g for g in db.session.scalars(select(Group).where(Group.tenant_id == tenant_id))}
    assert {rid for rid, data in resources.items() if data is not None} == set(users) | set(groups)
    from scim.serialize import group_to_scim, user_to_scim

    def compared(resource):  # a user's groups and a group's version change with memberships, which have
        return {k: v for k, v in resource.items() if k not in ("groups", "meta")}  # events of their own
    for found in [*users.values(), *groups.values()]:
        data = resources[found.id]
        base = data["meta"]["location"].rsplit("/", 2)[0] + "/"  # what the change's request was sent to
        now = user_to_scim(found, [], base) if found.id in users else group_to_scim(found, None, base)
        assert compared(data) == compared(now)
    links = set(db.session.execute(select(Link.group_id, Link.user_id).join(Group, Group.id == Link.group_id)
                                   .where(Group.tenant_id == tenant_id)).all())
    assert members == links
