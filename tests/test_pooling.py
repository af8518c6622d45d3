"""PostgreSQL's session state (statement_timeout, asynchronous commit) and prepared statements, on a direct
connection and through PgBouncer in transaction pooling mode (SCIM_DB_TRANSACTION_POOLING), where a client's
transactions share server connections with other clients'; and the answer when a pooler is in front but the
settings do not say so."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

import dbsession
from dbcheck import classify
from models import db
from tests.conftest import AUTH, BACKEND, ON_POSTGRESQL

postgresql_only = pytest.mark.skipif(not ON_POSTGRESQL, reason="PostgreSQL's session settings")
pgbouncer_only = pytest.mark.skipif(BACKEND != "pgbouncer", reason="PgBouncer's answer: runs in the PgBouncer pass")
STATE = text("SELECT current_setting('statement_timeout'), current_setting('synchronous_commit'), pg_backend_pid()")


@pytest.mark.parametrize(("pooling", "threshold", "expected"), [
    (False, None, {"prepare_threshold": 5, "options": "-c statement_timeout=15000 -c synchronous_commit=off"}),
    (False, 0, {"prepare_threshold": None, "options": "-c statement_timeout=15000 -c synchronous_commit=off"}),
    (True, None, {"prepare_threshold": None}),
    (True, 0, {"prepare_threshold": None}),
    (True, 5, {"prepare_threshold": 5}),  # PgBouncer 1.21 or later with max_prepared_statements
])
def test_connect_arguments_carry_the_session_settings_only_on_a_direct_connection(pooling, threshold, expected):
    config = {"SCIM_DB_TRANSACTION_POOLING": pooling, "SCIM_DB_PREPARE_THRESHOLD": threshold,
              "SCIM_DB_STATEMENT_TIMEOUT_MS": 15000}
    assert dbsession.connect_args(config) == expected


@postgresql_only
def test_every_transaction_has_the_statement_timeout_and_asynchronous_commit(app):
    for _ in range(3):
        assert db.session.execute(STATE).one()[:2] == ("15s", "off")
        db.session.commit()


@postgresql_only
def test_one_apps_statement_timeout_never_reaches_another_apps_transactions(app, make_app):
    """Behind PgBouncer the two apps' transactions run on the same server connections, one after the other."""
    impatient = make_app(SCIM_DB_STATEMENT_TIMEOUT_MS=300)
    pids = {"impatient": set(), "patient": set()}
    for _ in range(5):
        with impatient.app_context():
            timeout, commit, pid = db.session.execute(STATE).one()
            db.session.commit()
        assert (timeout, commit) == ("300ms", "off")
        pids["impatient"].add(pid)
        timeout, commit, pid = db.session.execute(STATE).one()
        db.session.commit()
        assert (timeout, commit) == ("15s", "off")
        pids["patient"].add(pid)
    assert bool(pids["impatient"] & pids["patient"]) is (BACKEND == "pgbouncer")


@postgresql_only
def test_queries_are_prepared_on_the_server_only_on_a_direct_connection(app):
    query = text("SELECT count(*) FROM users WHERE user_name = :name")
    for _ in range(dbsession.PSYCOPG_PREPARE_THRESHOLD + 1):
        db.session.execute(query, {"name": "nobody@example.com"})
    prepared = db.session.scalar(text("SELECT count(*) FROM pg_prepared_statements"))
    assert (prepared > 0) is (BACKEND == "postgresql")


@pgbouncer_only
def test_pgbouncer_without_the_pooling_setting_is_a_configuration_error_that_names_it(make_app):
    unannounced = make_app(SCIM_DB_TRANSACTION_POOLING=False, TESTING=True).test_client()
    ready = unannounced.get("/readyz")
    assert ready.status_code == 503 and "set SCIM_DB_TRANSACTION_POOLING=1" in ready.json["detail"]
    response = unannounced.get("/scim/v2/Users", headers=AUTH)
    assert response.status_code == 503 and "Retry-After" not in response.headers
    assert response.json["detail"] == ("the connection pooler refuses the session settings sent at connect: "
                                       "set SCIM_DB_TRANSACTION_POOLING=1")


@pgbouncer_only
def test_a_statement_prepared_behind_pgbouncer_is_lost_and_named_as_a_configuration_error(app, make_app):
    """PgBouncer before 1.21: the statement psycopg prepared is on the server connection of an earlier
    transaction, which another client holds now."""
    eager = make_app(SCIM_DB_PREPARE_THRESHOLD=1)  # prepared on its second execution
    query = text("SELECT count(*) FROM users WHERE user_name = :name")
    with eager.app_context(), db.engine.connect() as preparer, db.engine.connect() as other:
        for _ in range(2):
            preparer.execute(query, {"name": "nobody@example.com"})
        preparer.commit()  # its server connection goes back to PgBouncer, the statement with it
        other.execute(text("SELECT 1"))  # and is handed to the next transaction (PgBouncer reuses it first)
        with pytest.raises(DBAPIError) as lost:
            preparer.execute(query, {"name": "nobody@example.com"})
        other.rollback()
    problem = classify(lost.value, eager.config["SQLALCHEMY_DATABASE_URI"])
    assert problem.detail == ("the connection pooler does not keep prepared statements: "
                              "set SCIM_DB_PREPARE_THRESHOLD=0")
