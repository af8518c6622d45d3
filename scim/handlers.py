"""The one place that renders every failure (ours, werkzeug's, the database's) as a SCIM error response."""

import logging

from flask import Flask, current_app, g, jsonify
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from dbcheck import Problem, diagnose
from metrics import count_database_error
from models import db
from scim.errors import (
    SCIM_MEDIA_TYPE,
    ScimError,
    error_body,
    internal_error,
    invalid_value,
    precondition_failed,
    unavailable,
    uniqueness,
)

log = logging.getLogger(__name__)


def error_response(error: ScimError):
    # A request is one transaction: whatever it wrote before failing is undone here.
    try:
        db.session.rollback()
    except Exception:  # a lost connection must not turn the error into a 500
        log.warning("rollback failed", exc_info=True)
    response = jsonify(error_body(error.status, error.detail, error.scim_type))
    response.status_code = error.status
    response.mimetype = SCIM_MEDIA_TYPE
    response.headers.update(error.headers)
    return response


def _from_http(exc: HTTPException):
    # werkzeug's own 404/405/413/415...: same status, SCIM body, never an HTML page.
    headers = {}
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    return error_response(ScimError(exc.code or 500, exc.description or exc.name, headers=headers))


def _from_integrity(exc: IntegrityError):
    # A unique index refused the write (two userNames differing only in case, even from two workers at once).
    log.info("integrity error: %s", exc.orig)
    return error_response(uniqueness("a resource with this unique attribute already exists"))


def _from_stale(exc: StaleDataError):
    # Another request changed or deleted the resource between our read and our write (the version moved).
    return error_response(precondition_failed("the resource was modified by another request; read it again and "
                                              "retry"))


# Errors the request itself causes, which a retry would only repeat: PostgreSQL's "program limit exceeded"
# class (SQLSTATE 54xxx: statement too complex, too many columns...) and SQLite's size limits.
REQUEST_TOO_LARGE = ("too large", "too many", "too complex")


def _caused_by_the_request(exc: Exception) -> bool:
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(getattr(orig, "diag", None), "sqlstate", None) or getattr(orig, "sqlstate", None)
    if sqlstate:
        return sqlstate.startswith("54")
    return any(words in str(orig).lower() for words in REQUEST_TOO_LARGE)


def _from_database(exc: Exception):
    # Told apart only now that something failed: the request path pays nothing for it.
    problem = diagnose(exc, current_app.config["SQLALCHEMY_DATABASE_URI"], db.session)
    if problem:
        return _from_misconfigured(problem)
    if isinstance(exc, ProgrammingError):  # on PostgreSQL, a statement of ours the database refused: a bug
        count_database_error("statement")
        return _from_unexpected(exc)
    return _from_unavailable(exc)


def _from_misconfigured(problem: Problem):
    # The database does not exist or its schema is behind the code: only the operator can fix that, so no
    # Retry-After (RFC 9110 §10.2.3) for the IdP to keep retrying on, and no audit row (nowhere to keep it).
    log.error("database configuration error: %s", problem.message)
    count_database_error("misconfigured")
    g.database_misconfigured = True
    return error_response(unavailable(problem.detail))


def _from_unavailable(exc: Exception):
    # Down, restarting, unreachable past the connect timeout, over the statement timeout, or the pool is
    # exhausted: the client may retry, and the pool renews the connections the database dropped.
    if _caused_by_the_request(exc):
        count_database_error("limit")
        log.info("request beyond a database limit: %s", exc.orig)
        return error_response(invalid_value("the request is too large or complex for the database"))
    count_database_error("unavailable")
    log.error("database unavailable: %s", getattr(exc, "orig", exc))
    return error_response(unavailable("the database is unavailable; retry later", retry_after=5))


def _from_data(exc: DataError):
    # A value the database refused (a safety net: the schema checks should have caught it first).
    log.info("data error: %s", exc.orig)
    return error_response(invalid_value("a value was refused by the database (too long or invalid)"))


def _from_unexpected(exc: Exception):
    log.exception("unhandled error")
    return error_response(internal_error())


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ScimError, error_response)
    app.register_error_handler(HTTPException, _from_http)
    app.register_error_handler(IntegrityError, _from_integrity)
    app.register_error_handler(OperationalError, _from_database)
    app.register_error_handler(InterfaceError, _from_database)
    app.register_error_handler(ProgrammingError, _from_database)
    app.register_error_handler(PoolTimeout, _from_unavailable)
    app.register_error_handler(DataError, _from_data)
    app.register_error_handler(StaleDataError, _from_stale)
    app.register_error_handler(Exception, _from_unexpected)
