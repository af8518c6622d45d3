"""The bearer-token check that runs before every SCIM request."""

import hmac

from flask import current_app, request

from scim.errors import ScimError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="scim"'}


def _refuse(detail: str) -> ScimError:
    # RFC 6750 §3: a missing or wrong token is 401 with a Bearer challenge (never 403, never a crash).
    return ScimError(401, detail, headers=CHALLENGE)


def presented_token() -> str | None:
    """The token after `Bearer ` (scheme case-insensitive), or None when the header is missing or of another scheme."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_token() -> None:
    expected = current_app.config.get("SCIM_BEARER_TOKEN")
    if not expected:
        raise _refuse("no bearer token is configured on this server (set SCIM_BEARER_TOKEN)")
    if "Authorization" not in request.headers:
        raise _refuse("missing Authorization header")
    token = presented_token()
    if token is None:
        raise _refuse("the Authorization header must be 'Bearer <token>'")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise _refuse("invalid bearer token")
