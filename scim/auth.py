"""The credential check that runs before every SCIM request.

Accepted: `Authorization: Bearer <token>` (the scheme in any case) for a token from the store or the
SCIM_BEARER_TOKEN bootstrap token; `Basic` for a stored user/password pair; and, when
SCIM_ACCEPT_BARE_TOKEN is on, the bare token with no scheme (Okta's existing-app header auth sends the
header exactly as the admin typed it). Everything else is 401 with a Bearer challenge (RFC 6750 §3).
"""

import base64
import binascii
import hmac
from datetime import timedelta

from flask import current_app, g, request
from sqlalchemy import func, select

from models import AuditEntry, db, utcnow
from scim.errors import ScimError, too_many_requests, unauthorized
from scim.tokens import basic_secret, find, mark_used, state

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="scim"'}


def _refuse(reason: str, detail: str) -> ScimError:
    g.auth_name = reason
    _slow_down_repeated_failures()
    return unauthorized(detail, CHALLENGE)


def _slow_down_repeated_failures() -> None:
    """Too many refused requests from one address in the window: 429 until the window has passed.

    Counted from the audit trail, so every worker and machine sees the same count. Only requests whose
    credentials fail are refused this way: a valid token is never locked out, from any address.
    """
    limit = current_app.config["SCIM_AUTH_FAILURE_LIMIT"]
    window = current_app.config["SCIM_AUTH_FAILURE_WINDOW"]
    if not limit:
        return
    since = utcnow() - timedelta(seconds=window)
    failures = db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.client_ip == request.remote_addr, AuditEntry.status == 401, AuditEntry.at > since))
    if failures >= limit:
        raise too_many_requests("too many failed authentication attempts from this address; retry later", window)


def _credential() -> tuple[str, str] | None:
    """(kind, secret) from the Authorization header, or None when it has no usable form."""
    header = request.headers.get("Authorization", "").strip()
    scheme, _, rest = header.partition(" ")
    rest = rest.strip()
    if scheme.lower() == "bearer" and rest:
        return "bearer", rest
    if scheme.lower() == "basic" and rest:
        try:
            user, _, password = base64.b64decode(rest, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return "basic", basic_secret(user, password)
    if header and not rest and current_app.config["SCIM_ACCEPT_BARE_TOKEN"]:
        return "bearer", header
    return None


def require_token() -> None:
    if "Authorization" not in request.headers:
        raise _refuse("anonymous", "missing Authorization header")
    credential = _credential()
    if credential is None:
        raise _refuse("refused: malformed header", "the Authorization header must be 'Bearer <token>'")
    kind, secret = credential
    bootstrap = current_app.config["SCIM_BEARER_TOKEN"]
    if kind == "bearer" and bootstrap and hmac.compare_digest(secret.encode(), bootstrap.encode()):
        g.auth_name, g.authenticated = "SCIM_BEARER_TOKEN", True
        return
    found = find(secret)
    if found is None or found[1].kind != kind:
        raise _refuse("refused: unknown token", "invalid credentials")
    hashed, credential = found
    credential_state = state(credential)
    if credential_state != "active":
        raise _refuse(f"refused: {credential_state} {credential.name}"[:120], f"this token is {credential_state}")
    g.auth_name, g.authenticated = credential.name, True
    mark_used(hashed, credential)
