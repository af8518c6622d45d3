"""Operator commands, on Flask's CLI: `python manage.py tenants ...`, `tokens ...` and `audit ...`."""

import contextlib
import re
import time
from datetime import UTC, datetime, timedelta

import click
from sqlalchemy import func, or_, select

from models import DEFAULT_TENANT, SCOPES, AuditEntry, User, db, utcnow
from scim.audit import prune
from scim.tenants import (
    TenantError,
    create_tenant,
    delete_tenant,
    find_tenant,
    set_disabled,
    tenant_names,
    tenant_summaries,
)
from scim.tokens import all_tokens, aware, create_token, revoke_token, state

DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(text: str, future: bool) -> datetime:
    """'30d', '12h', '15m', '2w' from now (ahead or back), or an ISO date/time (UTC unless it says otherwise)."""
    match = DURATION.match(text.strip().lower())
    if match:
        delta = timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
        return utcnow() + delta if future else utcnow() - delta
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: use e.g. 30d, 12h, 15m or 2027-01-31") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def when(moment: datetime | None) -> str:
    return aware(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


@contextlib.contextmanager
def as_click_error():
    """A tenant command that cannot be done as asked: its reason, one line, exit 1."""
    try:
        yield
    except TenantError as exc:
        raise click.ClickException(str(exc)) from None


def tenant_id_of(name: str) -> int:
    with as_click_error():
        return find_tenant(name).id


@click.group("tenants")
def tenants_cli():
    """Create, list, disable and delete tenants: one per customer's Okta org or Entra tenant."""


@tenants_cli.command("create")
@click.argument("name")
def tenants_create(name):
    """A new tenant, with no users, groups or credentials yet."""
    with as_click_error():
        tenant = create_tenant(name)
    click.echo(f"Tenant {tenant.name!r} created. Give it a credential: "
               f"python manage.py tokens create NAME --tenant {tenant.name}")


@tenants_cli.command("list")
def tenants_list():
    """Names, dates and counts of every tenant."""
    rows = [(t.name, when(t.created), "disabled" if t.disabled else "enabled", t.users, t.groups, t.tokens,
             when(t.last_request)) for t in tenant_summaries()]
    table(("NAME", "CREATED", "STATE", "USERS", "GROUPS", "TOKENS", "LAST REQUEST"), rows)


@tenants_cli.command("disable")
@click.argument("name")
def tenants_disable(name):
    """Refuse every credential of the tenant (401), in every worker; its data is kept."""
    with as_click_error():
        set_disabled(name, True)
    click.echo(f"Tenant {name!r} disabled: its credentials are refused; its data is kept")


@tenants_cli.command("enable")
@click.argument("name")
def tenants_enable(name):
    """Accept the tenant's credentials again."""
    with as_click_error():
        set_disabled(name, False)
    click.echo(f"Tenant {name!r} enabled")


@tenants_cli.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def tenants_delete(name, yes):
    """Delete the tenant with all its users, groups, credentials and audit rows, in one transaction."""
    tenant_id_of(name)
    if not yes:
        click.confirm(f"Delete tenant {name!r} and all of its users, groups, credentials and audit rows?",
                      abort=True)
    with as_click_error():
        counts = delete_tenant(name)
    click.echo(f"Tenant {name!r} deleted, with " + ", ".join(f"{n} {label}" for label, n in counts.items()))


@click.group("tokens")
def tokens_cli():
    """Create, list and revoke the credentials IdPs use."""


@tokens_cli.command("create")
@click.argument("name")
@click.option("--expires", help="When it stops working: 90d, 12h, or a date such as 2027-01-31.")
@click.option("--basic", "basic_user", metavar="USERNAME", help="An HTTP Basic user/password pair instead.")
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True,
              help="The tenant whose data the credential reads and writes.")
@click.option("--scope", type=click.Choice(SCOPES), default="scim", show_default=True,
              help="scim: an IdP's, for the SCIM API; events: the application's, for the event feed only.")
def tokens_create(name, expires, basic_user, tenant, scope):
    """Create a credential and print its secret, once."""
    tenant_id = tenant_id_of(tenant)
    if any(t.name == name for t in all_tokens()):
        raise click.ClickException(f"a token named {name!r} already exists")
    if basic_user and scope != "scim":
        raise click.ClickException("the event feed takes bearer tokens only: leave out --basic")
    token, secret = create_token(name, parse_moment(expires, future=True) if expires else None, basic_user,
                                 tenant_id, scope)
    if basic_user:
        click.echo(f"Basic credentials {name!r} created. Username: {basic_user}  Password (shown once):")
    elif scope == "events":
        click.echo(f"Token {name!r} created for the event feed of tenant {tenant!r}. Send it as 'Authorization: "
                   "Bearer <token>' to /api/events. Shown once, never again:")
    else:
        click.echo(f"Token {name!r} created. Put it in the IdP as 'Bearer <token>'. Shown once, never again:")
    click.echo(secret)
    if token.expires:
        click.echo(f"Expires {when(token.expires)} UTC")


@tokens_cli.command("list")
def tokens_list():
    """Names, dates and states; never secrets."""
    names = tenant_names()
    rows = [(t.name, names[t.tenant_id], t.kind, t.scope, when(t.created), when(t.last_used), when(t.expires),
             state(t)) for t in all_tokens()]
    table(("NAME", "TENANT", "KIND", "SCOPE", "CREATED", "LAST USED", "EXPIRES", "STATE"), rows)


@tokens_cli.command("revoke")
@click.argument("name")
def tokens_revoke(name):
    """Refuse this credential from the next request on, in every worker."""
    token = revoke_token(name)
    if token is None:
        raise click.ClickException(f"no token named {name!r}")
    click.echo(f"Token {name!r} revoked at {when(token.revoked)} UTC")


def table(headers: tuple, rows: list[tuple]) -> None:
    widths = [max([len(str(h))] + [len(str(r[i])) for r in rows]) for i, h in enumerate(headers)]
    for line in [headers] + rows:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def audit_query(since, failed, user, tenant=None):
    query = select(AuditEntry).order_by(AuditEntry.id)
    tenant_id = tenant_id_of(tenant) if tenant else None
    if tenant_id is not None:
        query = query.where(AuditEntry.tenant_id == tenant_id)
    if since:
        query = query.where(AuditEntry.at >= parse_moment(since, future=False))
    if failed:
        query = query.where(AuditEntry.status >= 400)
    if user:
        users = select(User.id).where(or_(User.id == user, func.lower(User.user_name) == user.lower()))
        ids = set(db.session.scalars(users if tenant_id is None else users.where(User.tenant_id == tenant_id)))
        # A deleted or never-created user is still found by the name in the bodies sent for it.
        query = query.where(or_(AuditEntry.resource_id.in_(ids | {user}),
                                func.lower(AuditEntry.request_body).contains(user.lower(), autoescape=True)))
    return query


def audit_rows(entries) -> list[tuple]:
    return [(when(e.at), e.token_name, e.client_ip or "-", e.method, e.path[:60], e.status, e.scim_type or "",
             f"{e.duration_ms:.0f}", e.resource_id or "") for e in entries]


AUDIT_HEADERS = ("TIME (UTC)", "TOKEN", "CLIENT", "METHOD", "PATH", "STATUS", "SCIMTYPE", "MS", "RESOURCE")


@click.group("audit", invoke_without_command=True)
@click.option("--since", help="Only requests since then: 15m, 2h, 7d, or a date.")
@click.option("--failed", is_flag=True, help="Only requests answered with an error (4xx, 5xx).")
@click.option("--user", help="Only requests about this user (userName or id).")
@click.option("--tenant", help="Only requests made with this tenant's credentials.")
@click.option("--limit", default=50, show_default=True, help="The most recent N rows.")
@click.option("--follow", is_flag=True, help="Keep printing new requests as they arrive (Ctrl-C stops).")
@click.option("--polls", default=0, hidden=True, help="With --follow: stop after this many polls (0: never).")
@click.pass_context
def audit_cli(ctx, since, failed, user, tenant, limit, follow, polls):
    """Show the audit trail of SCIM requests as a table."""
    if ctx.invoked_subcommand:
        return
    query = audit_query(since, failed, user, tenant)
    entries = list(reversed(db.session.scalars(query.order_by(None).order_by(AuditEntry.id.desc())
                                               .limit(limit)).all()))
    table(AUDIT_HEADERS, audit_rows(entries))
    # Follow from the newest row, even when none was listed (--limit 0).
    last_id = entries[-1].id if entries else (db.session.scalar(select(func.max(AuditEntry.id))) or 0)
    done = 0
    while follow and (not polls or done < polls):
        time.sleep(1)
        done += 1
        db.session.rollback()  # see rows committed since the last poll
        new = db.session.scalars(query.where(AuditEntry.id > last_id)).all()
        for row in audit_rows(new):
            click.echo("  ".join(str(cell).ljust(len(header)) for cell, header in zip(row, AUDIT_HEADERS, strict=True)))
        last_id = new[-1].id if new else last_id


@audit_cli.command("prune")
@click.option("--days", type=int, help="Keep this many days (default: SCIM_AUDIT_RETENTION_DAYS).")
def audit_prune(days):
    """Delete audit rows older than the retention period."""
    from flask import current_app
    removed = prune(days if days is not None else current_app.config["SCIM_AUDIT_RETENTION_DAYS"])
    click.echo(f"{removed} audit rows deleted")


@click.group("events")
def events_cli():
    """The event feed's housekeeping."""


@events_cli.command("prune")
@click.option("--days", type=int, help="Keep this many days (default: SCIM_EVENT_RETENTION_DAYS).")
def events_prune(days):
    """Delete events older than the retention period (each tenant's newest is kept)."""
    from flask import current_app

    from scim.events import prune as prune_events
    removed = prune_events(days if days is not None else current_app.config["SCIM_EVENT_RETENTION_DAYS"])
    click.echo(f"{removed} events deleted")


@events_cli.command("deliver")
@click.option("--once", is_flag=True, help="Stop once nothing is due, instead of waiting for new events.")
def events_deliver(once):
    """Run a delivery worker: POST each webhook's events to it (Ctrl-C or SIGTERM stops it)."""
    from flask import current_app

    from scim.delivery import run
    click.echo("delivering webhook events" + (" until nothing is due" if once else "; Ctrl-C stops"))
    counts = run(current_app._get_current_object(), once=once)
    click.echo(f"{counts['delivered']} delivered, {counts['failed']} dead-lettered")


@events_cli.command("redrive")
@click.option("--webhook", "webhook_id", type=int, help="Only this webhook's (its id in `webhooks list`).")
def events_redrive(webhook_id):
    """Send the dead-lettered deliveries again, with a fresh retry period."""
    from scim.webhooks import redrive
    click.echo(f"{redrive(webhook_id)} deliveries pending again")


@click.group("webhooks")
def webhooks_cli():
    """Add, list, remove webhooks, rotate their secrets, see their deliveries."""


@webhooks_cli.command("add")
@click.argument("url")
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True, help="The tenant whose events it gets.")
@click.option("--events", "kinds", help="Only these types or families, such as user.*,group.member_*.")
def webhooks_add(url, tenant, kinds):
    """Add a webhook and print its signing secret, once."""
    from scim.webhooks import Refused, add_webhook
    tenant_id = tenant_id_of(tenant)
    try:
        webhook, secret = add_webhook(tenant_id, url, kinds)
    except Refused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Webhook {webhook.id} added for tenant {tenant!r}. Its signing secret (shown once, never again):")
    click.echo(secret)


def webhook_of(webhook_id: int):
    from models import Webhook
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None:
        raise click.ClickException(f"no webhook {webhook_id}")
    return webhook


@webhooks_cli.command("list")
def webhooks_list():
    """Ids, tenants, URLs, event types and delivery counts; never secrets."""
    from models import Delivery
    from scim.webhooks import all_webhooks
    names = tenant_names()
    counts = dict(((w, s), n) for w, s, n in db.session.execute(
        select(Delivery.webhook_id, Delivery.state, func.count()).group_by(Delivery.webhook_id, Delivery.state)))
    rows = [(w.id, names[w.tenant_id], w.url, ",".join(w.events or ["*"]), counts.get((w.id, "pending"), 0),
             counts.get((w.id, "delivered"), 0), counts.get((w.id, "failed"), 0)) for w in all_webhooks()]
    table(("ID", "TENANT", "URL", "EVENTS", "PENDING", "DELIVERED", "FAILED"), rows)


@webhooks_cli.command("remove")
@click.argument("webhook_id", type=int)
def webhooks_remove(webhook_id):
    """Remove a webhook and its deliveries."""
    from scim.webhooks import remove_webhook
    remove_webhook(webhook_of(webhook_id))
    click.echo(f"Webhook {webhook_id} removed")


@webhooks_cli.command("rotate-secret")
@click.argument("webhook_id", type=int)
def webhooks_rotate(webhook_id):
    """A new signing secret, printed once; the old one stops working at once."""
    from scim.webhooks import rotate_secret
    click.echo(f"Webhook {webhook_id}'s new signing secret (shown once, never again):")
    click.echo(rotate_secret(webhook_of(webhook_id)))


@webhooks_cli.command("deliveries")
@click.option("--failed", is_flag=True, help="Only the dead letters.")
@click.option("--limit", default=50, show_default=True, help="The most recent N.")
def webhooks_deliveries(failed, limit):
    """The latest deliveries: event, state, attempts, the receiver's last answer."""
    from models import Delivery, Event
    query = select(Delivery, Event.event_id, Event.type).join(Event, Event.id == Delivery.event_id)
    if failed:
        query = query.where(Delivery.state == "failed")
    found = list(db.session.execute(query.order_by(Delivery.id.desc()).limit(limit)))
    rows = [(d.id, d.webhook_id, event_id, kind, d.state, d.attempts, when(d.delivered or d.next_attempt),
             d.last_status or "-", d.last_error or "-") for d, event_id, kind in reversed(found)]
    table(("ID", "WEBHOOK", "EVENT", "TYPE", "STATE", "ATTEMPTS", "AT", "STATUS", "ERROR"), rows)
