"""What is wrong with the database, told apart: it does not answer, it does not exist, its schema is
behind the committed migrations, or a connection pooler in transaction mode sits in front of it unannounced.

Only an outage is worth retrying; the other two are a new operator's mistakes that wait for them. Nothing
here runs on a request's way in: the SCIM error handlers and the CLI classify an error that already
happened, and /readyz reads the schema revision, one small query.
"""

import os
import re
from dataclasses import dataclass
from functools import cache

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
UPGRADE = "run python manage.py db upgrade"
# The server's FATAL message when a connection names an unknown database. psycopg reports no SQLSTATE for
# a failed connection, so 3D000 only arrives from other drivers.
MISSING_DATABASE = re.compile(r'database "([^"]*)" does not exist')
# PostgreSQL 42P01 undefined_table and 42703 undefined_column; SQLite says it in words.
UNDEFINED = ("42P01", "42703")
SQLITE_UNDEFINED = ("no such table", "no such column")
# PgBouncer refuses the libpq `options` a direct connection carries ("unsupported startup parameter"); and in
# transaction mode before 1.21, a statement prepared on one server connection is missing on the next (26000
# invalid_sql_statement_name) or its name is taken there (42P05 duplicate_prepared_statement).
POOLER_REFUSES_OPTIONS = "unsupported startup parameter: options"
PREPARED_STATEMENT_LOST = ("26000", "42P05")


@dataclass(frozen=True)
class Problem:
    kind: str     # "unreachable" (transient: retry), "missing", "unmigrated" or "pooled" (wait for the operator)
    detail: str   # for HTTP answers: names the database, not the host it lives on
    message: str  # for the CLI and the log: where, and what to do about it


@cache
def head_revisions() -> tuple[str, ...]:
    """The head(s) of migrations/versions, read once per process."""
    return tuple(ScriptDirectory(MIGRATIONS).get_heads())


def one_line(exc: BaseException) -> str:
    """The driver's own message, on one line (psycopg's span two or three)."""
    return " ".join(str(getattr(exc, "orig", None) or exc).split())


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(getattr(orig, "diag", None), "sqlstate", None) or getattr(orig, "sqlstate", None)


def is_undefined(exc: BaseException) -> bool:
    """A table or column the code expects is not there: the schema is behind the code."""
    return _sqlstate(exc) in UNDEFINED or one_line(exc).startswith(SQLITE_UNDEFINED)


def _missing(exc: BaseException, url: str) -> Problem | None:
    where = make_url(url)
    if where.get_backend_name() == "sqlite":
        folder = os.path.dirname(os.path.abspath(where.database or ""))
        if where.database and "unable to open database file" in one_line(exc) and not os.path.isdir(folder):
            detail = f"database {where.database} cannot be opened: the folder {folder} does not exist"
            return Problem("missing", detail, f"{detail} (DATABASE_URL): create the folder or correct DATABASE_URL")
        return None
    found = MISSING_DATABASE.search(one_line(exc))
    if not found and _sqlstate(exc) != "3D000":
        return None
    name = found.group(1) if found else where.database
    host, port = where.host or "localhost", where.port or 5432
    createdb = " ".join(["createdb", f"-h {host}", f"-p {port}"] + ([f"-U {where.username}"] if where.username
                                                                   else []) + [name])
    detail = f"database {name!r} does not exist"
    return Problem("missing", f"{detail}: create it, then {UPGRADE}",
                   f"{detail} on {host}:{port} (DATABASE_URL): create it with `{createdb}`, then {UPGRADE}")


def _pooled(exc: BaseException) -> Problem | None:
    """A pooler in transaction mode that the settings do not announce (docs/database.md#behind-pgbouncer)."""
    if POOLER_REFUSES_OPTIONS in one_line(exc):
        detail = "the connection pooler refuses the session settings sent at connect: set SCIM_DB_TRANSACTION_POOLING=1"
    elif _sqlstate(exc) in PREPARED_STATEMENT_LOST:
        detail = "the connection pooler does not keep prepared statements: set SCIM_DB_PREPARE_THRESHOLD=0"
    else:
        return None
    return Problem("pooled", detail, f"{detail} ({one_line(exc)})")


def classify(exc: BaseException, url: str) -> Problem | None:
    """The operator's mistake behind a database error, or None (an outage, a timeout, or a bug of ours)."""
    problem = _missing(exc, url) or _pooled(exc)
    if problem:
        return problem
    if is_undefined(exc):
        detail = f"the database schema is not migrated: {UPGRADE}"
        return Problem("unmigrated", detail, detail)
    return None


def unreachable(exc: BaseException) -> Problem:
    return Problem("unreachable", "the database does not answer", f"cannot connect to the database: {one_line(exc)}")


def schema_problem(connection) -> Problem | None:
    """None when the database is at the head of migrations/versions. Raises what the database raises when it
    cannot be read; on PostgreSQL the caller rolls back, since a missing alembic_version ends the transaction."""
    try:
        at = tuple(connection.scalars(text("SELECT version_num FROM alembic_version")))
    except DBAPIError as exc:
        if not is_undefined(exc):
            raise
        at = ()  # never migrated: Alembic creates the table with the first revision
    heads = head_revisions()
    if set(at) == set(heads):
        return None
    if not all(_known(revision) for revision in at):
        detail = (f"the database schema is at revision {', '.join(at)}, which migrations/versions does not have "
                  f"(head {', '.join(heads)}): deploy the code that matches the database")
    else:
        where = f"at revision {', '.join(at)}" if at else "no revision applied"
        detail = f"the database schema is not migrated ({where}, head {', '.join(heads)}): {UPGRADE}"
    return Problem("unmigrated", detail, detail)


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory(MIGRATIONS).get_revision(revision) is not None
    except CommandError:  # an id migrations/versions does not have
        return False


def readiness(session, url: str) -> Problem | None:
    """/readyz: None when the database answers and its schema is at the head of the migrations."""
    try:
        return schema_problem(session)
    except SQLAlchemyError as exc:
        return classify(exc, url) or unreachable(exc)


def diagnose(exc: BaseException, url: str, session) -> Problem | None:
    """classify(), with the schema's revision read when a table or column was missing (on the error path only:
    one more query). The session is rolled back first."""
    problem = classify(exc, url)
    if problem is None or problem.kind != "unmigrated":
        return problem
    try:
        session.rollback()
        return schema_problem(session) or problem
    except SQLAlchemyError:
        return problem
