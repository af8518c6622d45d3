"""Events: each change to a tenant's users and groups, written in the transaction of the change itself.

A view notes what it changed (the resource as it is afterwards, rendered as its response is); membership
changes are noted by the statements that made them (the user ids an INSERT or DELETE really added or
removed) and reduced to the net change of the request: a member removed and added again by one PUT is no
event. scim.audit.commit writes what is pending with the request's audit row, before its COMMIT, so a change
that rolls back leaves no event and one that commits loses none.

The feed (scim/feed.py) reads a tenant's events in (txid, id) order. On PostgreSQL `txid` is the writing
transaction's id, and the feed returns only events of transactions older than every one still running
(`pg_snapshot_xmin`): a transaction that began earlier but commits later cannot add an event before a
position already read. SQLite's writers take turns on the database's write lock, so there row ids follow
commit order and `txid` is 0.
"""

from datetime import timedelta

from flask import g
from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    String,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    tuple_,
)

from models import Event, db, new_id, utcnow
from scim.reads import Prepared
from scim.serialize import timestamp

TYPES = ("user.created", "user.updated", "user.deactivated", "user.reactivated", "user.deleted",
         "group.created", "group.updated", "group.deleted", "group.member_added", "group.member_removed")
# What an update's `attributes` never names: what every write changes, or what has events of its own.
NOT_COMPARED = {"id", "meta", "schemas", "groups", "members", "active"}
TXID = {"postgresql": literal_column("pg_current_xact_id()::text::bigint")}
EVENTS = Event.__table__
NOTED = ("type", "resource_type", "resource_id", "attributes", "data")  # what a view notes of an event
SETTLED = literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")  # older ones have all ended


def begin() -> None:
    """Nothing pending: a request (or its second attempt on a new connection) starts here."""
    g.events, g.memberships = [], {}


def note(kind: str, resource_type: str, resource_id: str, data: dict, attributes: list[str] | None = None) -> None:
    """An event of this request's tenant, written when the request commits (scim.audit.commit)."""
    g.setdefault("events", []).append({"type": kind, "resource_type": resource_type, "resource_id": resource_id,
                                       "attributes": attributes, "data": data})


def changed(before: dict, after: dict) -> list[str]:
    """The attributes whose values differ, in the order the resource has them."""
    return [name for name in dict.fromkeys([*after, *before])
            if name not in NOT_COMPARED and before.get(name) != after.get(name)]


def user_written(before: dict | None, after: dict, resource: dict, password_sent: bool = False) -> None:
    """A user's events: `before` and `after` are its stored attributes with `active` (before None: created),
    `resource` the user as the response renders it. A replace that changes nothing writes no event."""
    if before is None:
        note("user.created", "User", resource["id"], resource)
        return
    attributes = changed(before, after) + ["password"] * password_sent
    if attributes:
        note("user.updated", "User", resource["id"], resource, attributes)
    if bool(before.get("active")) != bool(after.get("active")):
        note("user.reactivated" if after.get("active") else "user.deactivated", "User", resource["id"], resource)


def user_deleted(resource: dict) -> None:
    note("user.deleted", "User", resource["id"], resource)


def members_changed(group_id: str, added=(), removed=()) -> None:
    """User ids a statement added to or removed from a group; each keeps (member before, member now)."""
    states = g.setdefault("memberships", {}).setdefault(group_id, {})
    for user_id in removed:
        states[user_id] = (states.get(user_id, (True,))[0], False)
    for user_id in added:
        states[user_id] = (states.get(user_id, (False,))[0], True)


def group_written(before: dict | None, after: dict, resource: dict) -> None:
    """A group's events (`resource` without its members), then one per member its membership gained or lost."""
    group_id = resource["id"]
    if before is None:
        note("group.created", "Group", group_id, resource)
    else:
        attributes = changed(before, after)
        if attributes:
            note("group.updated", "Group", group_id, resource, attributes)
    group = {"id": group_id, "displayName": resource.get("displayName")}
    for user_id, (was, now) in g.get("memberships", {}).pop(group_id, {}).items():
        if was != now:
            note("group.member_added" if now else "group.member_removed", "Group", group_id,
                 {"group": group, "member": {"value": user_id}})


def group_deleted(resource: dict) -> None:
    """Its memberships go with it (ON DELETE CASCADE): group.deleted stands for them."""
    g.get("memberships", {}).pop(resource["id"], None)
    note("group.deleted", "Group", resource["id"], resource)


def take_pending() -> list[dict]:
    rows, g.events = g.get("events") or [], []
    return rows


def _from_json(_dialect: str):
    """PostgreSQL: INSERT of the events in the JSON array parameter `events`, in their order, as one statement
    whatever their number (a 1,000-member PATCH's too); the database numbers them and draws their ids."""
    sent = func.json_array_elements(bindparam("events", type_=JSON)).table_valued(
        "value", with_ordinality="position").render_derived(name="sent")
    value = sent.c.value

    def text_of(key):
        return value.op("->>")(literal(key))

    def json_of(key):  # SQL NULL for a JSON null, as the ORM writes None
        return case((text_of(key).is_(None), null()), else_=value.op("->")(literal(key)))
    return insert(EVENTS).from_select(
        ["event_id", "tenant_id", "txid", "occurred", *NOTED],
        select(cast(func.gen_random_uuid(), String), bindparam("events_tenant", type_=Integer), TXID["postgresql"],
               bindparam("events_at", type_=DateTime(timezone=True)), text_of("type"), text_of("resource_type"),
               text_of("resource_id"), json_of("attributes"), json_of("data"))
        .select_from(sent).order_by(sent.c.position))


FROM_JSON = Prepared(_from_json)
ROWS = Prepared(lambda _dialect: insert(EVENTS))  # SQLite: one row each, executemany


def parameters(rows: list[dict]) -> dict:
    """FROM_JSON's parameters for a request's events (scim.audit runs it with the audit row)."""
    return {"events": rows, "events_tenant": g.tenant_id, "events_at": utcnow()}


def write(rows: list[dict]) -> None:
    """Within the request's transaction: the events, on their own (SQLite, or an audit row that cannot carry
    them)."""
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        db.session.execute(FROM_JSON.statement(dialect), parameters(rows))
        return
    now, tenant = utcnow(), g.tenant_id
    db.session.execute(ROWS.statement(dialect), [
        {**row, "event_id": new_id(), "tenant_id": tenant, "txid": 0, "occurred": now} for row in rows])


def type_filter(patterns: list[str]):
    """`user.created`, or `group.*` (any pattern ending in `*`: the types it begins); None for every type."""
    terms = [Event.type.startswith(p[:-1], autoescape=True) if p.endswith("*") else Event.type == p
             for p in patterns]
    return or_(*terms) if terms else None


def position_of(tenant: int, event_id: str) -> tuple[int, int] | None:
    row = db.session.execute(select(Event.txid, Event.id).where(
        Event.tenant_id == tenant, Event.event_id == event_id)).first()
    return None if row is None else (row.txid, row.id)


def page(tenant: int, after: tuple[int, int] | None, limit: int, patterns: list[str]) -> list[Event]:
    """Up to `limit` of the tenant's events past `after` (a position), in feed order, settled ones only."""
    query = select(Event).where(Event.tenant_id == tenant)
    if after is not None:
        query = query.where(tuple_(Event.tenant_id, Event.txid, Event.id) > tuple_(tenant, *after))
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.where(Event.txid < SETTLED)
    kinds = type_filter(patterns)
    if kinds is not None:
        query = query.where(kinds)
    return list(db.session.scalars(query.order_by(Event.txid, Event.id).limit(limit)))


def as_json(event: Event, tenant_name: str) -> dict:
    """An event as the feed and the webhooks send it."""
    body = {"id": event.event_id, "type": event.type, "tenant": tenant_name, "time": timestamp(event.occurred),
            "resource": {"type": event.resource_type, "id": event.resource_id}}
    if event.attributes is not None:
        body["attributes"] = event.attributes
    body["data"] = event.data
    return body


def prune(days: int) -> int:
    """Delete events older than the retention period, but each tenant's newest (a caught-up consumer's
    cursor names it); returns how many."""
    if not days or days <= 0:
        return 0
    newest = select(func.max(Event.id)).group_by(Event.tenant_id)
    result = db.session.execute(delete(Event).where(Event.occurred < utcnow() - timedelta(days=days),
                                                    Event.id.not_in(newest)))
    db.session.commit()
    return result.rowcount
