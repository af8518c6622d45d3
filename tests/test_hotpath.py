"""The hot path (scim/hotpath.py) answers the reads IdPs send most exactly as Flask's path does, and the
number of round trips each hot request costs is locked in. PostgreSQL only: on SQLite Flask answers all."""

import contextlib
import re
import tempfile

import psycopg
import pytest
from sqlalchemy import event, select
from werkzeug.test import Client

from models import AuditEntry, db
from tests.conftest import AUTH, BACKEND, ON_POSTGRESQL, user_body

pytestmark = pytest.mark.skipif(not ON_POSTGRESQL, reason="the hot path is PostgreSQL's")
# Behind PgBouncer in transaction mode, each transaction first sets its session state (dbsession.py).
SESSION_STATE = 1 if BACKEND == "pgbouncer" else 0


@pytest.fixture
def people(api, make_user, make_group):
    barbara = make_user("Barbara.Jensen@example.com", externalId="bjensen")
    make_user("other@example.com", externalId="other")
    make_group("Engineering", [barbara["id"]])
    make_group("Admins", [barbara["id"]])
    return barbara


def hot_and_flask(app, path, headers=AUTH):
    """The same request answered by the app (hot path first) and by Flask alone: (hot, flask, answered here)."""
    hot_path = app.extensions["scim.hotpath"]
    before = hot_path.answered
    client = {"REMOTE_ADDR": "192.0.2.7", "HTTP_USER_AGENT": "Okta SCIM Client 1.0.0"}
    hot = Client(app.wsgi_app).get(path, headers=headers, environ_base=client)
    answered = hot_path.answered - before
    flask = Client(hot_path.fallback).get(path, headers=headers, environ_base=client)
    return hot, flask, answered


def audit_rows(count):
    rows = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(count)).all()
    return [{k: v for k, v in vars(row).items() if k not in ("_sa_instance_state", "id", "at", "duration_ms")}
            for row in rows]


@pytest.mark.parametrize("path", [
    "/scim/v2/Users/{id}",
    '/scim/v2/Users?filter=userName eq "barbara.jensen@EXAMPLE.com"',
    '/scim/v2/Users?filter=externalId eq "bjensen"',
    '/scim/v2/Users?filter=externalId eq "BJENSEN"',  # externalId is caseExact: no match
    '/scim/v2/Users?filter=userName eq "nobody@example.com"&startIndex=1&count=10',
    '/scim/v2/Users?filter=userName%20eq%20%22Barbara.Jensen%40example.com%22&count=1',
    '/scim/v2/Users?filter=username EQ "Barbara.Jensen@example.com"&startIndex=2',
    "/scim/v2/Users",
    "/scim/v2/Users?startIndex=1&count=100",
    "/scim/v2/Users?startIndex=2&count=1",
    "/scim/v2/Users?startIndex=50&count=10",
    "/scim/v2/Users?count=0",
    f"/scim/v2/Users?startIndex={10**30}",  # past any integer column: an empty page, capped in Python
])
def test_the_hot_path_answers_byte_for_byte_as_flask_does(app, people, path):
    hot, flask, answered = hot_and_flask(app, path.format(id=people["id"]))
    assert answered == 1
    assert hot.status_code == flask.status_code == 200
    assert hot.headers.to_wsgi_list() == flask.headers.to_wsgi_list()
    assert hot.get_data() == flask.get_data()
    hot_row, flask_row = audit_rows(2)[::-1]
    assert hot_row == flask_row and hot_row["status"] == 200 and hot_row["token_name"] == "SCIM_BEARER_TOKEN"


def test_a_cursor_walk_is_answered_byte_for_byte_as_flask_does(app, people, monkeypatch):
    """RFC 9865 pages of all users, forwards and back: each page's body (cursors included: they are issued at
    one frozen second here) and audit row are those Flask's path gives."""
    monkeypatch.setattr("scim.listing.time", type("Frozen", (), {"time": staticmethod(lambda: 1_800_000_000.0)}))
    monkeypatch.setattr("scim.requests.time", type("Frozen", (), {"time": staticmethod(lambda: 1_800_000_000.0)}))
    seen, path, pages = [], "/scim/v2/Users?cursor=&count=1", []
    for _ in range(3):  # two users: two pages forwards, then back from the last
        hot, flask, answered = hot_and_flask(app, path)
        assert answered == 1
        assert hot.status_code == flask.status_code == 200
        assert hot.headers.to_wsgi_list() == flask.headers.to_wsgi_list()
        assert hot.get_data() == flask.get_data()
        hot_row, flask_row = audit_rows(2)[::-1]
        assert hot_row == flask_row and hot_row["status"] == 200
        body = hot.get_json()
        pages.append(body)
        seen += [user["id"] for user in body["Resources"]]
        going = body.get("nextCursor") if len(pages) < 2 else body.get("previousCursor")
        path = f"/scim/v2/Users?cursor={going}&count=1"
    assert pages[0]["totalResults"] == 2 and "previousCursor" not in pages[0] and "nextCursor" not in pages[1]
    assert seen[0] == seen[2] != seen[1] and people["id"] in seen
    for path in ("/scim/v2/Users?cursor=", "/scim/v2/Users?count=0&cursor="):
        hot, flask, answered = hot_and_flask(app, path)
        assert (answered, hot.status_code, hot.get_data()) == (1, 200, flask.get_data())


@pytest.mark.parametrize("path, headers", [
    ("/scim/v2/Users/{id}?attributes=userName", AUTH),
    ("/scim/v2/Users/{id}", {**AUTH, "If-None-Match": 'W/"1"'}),
    ("/scim/v2/Users/no-such-user", AUTH),
    ('/scim/v2/Users?filter=displayName eq "Barbara"', AUTH),
    ('/scim/v2/Users?filter=userName eq "x"&sortBy=userName', AUTH),
    ('/scim/v2/Users?filter=userName eq "x"&count=abc', AUTH),
    ("/scim/v2/Users?cursor=not-one-we-issued", AUTH),
    ("/scim/v2/Users?cursor=&startIndex=1", AUTH),
    ('/scim/v2/Users?cursor=&filter=userName eq "x"', AUTH),
    ("/scim/v2/Users?cursor=&count=abc", AUTH),
    ("/scim/v2/Users?cursor=&sortBy=userName", AUTH),
    ("/scim/v2/Users?startIndex=1&startIndex=2", AUTH),
    ("/scim/v2/Users/{id}", {"Authorization": "Bearer wrong-token-of-some-length"}),
    ("/scim/v2/Users/{id}", {}),
])
def test_anything_else_is_answered_by_flask(app, people, path, headers):
    hot, flask, answered = hot_and_flask(app, path.format(id=people["id"]), headers)
    assert answered == 0
    assert hot.status_code == flask.status_code
    assert hot.status_code != 500


def test_a_stored_token_takes_the_hot_path_once_this_worker_holds_it(app, people):
    from tests.test_tokens import new_token
    secret = new_token(app, "okta")
    headers = {"Authorization": f"Bearer {secret}"}
    path = f"/scim/v2/Users/{people['id']}"
    first, _, answered_first = hot_and_flask(app, path, headers)  # read from the database, by Flask
    second, _, answered_second = hot_and_flask(app, path, headers)
    assert (first.status_code, second.status_code, answered_first, answered_second) == (200, 200, 0, 1)
    assert audit_rows(1)[0]["token_name"] == "okta"


@contextlib.contextmanager
def round_trips(app):
    """Counts the round trips to PostgreSQL of every connection the app opens (libpq's protocol trace: one
    ReadyForQuery a round trip)."""
    trace = tempfile.TemporaryFile()

    def on_connect(dbapi_connection, _record):
        dbapi_connection.pgconn.trace(trace.fileno())
        dbapi_connection.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
    with app.app_context():
        event.listen(db.engine, "connect", on_connect)
    counter = type("Counter", (), {})()

    def count():
        trace.seek(0)
        return len(re.findall(rb"^B\t\d+\tReadyForQuery", trace.read(), re.MULTILINE))
    counter.count = count
    try:
        yield counter
    finally:
        trace.close()


@pytest.mark.parametrize("path, expected", [
    ("/scim/v2/Users/{id}", 2),  # the user with its groups; the audit row. No BEGIN, COMMIT or ping.
    ('/scim/v2/Users?filter=userName eq "barbara.jensen@example.com"', 2),  # the page with its total; audit
    ("/scim/v2/Users?cursor={cursor}&count=1", 2),  # an RFC 9865 page with its total; audit
])
def test_a_hot_read_costs_two_round_trips(make_app, people, path, expected):
    other = make_app(SCIM_AUDIT_PRUNE_ONE_IN=0, SCIM_ACCESS_LOG=False)
    with round_trips(other) as trips:
        client = other.test_client()
        first = client.get("/scim/v2/Users?cursor=&count=1", headers=AUTH)  # connects
        assert first.status_code == 200
        path = path.format(id=people["id"], cursor=first.get_json()["nextCursor"])
        before = trips.count()
        assert client.get(path, headers=AUTH).status_code == 200
        assert trips.count() - before == expected
        assert other.extensions["scim.hotpath"].answered == 2


@pytest.mark.parametrize("method, path, body, expected", [
    # Flask's path, for a read: no BEGIN, COMMIT or ping either.
    ("GET", "/scim/v2/Groups?count=10", None, 3),  # the page; its members; the audit row
    # A create: BEGIN, the user with its emails (one statement, which also turns the durable commit on), the
    # audit row with the user's event (one statement), COMMIT.
    ("POST", "/scim/v2/Users", user_body("new@example.com"), 4 + SESSION_STATE),
    # Okta's profile push with the emails stored: BEGIN, one UPDATE (with the groups, the row it replaces
    # and the durable commit), the audit row with the event, COMMIT.
    ("PUT", "/scim/v2/Users/{id}", user_body("Barbara.Jensen@example.com", given="Babs", externalId="bjensen"),
     4 + SESSION_STATE),
    # Okta's and Entra ID's deactivation: the same.
    ("PATCH", "/scim/v2/Users/{id}", {"Operations": [{"op": "replace", "value": {"active": False}}]},
     4 + SESSION_STATE),
    ("PATCH", "/scim/v2/Users/{id}", {"Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
     4 + SESSION_STATE),
])
def test_round_trips_of_flask_requests(make_app, people, method, path, body, expected):
    other = make_app(SCIM_AUDIT_PRUNE_ONE_IN=0, SCIM_ACCESS_LOG=False)
    with round_trips(other) as trips:
        client = other.test_client()
        client.get("/scim/v2/Groups?count=1", headers=AUTH)  # connects
        before = trips.count()
        response = client.open(path.format(id=people["id"]), method=method, json=body, headers=AUTH)
        assert response.status_code in (200, 201), response.get_json()
        assert trips.count() - before == expected


def test_an_unexpected_failure_on_the_hot_path_leaves_the_answer_to_flask(app, people, monkeypatch):
    import scim.hotpath

    def explode(*_args):
        raise RuntimeError("secret internals")
    monkeypatch.setattr(scim.hotpath, "render_user", explode)
    hot, flask, answered = hot_and_flask(app, f"/scim/v2/Users/{people['id']}")
    assert answered == 0
    assert hot.status_code == 200 and hot.get_data() == flask.get_data()
