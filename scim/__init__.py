"""The SCIM 2.0 protocol, mounted at /scim/v2."""

from flask import Blueprint, Flask, request

from scim.auth import require_token
from scim.errors import ScimError, register_error_handlers

PREFIX = "/scim/v2"
JSON_TYPES = {"application/scim+json", "application/json", ""}

bp = Blueprint("scim", __name__, url_prefix=PREFIX)


def _before_request():
    """Authenticate everything under /scim/v2 (unknown paths included), then check the body's media type."""
    if not (request.path == PREFIX or request.path.startswith(PREFIX + "/")):
        return
    require_token()
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype not in JSON_TYPES:
        # RFC 7644 §3.1: SCIM bodies are application/scim+json (application/json is accepted too).
        raise ScimError(415, f"unsupported media type {request.mimetype!r}; send application/scim+json")


def register(app: Flask) -> None:
    from scim import groups, users  # noqa: F401  (routes attach themselves to bp)

    app.before_request(_before_request)
    app.register_blueprint(bp)
    register_error_handlers(app)
