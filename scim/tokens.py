"""The token store: several named credentials at once, kept only as keyed hashes (HMAC-SHA-256).

Tokens are 256-bit random strings, so a fast keyed hash is as safe as a slow password hash and costs
microseconds per request. The key (SCIM_TOKEN_PEPPER) stays out of the database, so a copy of the
database alone cannot even confirm a guessed token.
"""

import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import make_url, select, text, update

from models import DEFAULT_TENANT_ID, Tenant, Token, begin_write, db, durable_commit, once_more_if_dropped, utcnow
from scim.credentials import CHANNEL, Credential, CredentialCache, listen

LAST_USED_RESOLUTION = timedelta(seconds=60)  # last_used is written at most once a minute per token


def secret_hash(secret: str) -> str:
    key = current_app.config["SCIM_TOKEN_PEPPER"].encode()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def basic_secret(user: str, password: str) -> str:
    return f"basic\0{user}\0{password}"


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every one of ours was stored in UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def state(token: Token | Credential, now: datetime | None = None) -> str:
    now = now or utcnow()
    if token.revoked:
        return "revoked"
    if token.expires and aware(token.expires) <= now:
        return "expired"
    return "active"


def create_token(name: str, expires: datetime | None = None, basic_user: str | None = None,
                 tenant_id: int = DEFAULT_TENANT_ID, scope: str = "scim") -> tuple[Token, str]:
    """A new credential of a tenant, for the SCIM API or (scope "events") the event feed; the secret is
    returned once, here, and never stored."""
    begin_write()
    secret = secrets.token_urlsafe(32)
    hashed = secret_hash(basic_secret(basic_user, secret) if basic_user else secret)
    token = Token(name=name, kind="basic" if basic_user else "bearer", basic_user=basic_user,
                  secret_hash=hashed, expires=expires, tenant_id=tenant_id, scope=scope)
    db.session.add(token)
    durable_commit()
    return token, secret


def cache() -> CredentialCache:
    """This app's credential cache; on PostgreSQL, emptied by this process's listener on every change."""
    found = current_app.extensions.get("scim.credentials")
    if found is None:
        found = current_app.extensions["scim.credentials"] = CredentialCache(
            current_app.config["SCIM_TOKEN_CACHE_SECONDS"])
    # Notifications do not pass through a pooler in transaction mode: there, the cache bound alone holds.
    notified = db.engine.dialect.name == "postgresql" and not current_app.config["SCIM_DB_TRANSACTION_POOLING"]
    if found.listening_pid != os.getpid() and notified:
        url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
        listen(url.render_as_string(hide_password=False), found)
        found.listening_pid = os.getpid()
    return found


def find(secret: str, read: bool = True) -> tuple[str, Credential] | None:
    """(hash, credential) for a stored credential whose hash matches, compared in constant time once found by
    its index; from this worker's cache when it was read within SCIM_TOKEN_CACHE_SECONDS. With read=False,
    only from the cache."""
    hashed = secret_hash(secret)
    credentials = cache()
    credential = credentials.get(hashed)
    if credential is not None or not read:
        return (hashed, credential) if credential is not None else None
    generation = credentials.generation
    found = once_more_if_dropped(lambda: db.session.execute(
        select(Token, Tenant.disabled).join(Tenant, Tenant.id == Token.tenant_id)
        .where(Token.secret_hash == hashed)).first())
    if found is None or not hmac.compare_digest(found[0].secret_hash, hashed):
        return None
    token, disabled = found
    credential = Credential(token.id, token.name, token.kind, token.expires, token.revoked, token.last_used,
                            token.tenant_id, disabled is not None, token.scope)
    credentials.put(hashed, credential, generation)
    return hashed, credential


def use_is_due(credential: Credential) -> bool:
    return credential.last_used is None or utcnow() - aware(credential.last_used) > LAST_USED_RESOLUTION


def mark_used(hashed: str, credential: Credential) -> None:
    if use_is_due(credential):
        now = utcnow()
        # Committed on its own, before the view runs: a read-only request commits nothing else. On SQLite the
        # token's read ends first: a read transaction that turns into a write one fails at once ("database is
        # locked", no wait) whenever another process wrote in between.
        begin_write()
        db.session.execute(update(Token).where(Token.id == credential.id).values(last_used=now))
        db.session.commit()
        cache().used(hashed, credential, now)


def changed() -> None:
    """Within the transaction of a change to the token table: every worker reads its credentials afresh, on
    PostgreSQL as soon as the change commits; this process's cache at once."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    cache().clear()


def revoke_token(name: str) -> Token | None:
    begin_write()
    token = db.session.scalar(select(Token).where(Token.name == name))
    if token is not None and token.revoked is None:
        token.revoked = utcnow()
        changed()
        durable_commit()  # a revocation must survive a crash
    return token


def all_tokens() -> list[Token]:
    return list(db.session.scalars(select(Token).order_by(Token.created, Token.id)))
