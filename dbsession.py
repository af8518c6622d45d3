"""The PostgreSQL session state the service relies on (statement_timeout, asynchronous commit) and psycopg's
server-side prepared statements, for a direct connection and through a pooler in transaction mode.

Direct, the settings are sent once per connection, as the libpq `options` startup parameter. Behind PgBouncer
in transaction pooling mode, each transaction runs on whichever server connection is free, so a session
keeps nothing: PgBouncer refuses `options` ("unsupported startup parameter"), a session-level SET would leak
to the other clients of that server connection, and a statement psycopg prepared on one server connection
is missing on the next (PgBouncer before 1.21, or without max_prepared_statements). With
SCIM_DB_TRANSACTION_POOLING each transaction sets the settings for itself (set_config(..., true), which is
SET LOCAL: it ends with the transaction) and nothing is prepared. docs/database.md#behind-pgbouncer.
"""

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

PSYCOPG_PREPARE_THRESHOLD = 5  # psycopg's own default: a query is prepared after five executions


def session_settings(config) -> dict[str, str]:
    """Asynchronous commit by default (reads and the audit trail); data changes ask for a durable commit
    (models.durable_commit). A statement that runs, or waits for a lock, too long is cancelled (503)."""
    return {"statement_timeout": str(int(config["SCIM_DB_STATEMENT_TIMEOUT_MS"])), "synchronous_commit": "off"}


def prepare_threshold(config) -> int | None:
    """psycopg's prepare_threshold: executions before a query is prepared on the server; None: never."""
    threshold = config["SCIM_DB_PREPARE_THRESHOLD"]
    if threshold is None:
        return None if config["SCIM_DB_TRANSACTION_POOLING"] else PSYCOPG_PREPARE_THRESHOLD
    return threshold or None


def connect_args(config) -> dict:
    """psycopg's connect arguments for the session state, beside engine_options' own."""
    args = {"prepare_threshold": prepare_threshold(config)}
    if not config["SCIM_DB_TRANSACTION_POOLING"]:
        args["options"] = " ".join(f"-c {name}={value}" for name, value in session_settings(config).items())
    return args


def set_per_transaction(engine: Engine, config) -> None:
    """Behind a pooler in transaction mode: every transaction begins by setting the session state for itself,
    in one round trip. A connection in autocommit has no transaction to set them in: its statements get the
    server's defaults for the role (ALTER ROLE ... SET, docs/database.md#behind-pgbouncer)."""
    if not config["SCIM_DB_TRANSACTION_POOLING"] or engine.dialect.name != "postgresql":
        return
    statement = "SELECT " + ", ".join(f"set_config('{name}', '{value}', true)"
                                      for name, value in session_settings(config).items())

    @event.listens_for(engine, "begin")
    def _set_session_state(connection: Connection) -> None:
        if not connection.connection.dbapi_connection.autocommit:
            connection.exec_driver_sql(statement)
