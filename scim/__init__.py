"""The SCIM 2.0 protocol, mounted at /scim/v2."""

import functools

from flask import Blueprint, Flask, request

from models import autocommit_reads, begin_write, db, once_more_if_dropped
from scim import events
from scim.audit import record, start_clock
from scim.auth import require_token
from scim.errors import unsupported_media_type
from scim.handlers import register_error_handlers

PREFIX = "/scim/v2"
JSON_TYPES = {"application/scim+json", "application/json", ""}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
READS = {"GET", "HEAD"}
SECURITY_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

bp = Blueprint("scim", __name__, url_prefix=PREFIX)


def is_scim_request() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def _before_request():
    """Authenticate everything under /scim/v2 (unknown paths included), then check the body's media type."""
    if not is_scim_request():
        return
    start_clock()
    events.begin()
    db.session.info.update(reads_only=False, committing=False)
    if request.method in READS:
        autocommit_reads()
    require_token()
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype not in JSON_TYPES:
        # RFC 7644 §3.1: SCIM bodies are application/scim+json (application/json is accepted too).
        raise unsupported_media_type(f"unsupported media type {request.mimetype!r}; send application/scim+json")
    if request.method in ("POST", "PUT", "PATCH"):
        # The whole body before any lock: a client that sends it slowly holds its worker, not the database.
        request.get_data(cache=True)
    if request.method in WRITES:
        begin_write()  # SQLite: ends the authentication's read; the request's transaction starts writing


def _options(response):
    """OPTIONS answers like the rest of the API: the methods in `Allow`, no body (Flask's default is an
    empty text/html 200)."""
    if request.method == "OPTIONS" and response.status_code == 200:
        response.status_code = 204
        response.set_data(b"")
        del response.headers["Content-Type"]
    return response


def _after_request(response):
    response.headers.update(SECURITY_HEADERS)
    return record(_options(response)) if is_scim_request() else response


# Views that commit more than once: a retry would repeat what the first attempt committed. (Each operation of
# a Bulk request is dispatched as a request of its own, with its own retry.)
COMMITS_MORE_THAN_ONCE = {"scim.bulk"}


def _once_more_if_dropped(view):
    """The view runs again, on a new connection, if the database had dropped the one it used."""
    @functools.wraps(view)
    def run(*args, **kwargs):
        def attempt():
            events.begin()  # what a failed attempt noted is not written
            return view(*args, **kwargs)
        return once_more_if_dropped(attempt)
    return run


def register(app: Flask) -> None:
    from scim import bulk, discovery, groups, openapi, search, users  # noqa: F401  (routes attach themselves to bp)

    app.before_request(_before_request)
    app.after_request(_after_request)
    app.register_blueprint(bp)
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith(bp.name + ".") and endpoint not in COMMITS_MORE_THAN_ONCE:
            app.view_functions[endpoint] = _once_more_if_dropped(view)
    register_error_handlers(app)
