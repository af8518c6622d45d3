"""The hot path's reads have their audit rows written in batches off the request path (scim/batching.py):
none is lost when a worker stops gracefully, and a batch holds exactly the rows the requests would have had.
PostgreSQL only, where the hot path answers."""

import time

import pytest
from sqlalchemy import func, select

from models import AuditEntry, db
from scim.batching import AuditBatch
from tests.conftest import AUTH, ON_POSTGRESQL
from tests.servers import gunicorn, request

postgres_only = pytest.mark.skipif(not ON_POSTGRESQL, reason="the hot path is PostgreSQL's")
READS = 200


def read_rows() -> int:
    db.session.rollback()  # a fresh snapshot
    return db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.method == "GET"))


@postgres_only
@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_a_graceful_stop_loses_no_audit_row(app, migrated, make_user, worker_class):
    user = make_user("kept@example.com")
    # Rows would wait a minute: only the workers' exit can have written them.
    with gunicorn(migrated, workers=2, SCIM_AUDIT_FLUSH_SECONDS=60, GUNICORN_WORKER_CLASS=worker_class) as (
            port, server):
        statuses = [request(port, "GET", f"/scim/v2/Users/{user['id']}")[0] for _ in range(READS)]
        assert statuses == [200] * READS
        assert read_rows() < READS  # waiting in the workers' batches
        server.terminate()  # SIGTERM: gunicorn's graceful stop
        server.wait(timeout=60)
    assert read_rows() == READS


@postgres_only
def test_rows_are_written_within_the_flush_period(app, migrated, make_user):
    user = make_user("soon@example.com")
    with gunicorn(migrated, workers=1, SCIM_AUDIT_FLUSH_SECONDS=0.2) as (port, _):
        assert request(port, "GET", f"/scim/v2/Users/{user['id']}")[0] == 200
        deadline = time.monotonic() + 5
        while read_rows() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert read_rows() == 1


@postgres_only
def test_a_batch_holds_the_rows_the_requests_would_have_had(make_app, make_user):
    user = make_user("same@example.com")
    batched = make_app(SCIM_AUDIT_FLUSH_SECONDS=60)
    direct = make_app(SCIM_AUDIT_FLUSH_SECONDS=0)
    path = f"/scim/v2/Users/{user['id']}"
    environ = {"REMOTE_ADDR": "192.0.2.1", "HTTP_USER_AGENT": "Okta SCIM Client 1.0.0"}
    for other in (direct, batched):
        assert other.test_client().get(path, headers=AUTH, environ_base=environ).status_code == 200
    with batched.app_context():
        assert read_rows() == 1  # the direct one
        batched.extensions["scim.hotpath"].batch.flush()
        rows = db.session.scalars(select(AuditEntry).where(AuditEntry.method == "GET").order_by(AuditEntry.id)).all()
    ignored = ("_sa_instance_state", "id", "at", "duration_ms")
    assert len(rows) == 2
    assert [{k: v for k, v in vars(r).items() if k not in ignored} for r in rows][0] == \
        {k: v for k, v in vars(rows[1]).items() if k not in ignored}


def test_rows_wait_while_the_database_is_away_and_are_written_after():
    written, failing = [], [True]

    def write(rows):
        if failing[0]:
            raise OSError("database away")
        written.extend(rows)
    batch = AuditBatch(write, seconds=60)
    batch.add({"n": 1})
    batch.add({"n": 2})
    batch.flush()
    assert written == [] and len(batch.rows) == 2
    failing[0] = False
    batch.add({"n": 3})
    batch.flush()
    assert [row["n"] for row in written] == [1, 2, 3] and batch.rows == []
