"""Database faults and graceful restarts, against real servers on 127.0.0.1.

The outage test starts its own PostgreSQL, stops it in the middle of a bounded load and starts it again;
it runs in the PostgreSQL pass of `make test`, and in the PgBouncer pass with a PgBouncer of its own in
front. Every loop here is bounded in time and count.
"""

import os
import signal
import threading
import time

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, select, text

from app import create_app
from models import SQLITE_BEGIN, User, db
from tests.conftest import BACKEND, DATABASE_SETTINGS, ON_POSTGRESQL, TOKEN, user_body
from tests.pg import ThrowawayPgBouncer, ThrowawayPostgres
from tests.servers import gunicorn, request

MIGRATIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")
postgres_only = pytest.mark.skipif(not ON_POSTGRESQL, reason="runs in the PostgreSQL and PgBouncer passes")
# Behind PgBouncer, a request waits for a server connection at most this long (query_wait_timeout), as it
# waits for a connection to PostgreSQL itself at most SCIM_DB_CONNECT_TIMEOUT.
OUTAGE_WAIT = 2


class Load:
    """Sequential creates, one client per thread, until stopped or a bound is reached."""

    def __init__(self, port, clients=2, max_requests=4000, max_seconds=60):
        self.port, self.results, self.stop = port, [], threading.Event()
        self.deadline = time.monotonic() + max_seconds
        self.threads = [threading.Thread(target=self._run, args=(c, max_requests // clients))
                        for c in range(clients)]

    def _run(self, client, count):
        for i in range(count):
            if self.stop.is_set() or time.monotonic() > self.deadline:
                return
            name = f"load-{client}-{i}@example.com"
            started = time.monotonic()
            try:
                status, body, _ = request(self.port, "POST", "/scim/v2/Users", user_body(name), timeout=30)
            except OSError as exc:  # a dropped connection is a failure of the service too: recorded
                status, body = type(exc).__name__, None
            self.results.append((name, status, body, started, time.monotonic() - started))
            if status != 201:
                time.sleep(0.05)  # a client backs off on errors, so the count bound lasts through the outage

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


@pytest.fixture
def own_postgres():
    """A migrated PostgreSQL of the test's own, and the URL the service reaches it by: in the PgBouncer pass,
    through a PgBouncer of the test's own."""
    server = ThrowawayPostgres().create()
    bouncer = None
    try:
        url = server.url
        if BACKEND == "pgbouncer":
            bouncer = ThrowawayPgBouncer(server.port, query_wait_timeout=str(OUTAGE_WAIT)).start()
            url = bouncer.url()
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, **DATABASE_SETTINGS})
        with app.app_context():
            upgrade(directory=MIGRATIONS)
            db.engine.dispose()
        yield server, url
    finally:
        if bouncer is not None:
            bouncer.remove()
        server.remove()


@postgres_only
def test_database_outage_gives_quick_503s_then_recovers_without_restart(own_postgres):
    server, url = own_postgres
    with gunicorn(url, SCIM_DB_CONNECT_TIMEOUT=OUTAGE_WAIT) as (port, _), Load(port) as load:
        time.sleep(1.5)
        server.stop("fast")
        stopped = time.monotonic()
        time.sleep(2.0)
        server.start()
        restarted = time.monotonic()
        time.sleep(2.5)
    statuses = {status for _, status, _, _, _ in load.results}
    assert statuses <= {201, 503}, statuses
    failures = [r for r in load.results if r[1] == 503]
    assert failures, "the outage was not observed"
    assert all(body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "503"
               for _, _, body, _, _ in failures)
    assert max(elapsed for *_, elapsed in failures) < 5, "a request hung while the database was down"
    recovered = [started for _, status, _, started, _ in load.results if status == 201 and started > restarted]
    after = [status for _, status, _, started, _ in load.results if started > restarted]
    assert recovered, f"no request succeeded after the database came back: {after[:20]} of {len(after)}"
    engine = create_engine(server.url)
    with engine.connect() as connection:
        stored = set(connection.scalars(select(User.user_name)))
    engine.dispose()
    assert {name for name, status, *_ in load.results if status == 201} <= stored  # no 2xx lost
    assert not {name for name, status, *_ in load.results if status == 503} & stored  # no partial write
    print(f"\noutage: {len(load.results)} requests, {len(failures)} answered 503, "
          f"first success {min(recovered) - restarted:.2f}s after restart ({restarted - stopped:.1f}s down)")


def test_slow_database_gives_503_not_a_hung_request(app, make_app, make_user):
    """A lock held elsewhere outlasts the statement timeout (PostgreSQL) or the lock wait (SQLite)."""
    user = make_user("locked@example.com")
    impatient = make_app(SCIM_DB_STATEMENT_TIMEOUT_MS=300, SCIM_DB_CONNECT_TIMEOUT=1).test_client()
    blocker = db.engine.connect().execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})  # SQLite: the write lock
    try:
        blocker.execute(text("SELECT id FROM users WHERE id = :id" + (" FOR UPDATE" if ON_POSTGRESQL
                                                                      else "")), {"id": user["id"]})
        started = time.monotonic()
        response = impatient.patch(f"/scim/v2/Users/{user['id']}", headers={"Authorization": f"Bearer {TOKEN}"},
                                   json={"Operations": [{"op": "replace", "value": {"active": False}}]})
        elapsed = time.monotonic() - started
    finally:
        blocker.rollback()
        blocker.close()
    assert response.status_code == 503 and response.json["status"] == "503"
    assert response.headers["Retry-After"] and elapsed < 5
    after = impatient.patch(f"/scim/v2/Users/{user['id']}", headers={"Authorization": f"Bearer {TOKEN}"},
                            json={"Operations": [{"op": "replace", "value": {"active": False}}]})
    assert after.status_code == 200 and after.json["active"] is False


@postgres_only
def test_a_database_restart_costs_no_failed_request_though_no_connection_is_pinged(own_postgres):
    """The pooled connection the database dropped fails its first statement; the request runs once more on a
    new connection (a read, and a write that never reached COMMIT, leave nothing behind)."""
    server, url = own_postgres
    with gunicorn(url, workers=1, SCIM_DB_PRE_PING=0) as (port, _):
        assert request(port, "POST", "/scim/v2/Users", user_body("before@example.com"))[0] == 201
        server.stop("fast")
        server.start()
        status, body, _ = request(port, "POST", "/scim/v2/Users", user_body("after@example.com"))
        assert status == 201, body
        server.stop("fast")
        server.start()
        status, body, _ = request(port, "GET", '/scim/v2/Users?filter=userName eq "after@example.com"'
                                  .replace(" ", "%20"))
        assert status == 200 and body["totalResults"] == 1, body
    engine = create_engine(url)
    with engine.connect() as connection:
        assert sorted(connection.scalars(select(User.user_name))) == ["after@example.com", "before@example.com"]
    engine.dispose()


def test_reload_and_stop_drop_no_request(migrated, app):
    with gunicorn(migrated) as (port, server):
        results = []

        def traffic():
            for i in range(150):
                results.append(request(port, "POST", "/scim/v2/Users", user_body(f"reload{i}@example.com"))[0])
        client = threading.Thread(target=traffic)
        client.start()
        time.sleep(0.3)
        server.send_signal(signal.SIGHUP)  # new workers start, old ones finish what they have
        client.join(timeout=120)
        assert results == [201] * 150
        in_flight = threading.Thread(target=lambda: results.append(
            request(port, "POST", "/scim/v2/Users", user_body("last@example.com"))[0]))
        in_flight.start()
        time.sleep(0.01)
        server.send_signal(signal.SIGTERM)  # graceful: the request in flight still gets its answer
        in_flight.join(timeout=60)
    assert results[-1] == 201 and len(results) == 151

