"""The delivery worker, `python manage.py events deliver`: every event a webhook asked for, POSTed to it
at least once, in order for each resource, retried, then dead-lettered (docs/events.md#webhooks).

Each round, in short transactions of its own (never one held open across an HTTP call: an open transaction
would hold the feed back, scim/events.py):

1. **Deliveries made**: for each webhook, the settled events past its position become pending deliveries
   and the position moves past them, in one transaction with the webhook's row locked (SKIP LOCKED: a
   webhook another worker is at is skipped).
2. **Claimed**: due pending deliveries, each the oldest pending one of its webhook and resource (so a
   resource's events go out in order, and a retried one holds back those after it), get a lease: one
   UPDATE, their rows locked with SKIP LOCKED, so two workers never claim the same one.
3. **Sent**: signed as Standard Webhooks (`webhook-id` is the event's id, the same on every attempt); a 2xx
   answer within SCIM_WEBHOOK_TIMEOUT is delivered. Anything else is retried after a delay that doubles
   from SCIM_WEBHOOK_BACKOFF_SECONDS up to SCIM_WEBHOOK_BACKOFF_MAX_SECONDS, with jitter, until
   SCIM_WEBHOOK_RETRY_SECONDS after the delivery was made; then it is `failed` (the dead letter,
   `events redrive` sends it again). The outcome is written only while the lease is the worker's own.

A worker killed mid-delivery loses nothing: its lease runs out (three timeouts and 5 s) and another worker,
or the same one restarted, sends the delivery again. The receiver can tell a repeat by `webhook-id`.

Woken on PostgreSQL by the notification every statement that writes events sends (migration 0007), and
otherwise every SCIM_WEBHOOK_POLL_SECONDS (always behind a transaction-pooling PgBouncer, and on SQLite).
On SQLite, run one worker.
"""

import json
import logging
import random
import signal
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

from flask import current_app
from sqlalchemy import exists, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased
from standardwebhooks.webhooks import Webhook as Signer

from models import Delivery, Event, Tenant, Webhook, begin_write, db, utcnow
from scim import events
from scim.tokens import aware
from scim.webhooks import Refused, check_destination, secret_of, wants

log = logging.getLogger(__name__)
CHANNEL = "scim_events"
BATCH = 100  # deliveries claimed at once
EVENTS_PER_ROUND = 1000  # events one webhook's deliveries are made from at once
USER_AGENT = "scim-server-webhooks/1"


def lease_seconds(config) -> float:
    return 3 * config["SCIM_WEBHOOK_TIMEOUT"] + 5


def make_deliveries() -> int:
    """Step 1 for every webhook; returns the deliveries made."""
    made = 0
    for webhook_id in list(db.session.scalars(select(Webhook.id).order_by(Webhook.id))):
        db.session.rollback()
        begin_write()  # SQLite: this transaction reads, then writes
        webhook = db.session.scalar(select(Webhook).where(Webhook.id == webhook_id)
                                    .with_for_update(skip_locked=True))
        if webhook is not None:
            found = events.page(webhook.tenant_id, (webhook.after_txid, webhook.after_id), EVENTS_PER_ROUND, [])
            rows = [{"webhook_id": webhook.id, "event_id": event.id, "resource_id": event.resource_id,
                     "state": "pending", "created": utcnow(), "attempts": 0, "next_attempt": utcnow()}
                    for event in found if wants(webhook.events, event.type)]
            if rows:
                db.session.execute(insert(Delivery.__table__), rows)
            if found:
                webhook.after_txid, webhook.after_id = found[-1].txid, found[-1].id
            made += len(rows)
        db.session.commit()
    return made


def claim(now, until) -> list[int]:
    """Step 2: the ids of the deliveries now leased to this worker until `until`."""
    earlier = aliased(Delivery)
    blocked = exists().where(earlier.webhook_id == Delivery.webhook_id, earlier.resource_id == Delivery.resource_id,
                             earlier.state == "pending", earlier.id < Delivery.id)
    due = (select(Delivery.id).where(Delivery.state == "pending", Delivery.next_attempt <= now,
                                     (Delivery.leased_until.is_(None)) | (Delivery.leased_until < now), ~blocked)
           .order_by(Delivery.id).limit(BATCH).with_for_update(skip_locked=True))
    claimed = list(db.session.scalars(update(Delivery).where(Delivery.id.in_(due.scalar_subquery()))
                                      .values(leased_until=until, attempts=Delivery.attempts + 1)
                                      .returning(Delivery.id).execution_options(synchronize_session=False)))
    db.session.commit()
    return sorted(claimed)


def request_of(event: Event, url: str, secret: str, tenant_name: str) -> urllib.request.Request:
    body = json.dumps(events.as_json(event, tenant_name), separators=(",", ":"))
    now = utcnow()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "webhook-id": event.event_id,
               "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Signer(secret).sign(event.event_id, now, body)}
    return urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")


def send(request: urllib.request.Request, timeout: float) -> tuple[int | None, str | None]:
    """(status, error): the receiver's status, or None and why there was none."""
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return None, (str(exc) or type(exc).__name__)[:300]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any other that is not 2xx: following it could reach a destination the
    allow-list refuses."""

    def redirect_request(self, *args, **kwargs):
        return None


def next_try(created, attempts: int, config, now):
    """When to try again, or None: the retry period is over (dead letter)."""
    deadline = aware(created) + timedelta(seconds=config["SCIM_WEBHOOK_RETRY_SECONDS"])
    if now >= deadline:
        return None
    delay = min(config["SCIM_WEBHOOK_BACKOFF_MAX_SECONDS"],
                config["SCIM_WEBHOOK_BACKOFF_SECONDS"] * 2 ** max(attempts - 1, 0))
    return min(now + timedelta(seconds=delay * random.uniform(0.5, 1.0)), deadline)


def deliver(delivery_id: int, until) -> str:
    """Step 3 for one claimed delivery; returns its new state."""
    config = current_app.config
    found = db.session.execute(
        select(Delivery, Event, Webhook, Tenant.name).join(Event, Event.id == Delivery.event_id)
        .join(Webhook, Webhook.id == Delivery.webhook_id).join(Tenant, Tenant.id == Webhook.tenant_id)
        .where(Delivery.id == delivery_id)).first()
    if found is None:  # its webhook was removed (or its tenant deleted) meanwhile
        db.session.rollback()
        return "gone"
    delivery, event, webhook, tenant_name = found
    url, created, attempts = webhook.url, delivery.created, delivery.attempts
    request = request_of(event, url, secret_of(webhook), tenant_name)
    db.session.rollback()  # nothing is held while the receiver answers
    try:
        check_destination(url)
        status, error = send(request, config["SCIM_WEBHOOK_TIMEOUT"])
    except Refused as exc:
        status, error = None, str(exc)[:300]
    now = utcnow()
    values = {"leased_until": None, "last_status": status, "last_error": error}
    if status is not None and 200 <= status < 300:
        values.update(state="delivered", delivered=now, last_error=None)
    else:
        retry = next_try(created, attempts, config, now)
        if retry is None:
            values["state"] = "failed"  # the dead letter
        else:
            values.update(state="pending", next_attempt=retry)
    written = db.session.execute(update(Delivery).where(Delivery.id == delivery_id, Delivery.leased_until == until)
                                 .values(values).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if not written:
        log.warning("delivery %s: the lease ran out before the receiver answered; it will be sent again",
                    delivery_id)
    return values["state"]


def next_due():
    """When the earliest pending delivery falls due (None: none is pending)."""
    found = db.session.scalar(select(Delivery.next_attempt).where(Delivery.state == "pending")
                              .order_by(Delivery.next_attempt).limit(1))
    db.session.rollback()
    return found


class Wakeup:
    """Waits for the notification of new events (PostgreSQL, not pooled) or a timeout."""

    def __init__(self, app):
        self.connection = None
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        if url.startswith("postgresql") and not app.config["SCIM_DB_TRANSACTION_POOLING"]:
            import psycopg
            from sqlalchemy import make_url
            plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            try:
                self.connection = psycopg.connect(plain, autocommit=True, connect_timeout=5)
                self.connection.execute(f"LISTEN {CHANNEL}")
            except psycopg.Error as exc:
                log.warning("no notifications (%s): polling instead", exc)
                self.connection = None

    def wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.connection is None:
            time.sleep(seconds)
            return
        try:
            for _ in self.connection.notifies(timeout=seconds, stop_after=1):
                pass
        except Exception as exc:  # the database went away: poll until the next round reconnects nothing
            log.warning("notifications stopped (%s): polling instead", exc)
            self.connection = None
            time.sleep(seconds)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def run(app, once: bool = False, rounds: int | None = None) -> dict:
    """Deliver until stopped (SIGTERM, SIGINT); with once=True, until nothing is due. Returns counts."""
    counts = {"made": 0, "delivered": 0, "pending": 0, "failed": 0, "gone": 0}
    stopping, before = threading.Event(), {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            before[signum] = signal.signal(signum, lambda *_: stopping.set())
    with app.app_context():
        wakeup = Wakeup(app)
        poll = app.config["SCIM_WEBHOOK_POLL_SECONDS"]
        try:
            done = 0
            while not stopping.is_set() and (rounds is None or done < rounds):
                done += 1
                try:
                    counts["made"] += make_deliveries()
                    now = utcnow()
                    until = now + timedelta(seconds=lease_seconds(app.config))
                    claimed = claim(now, until)
                    for delivery_id in claimed:
                        counts[deliver(delivery_id, until)] += 1
                        if stopping.is_set():
                            break
                    if claimed:
                        continue
                    due = next_due()
                except SQLAlchemyError as exc:  # the database restarting, a lock timeout: try again shortly
                    log.warning("delivery round failed: %s", getattr(exc, "orig", exc))
                    db.session.rollback()
                    wakeup.wait(poll)
                    continue
                if once and due is None:
                    break
                wait = poll if due is None else (aware(due) - utcnow()).total_seconds()
                wakeup.wait(min(poll, max(wait, 0.05)))
        finally:
            wakeup.close()
            db.session.remove()
            for signum, handler in before.items():
                signal.signal(signum, handler)
    return counts

