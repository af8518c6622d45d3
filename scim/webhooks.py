"""Webhooks: where a tenant's events are POSTed, signed as the Standard Webhooks specification says.

A webhook's signing secret is never stored: it is HMAC-SHA-256 of the webhook's random `salt` under
SCIM_TOKEN_PEPPER, the key that stays out of the database (as for tokens). `webhooks add` and
`rotate-secret` print it once; the delivery worker derives it again for each delivery. Rotating draws a new
salt, so the old secret stops working at once.

Destinations: only those the operator allows (SCIM_WEBHOOK_ALLOWED_HOSTS). Unset, any public address; set,
the URL's host must be one of its names or `*.domain` patterns, or every address the host resolves to must
be one of its addresses or networks. Checked when a webhook is added and again before every delivery (a
name may come to resolve elsewhere).
"""

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from models import Delivery, Event, Webhook, begin_write, db, durable_commit, utcnow
from scim.events import TYPES

SECRET_PREFIX = "whsec_"


class Refused(ValueError):
    """A destination or an event list the service will not take."""


def secret_of(webhook: Webhook) -> str:
    key = current_app.config["SCIM_TOKEN_PEPPER"].encode()
    derived = hmac.new(key, b"scim-webhook-secret\0" + webhook.salt.encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(derived).decode()


def patterns_of(text: str | None) -> list[str] | None:
    """`user.*,group.member_*`-style lists: event types, families (`user.*`) or prefixes ending in `*`."""
    found = [part.strip() for part in (text or "").split(",") if part.strip()]
    for pattern in found:
        prefix = pattern[:-1] if pattern.endswith("*") else None
        if pattern not in TYPES and not (prefix and any(kind.startswith(prefix) for kind in TYPES)):
            raise Refused(f"{pattern!r} matches no event type; the types are {', '.join(TYPES)}")
    return found or None


def wants(patterns: list[str] | None, kind: str) -> bool:
    return patterns is None or any(kind.startswith(p[:-1]) if p.endswith("*") else kind == p for p in patterns)


def _addresses(host: str) -> list[ipaddress._BaseAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise Refused(f"{host} does not resolve: {exc}") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in found]


def _named(entry: str, host: str) -> bool:
    """A host name or `*.domain` entry that names the host (its subdomains, for a pattern)."""
    if entry.startswith("*."):
        return host.endswith(entry[1:].lower()) and host != entry[2:].lower()
    return host == entry.lower()


def _network(entry: str):
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


def check_destination(url: str) -> None:
    """Refused unless SCIM_WEBHOOK_ALLOWED_HOSTS allows the URL's host (see the module's docstring)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("a webhook URL is http:// or https:// with a host")
    host = parts.hostname.lower()
    allowed = current_app.config["SCIM_WEBHOOK_ALLOWED_HOSTS"]
    networks = [network for network in map(_network, allowed) if network is not None]
    if any(_network(entry) is None and _named(entry, host) for entry in allowed):
        return
    addresses = _addresses(host)
    if allowed:
        if not any(all(address in network for address in addresses) for network in networks):
            raise Refused(f"{host} is not in SCIM_WEBHOOK_ALLOWED_HOSTS")
    elif not all(address.is_global for address in addresses):
        raise Refused(f"{host} is not a public address; list it in SCIM_WEBHOOK_ALLOWED_HOSTS to allow it")


def add_webhook(tenant_id: int, url: str, events: str | None = None) -> tuple[Webhook, str]:
    """A new webhook of the tenant, which gets the events written from now on; returns it and its secret."""
    check_destination(url)
    patterns = patterns_of(events)
    if len(url) > 2048:
        raise Refused("a webhook URL has at most 2048 characters")
    begin_write()
    newest = db.session.execute(select(Event.txid, Event.id).where(Event.tenant_id == tenant_id)
                                .order_by(Event.txid.desc(), Event.id.desc()).limit(1)).first()
    webhook = Webhook(tenant_id=tenant_id, url=url, events=patterns, salt=secrets.token_hex(32),
                      after_txid=newest.txid if newest else 0, after_id=newest.id if newest else 0)
    db.session.add(webhook)
    durable_commit()
    return webhook, secret_of(webhook)


def rotate_secret(webhook: Webhook) -> str:
    begin_write()
    webhook.salt = secrets.token_hex(32)
    durable_commit()
    return secret_of(webhook)


def remove_webhook(webhook: Webhook) -> None:
    """The webhook and its deliveries (ON DELETE CASCADE)."""
    begin_write()
    db.session.delete(webhook)
    durable_commit()


def all_webhooks() -> list[Webhook]:
    return list(db.session.scalars(select(Webhook).order_by(Webhook.id)))


def redrive(webhook_id: int | None = None) -> int:
    """The dead letters (of one webhook, or all) pending again, from now, with a fresh retry period."""
    begin_write()
    query = select(Delivery).where(Delivery.state == "failed")
    if webhook_id is not None:
        query = query.where(Delivery.webhook_id == webhook_id)
    count, now = 0, utcnow()
    for delivery in db.session.scalars(query):
        delivery.state, delivery.created, delivery.next_attempt, delivery.attempts = "pending", now, now, 0
        delivery.leased_until = None
        count += 1
    durable_commit()
    return count

