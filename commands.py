"""Operator commands, on Flask's CLI: `python manage.py tokens ...` and `python manage.py audit ...`."""

import re
import time
from datetime import UTC, datetime, timedelta

import click
from sqlalchemy import func, or_, select

from models import AuditEntry, User, db, utcnow
from scim.audit import prune
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


@click.group("tokens")
def tokens_cli():
    """Create, list and revoke the credentials IdPs use."""


@tokens_cli.command("create")
@click.argument("name")
@click.option("--expires", help="When it stops working: 90d, 12h, or a date such as 2027-01-31.")
@click.option("--basic", "basic_user", metavar="USERNAME", help="An HTTP Basic user/password pair instead.")
def tokens_create(name, expires, basic_user):
    """Create a credential and print its secret, once."""
    if any(t.name == name for t in all_tokens()):
        raise click.ClickException(f"a token named {name!r} already exists")
    token, secret = create_token(name, parse_moment(expires, future=True) if expires else None, basic_user)
    if basic_user:
        click.echo(f"Basic credentials {name!r} created. Username: {basic_user}  Password (shown once):")
    else:
        click.echo(f"Token {name!r} created. Put it in the IdP as 'Bearer <token>'. Shown once, never again:")
    click.echo(secret)
    if token.expires:
        click.echo(f"Expires {when(token.expires)} UTC")


@tokens_cli.command("list")
def tokens_list():
    """Names, dates and states; never secrets."""
    rows = [(t.name, t.kind, when(t.created), when(t.last_used), when(t.expires), state(t)) for t in all_tokens()]
    table(("NAME", "KIND", "CREATED", "LAST USED", "EXPIRES", "STATE"), rows)


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


def audit_query(since, failed, user):
    query = select(AuditEntry).order_by(AuditEntry.id)
    if since:
        query = query.where(AuditEntry.at >= parse_moment(since, future=False))
    if failed:
        query = query.where(AuditEntry.status >= 400)
    if user:
        ids = set(db.session.scalars(select(User.id).where(
            or_(User.id == user, func.lower(User.user_name) == user.lower()))))
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
@click.option("--limit", default=50, show_default=True, help="The most recent N rows.")
@click.option("--follow", is_flag=True, help="Keep printing new requests as they arrive (Ctrl-C stops).")
@click.option("--polls", default=0, hidden=True, help="With --follow: stop after this many polls (0: never).")
@click.pass_context
def audit_cli(ctx, since, failed, user, limit, follow, polls):
    """Show the audit trail of SCIM requests as a table."""
    if ctx.invoked_subcommand:
        return
    query = audit_query(since, failed, user)
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
