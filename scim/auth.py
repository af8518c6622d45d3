"""The credential check that runs before every SCIM request.

Accepted: `Authorization: Bearer <token>` (the scheme in any case) for a token from the store or the
SCIM_BEARER_TOKEN bootstrap token; `Basic` for a stored user/password pair; and, when
SCIM_ACCEPT_BARE_TOKEN is on, the bare token with no scheme (Okta's existing-app header auth sends the
header exactly as the admin typed it). Everything else is 401 with a Bearer challenge (RFC 6750 §3).
"""

import base64
import binascii
import hmac
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, g, request
from sqlalchemy import func, select

from models import DEFAULT_TENANT_ID, AuditEntry, db, utcnow
from scim.errors import ScimError, too_many_requests, unauthorized
from scim.tokens import basic_secret, find, mark_used, state, use_is_due

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="scim"'}


def _refuse(reason: str, detail: str, tenant_id: int | None = None) -> ScimError:
    g.auth_name, g.refused_tenant_id = reason, tenant_id  # the audit row's; no view runs
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


def _credential(header: str, config) -> tuple[str, str] | None:
    """(kind, secret) from the Authorization header, or None when it has no usable form."""
    header = header.strip()
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
    if header and not rest and config["SCIM_ACCEPT_BARE_TOKEN"]:
        return "bearer", header
    return None


@dataclass(frozen=True)
class Identity:
    """Who a request is: the credential's name (for the audit trail) and its tenant, the only one whose data
    the request reads, changes or counts."""

    name: str
    tenant_id: int


@dataclass(frozen=True)
class Refusal:
    reason: str  # for the audit trail's token_name
    detail: str  # for the client
    tenant_id: int | None = None  # a known credential's tenant, for the audit trail


def identify(header: str | None, read: bool = True, scope: str = "scim") -> Identity | Refusal | None:
    """The credential the Authorization header carries, or why it is refused: a credential of another
    scope than the one asked for is refused like an unknown one (an IdP's token does not read the event
    feed, an application's does not call the SCIM API). With read=False
    (the hot path, scim/hotpath.py), None wherever the answer needs the database: a credential this worker
    has not kept, or one whose last use is due to be written."""
    config = current_app.config
    if header is None:
        return Refusal("anonymous", "missing Authorization header")
    credential = _credential(header, config)
    if credential is None:
        return Refusal("refused: malformed header", "the Authorization header must be 'Bearer <token>'")
    kind, secret = credential
    bootstrap = config["SCIM_BEARER_TOKEN"]
    if kind == "bearer" and bootstrap and hmac.compare_digest(secret.encode(), bootstrap.encode()):
        if scope != "scim":
            return Refusal("refused: SCIM_BEARER_TOKEN", "this credential is not for this API")
        return Identity("SCIM_BEARER_TOKEN", DEFAULT_TENANT_ID)
    found = find(secret, read)
    if found is None:
        return None if not read else Refusal("refused: unknown token", "invalid credentials")
    hashed, stored = found
    if stored.kind != kind:
        return Refusal("refused: unknown token", "invalid credentials")
    if stored.scope != scope:
        return Refusal(f"refused: scope {stored.scope} {stored.name}"[:120], "this credential is not for this API",
                       stored.tenant_id)
    stored_state = state(stored)
    if stored_state != "active":
        return Refusal(f"refused: {stored_state} {stored.name}"[:120], f"this token is {stored_state}",
                       stored.tenant_id)
    if stored.tenant_disabled:
        return Refusal(f"refused: tenant disabled {stored.name}"[:120], "this token's tenant is disabled",
                       stored.tenant_id)
    if not read and use_is_due(stored):
        return None
    mark_used(hashed, stored)
    return Identity(stored.name, stored.tenant_id)


def require_token() -> None:
    # Nothing of an earlier request in the same app context (a Bulk operation's, a test's) carries over.
    g.pop("tenant_id", None)
    g.pop("refused_tenant_id", None)
    found = identify(request.headers.get("Authorization"))
    if isinstance(found, Refusal):
        raise _refuse(found.reason, found.detail, found.tenant_id)
    g.auth_name, g.tenant_id, g.authenticated = found.name, found.tenant_id, True


def tenant() -> int:
    """The tenant of this request's credential: every store call of a view names it."""
    return g.tenant_id
