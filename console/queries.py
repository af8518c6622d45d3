"""What the console's pages show, read with plain arguments: always the tenants the admin may see, and pages
bounded by keyset positions (never an OFFSET into 100,000 users or a million audit rows)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select

from models import AuditEntry, Delivery, Event, Group, Link, Tenant, Token, User, UserEmail, Webhook, db, utcnow
from scim.tokens import aware

PAGE = 50
HOURS = 24
# Entra ID quarantines a provisioning job when most of its calls fail: the overview warns from this share on.
QUARANTINE_SHARE = 0.5


@dataclass
class TenantSummary:
    id: int
    name: str
    disabled: bool
    users: int
    groups: int
    tokens: int
    requests: int  # in the last 24 hours
    failures: int
    hour_requests: int  # in the last hour
    hour_failures: int
    last_request: datetime | None
    hours: list  # [(hour start, requests, failures)] for the last 24 hours, oldest first

    @property
    def hour_failure_share(self) -> float:
        return self.hour_failures / self.hour_requests if self.hour_requests else 0.0

    @property
    def quarantine_warning(self) -> bool:
        return self.hour_requests >= 10 and self.hour_failure_share >= QUARANTINE_SHARE


def _hour(column):
    """The hour a timestamp falls in, in UTC, as text 'YYYY-MM-DD HH'."""
    if db.engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
    return func.strftime("%Y-%m-%d %H", column)


def _count_by_tenant(model, tenant_ids, *where) -> dict:
    rows = db.session.execute(select(model.tenant_id, func.count()).where(model.tenant_id.in_(tenant_ids), *where)
                              .group_by(model.tenant_id))
    return dict(rows.all())


def tenant_summaries(tenants) -> list[TenantSummary]:
    ids = [tenant.id for tenant in tenants]
    now = utcnow()
    since = now - timedelta(hours=HOURS)
    failed = case((AuditEntry.status >= 400, 1), else_=0)
    hourly: dict = {}
    hour = _hour(AuditEntry.at).label("hour")
    for tenant_id, start, requests, failures in db.session.execute(
            select(AuditEntry.tenant_id, hour, func.count(), func.sum(failed))
            .where(AuditEntry.tenant_id.in_(ids), AuditEntry.at >= since).group_by(AuditEntry.tenant_id, hour)):
        hourly[(tenant_id, start)] = (requests, int(failures or 0))
    last_hour = {tenant_id: (requests, int(failures or 0)) for tenant_id, requests, failures in db.session.execute(
        select(AuditEntry.tenant_id, func.count(), func.sum(failed))
        .where(AuditEntry.tenant_id.in_(ids), AuditEntry.at >= now - timedelta(hours=1))
        .group_by(AuditEntry.tenant_id))}
    # One index probe per tenant (tenant_id, at): a GROUP BY would read every audit row.
    newest = select(func.max(AuditEntry.at)).where(AuditEntry.tenant_id == Tenant.id).correlate(Tenant)
    last = dict(db.session.execute(select(Tenant.id, newest.scalar_subquery()).where(Tenant.id.in_(ids))).all())
    users, groups = _count_by_tenant(User, ids), _count_by_tenant(Group, ids)
    tokens = _count_by_tenant(Token, ids, Token.revoked.is_(None))
    starts = [(now - timedelta(hours=HOURS - 1 - index)).replace(minute=0, second=0, microsecond=0)
              for index in range(HOURS)]
    summaries = []
    for tenant in tenants:
        hours = [(start, *hourly.get((tenant.id, start.strftime("%Y-%m-%d %H")), (0, 0))) for start in starts]
        hour_requests, hour_failures = last_hour.get(tenant.id, (0, 0))
        summaries.append(TenantSummary(
            tenant.id, tenant.name, tenant.disabled is not None, users.get(tenant.id, 0), groups.get(tenant.id, 0),
            tokens.get(tenant.id, 0), sum(h[1] for h in hours), sum(h[2] for h in hours), hour_requests,
            hour_failures, aware(last.get(tenant.id)), hours))
    return summaries


def _prefix(text: str) -> str:
    """A LIKE pattern for what starts with `text`, in lower case, its wildcards taken literally."""
    return text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def find_users(tenant_id: int, text: str, active: bool | None, after: str | None) -> list[User]:
    """A page of the tenant's users in userName order, past `after` (a userName, lower case): those whose
    userName or an email starts with `text`, whose externalId is `text`, or whose name starts with it."""
    query = select(User).where(User.tenant_id == tenant_id)
    if text:
        prefix = _prefix(text)
        by_email = select(UserEmail.user_id).where(func.lower(UserEmail.value).like(prefix, escape="\\"))
        query = query.where(or_(func.lower(User.user_name).like(prefix, escape="\\"), User.external_id == text,
                                func.lower(User.display_name).like(prefix, escape="\\"),
                                func.lower(User.family_name).like(prefix, escape="\\"),
                                func.lower(User.given_name).like(prefix, escape="\\"), User.id.in_(by_email)))
    if active is not None:
        query = query.where(User.active.is_(active))
    if after:
        query = query.where(func.lower(User.user_name) > after)
    return list(db.session.scalars(query.order_by(func.lower(User.user_name)).limit(PAGE)))


def user_of(tenant_ids, user_id: str) -> User | None:
    return db.session.scalar(select(User).where(User.id == user_id, User.tenant_id.in_(tenant_ids)))


def groups_of(user: User) -> list[Group]:
    return list(db.session.scalars(select(Group).join(Link, Link.group_id == Group.id)
                                   .where(Link.user_id == user.id).order_by(Group.display_name)))


def requests_about(tenant_id: int, resource_id: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.resource_id == resource_id,
                                                            AuditEntry.tenant_id == tenant_id)
                                   .order_by(AuditEntry.id.desc()).limit(PAGE)))


def events_about(tenant_id: int, resource_id: str) -> list[Event]:
    return list(db.session.scalars(select(Event).where(Event.resource_id == resource_id,
                                                       Event.tenant_id == tenant_id)
                                   .order_by(Event.id.desc()).limit(PAGE)))


@dataclass
class RequestFilter:
    tenant_id: int | None = None
    status: str = ""  # "", "failed", "2xx", "4xx", "5xx" or a status code
    method: str = ""
    resource_id: str = ""  # a resource's id, or a user's userName
    since: datetime | None = None


def _visible(tenant_ids, unrestricted: bool):
    """Rows of these tenants; for an admin of every tenant, also those of requests whose credential was not
    recognised (they belong to no tenant)."""
    mine = AuditEntry.tenant_id.in_(tenant_ids)
    return or_(mine, AuditEntry.tenant_id.is_(None)) if unrestricted else mine


def find_requests(tenant_ids, unrestricted: bool, chosen: RequestFilter, before: int | None) -> list[AuditEntry]:
    """A page of audit rows, newest first, older than row `before`."""
    if chosen.tenant_id in tenant_ids:
        query = select(AuditEntry).where(AuditEntry.tenant_id == chosen.tenant_id)
    else:
        query = select(AuditEntry).where(_visible(tenant_ids, unrestricted))
    if chosen.status == "failed":
        query = query.where(AuditEntry.status >= 400)
    elif chosen.status in ("2xx", "3xx", "4xx", "5xx"):
        low = int(chosen.status[0]) * 100
        query = query.where(and_(AuditEntry.status >= low, AuditEntry.status < low + 100))
    elif chosen.status.isdigit():
        query = query.where(AuditEntry.status == int(chosen.status))
    if chosen.method:
        query = query.where(AuditEntry.method == chosen.method.upper())
    if chosen.resource_id:
        named = select(User.id).where(User.tenant_id.in_(tenant_ids),
                                      func.lower(User.user_name) == chosen.resource_id.lower())
        query = query.where(or_(AuditEntry.resource_id == chosen.resource_id, AuditEntry.resource_id.in_(named)))
    if chosen.since is not None:
        query = query.where(AuditEntry.at >= chosen.since)
    if before:
        query = query.where(AuditEntry.id < before)
    return list(db.session.scalars(query.order_by(AuditEntry.id.desc()).limit(PAGE)))


def request_of(tenant_ids, unrestricted: bool, entry_id: int) -> AuditEntry | None:
    return db.session.scalar(select(AuditEntry).where(AuditEntry.id == entry_id, _visible(tenant_ids, unrestricted)))


def tokens_of(tenant_ids) -> list[Token]:
    return list(db.session.scalars(select(Token).where(Token.tenant_id.in_(tenant_ids))
                                   .order_by(Token.tenant_id, Token.created, Token.id)))


def find_groups(tenant_id: int, text: str, after: str | None) -> list[tuple[Group, int]]:
    """A page of the tenant's groups in displayName order past `after`, with their member counts."""
    query = select(Group).where(Group.tenant_id == tenant_id)
    if text:
        query = query.where(func.lower(Group.display_name).like(_prefix(text), escape="\\"))
    if after:
        query = query.where(func.lower(Group.display_name) > after)
    groups = list(db.session.scalars(query.order_by(func.lower(Group.display_name)).limit(PAGE)))
    counts = dict(db.session.execute(select(Link.group_id, func.count()).where(
        Link.group_id.in_([group.id for group in groups])).group_by(Link.group_id)).all())
    return [(group, counts.get(group.id, 0)) for group in groups]


def group_of(tenant_ids, group_id: str) -> Group | None:
    return db.session.scalar(select(Group).where(Group.id == group_id, Group.tenant_id.in_(tenant_ids)))


def members_of(group: Group, after: str | None) -> tuple[int, list[User]]:
    """(how many members, a page of them in userName order past `after`)."""
    total = db.session.scalar(select(func.count()).select_from(Link).where(Link.group_id == group.id))
    query = select(User).join(Link, Link.user_id == User.id).where(Link.group_id == group.id)
    if after:
        query = query.where(func.lower(User.user_name) > after)
    return total, list(db.session.scalars(query.order_by(func.lower(User.user_name)).limit(PAGE)))


@dataclass
class WebhookSummary:
    webhook: Webhook
    pending: int
    failed: int
    delivered: int


def webhooks_of(tenant_ids) -> list[WebhookSummary]:
    hooks = list(db.session.scalars(select(Webhook).where(Webhook.tenant_id.in_(tenant_ids)).order_by(Webhook.id)))
    counts: dict = {}
    for webhook_id, state, count in db.session.execute(
            select(Delivery.webhook_id, Delivery.state, func.count())
            .where(Delivery.webhook_id.in_([hook.id for hook in hooks])).group_by(Delivery.webhook_id, Delivery.state)):
        counts[(webhook_id, state)] = count
    return [WebhookSummary(hook, counts.get((hook.id, "pending"), 0), counts.get((hook.id, "failed"), 0),
                           counts.get((hook.id, "delivered"), 0)) for hook in hooks]


def webhook_of(tenant_ids, webhook_id: int) -> Webhook | None:
    return db.session.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.tenant_id.in_(tenant_ids)))


def deliveries_of(webhook: Webhook, failed_only: bool, before: int | None) -> list[tuple[Delivery, Event]]:
    query = select(Delivery, Event).join(Event, Event.id == Delivery.event_id).where(Delivery.webhook_id == webhook.id)
    if failed_only:
        query = query.where(Delivery.state == "failed")
    if before:
        query = query.where(Delivery.id < before)
    return list(db.session.execute(query.order_by(Delivery.id.desc()).limit(PAGE)).all())
