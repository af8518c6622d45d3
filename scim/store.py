"""Reading and writing resources: the one place that turns clean SCIM dicts into rows and back."""

import json
from contextlib import contextmanager
from types import SimpleNamespace

from sqlalchemy import ColumnElement, delete, func, select, true, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from models import Group, Link, User, db, utcnow
from scim.errors import invalid_value, not_found, precondition_failed, uniqueness

CHUNK = 5000  # ids per IN (...) list: under SQLite's and PostgreSQL's bound-parameter limits


def chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def valid_id(resource_id: str) -> bool:
    # Ids are UUIDs: anything longer, or with a NUL the database cannot even compare, names nothing.
    return len(resource_id) <= 64 and "\x00" not in resource_id


def get_or_404(tenant: int, model, resource_id: str, kind: str):
    """The tenant's resource; another tenant's is a 404, exactly like one that does not exist."""
    row = db.session.scalar(select(model).where(model.id == resource_id, model.tenant_id == tenant)) \
        if valid_id(resource_id) else None
    if row is None:
        raise not_found(kind, resource_id)
    return row


def get_for_write(tenant: int, model, resource_id: str, kind: str, if_match: set[str] | None = None):
    """The row, locked until the request commits (PostgreSQL: SELECT ... FOR UPDATE), if its version is one
    of the entity tags `if_match` names (RFC 7644 §3.14: else 412, and nothing changes).

    The lock makes concurrent writers to one resource take turns, so each sees the other's change; the
    version column catches what a lock cannot (SQLite) and If-Match compares against the locked row.
    """
    row = None
    if valid_id(resource_id):
        row = db.session.scalar(select(model).where(model.id == resource_id, model.tenant_id == tenant)
                                .with_for_update())
    if row is None:
        raise not_found(kind, resource_id)
    check_if_match(row.version, if_match)
    return row


def check_if_match(version: int, if_match: set[str] | None) -> None:
    """RFC 7644 §3.14: 412, and nothing changes, unless If-Match (when sent) names the current version."""
    if if_match is not None and "*" not in if_match and f'"{version}"' not in if_match:
        raise precondition_failed(f"If-Match does not match the current version W/\"{version}\"")


def page(model, tenant: int, where: ColumnElement | None, order: list, start: int, count: int,
         extra: tuple = ()) -> tuple[list, int]:
    """Page `startIndex` (1-based) of `count` of the tenant's rows in a stable order: the sort asked for, then
    created, id."""
    return page_in_order(model, tenant, where, [*order, model.created, model.id], count, offset=start - 1,
                         extra=extra)


def page_in_order(model, tenant: int, where: ColumnElement | None, ordering: list, count: int, *,
                  offset: int | None = None, past: tuple = (), extra: tuple = ()) -> tuple[list, int]:
    """One page in `ordering` and the total count of matches, in ONE statement: a count subquery, LEFT JOINed
    to the page, so that even an empty page brings the total. The page is picked as ids first (an index-only
    scan: deep pages skip index entries, not rows), then joined to the rows. `past` narrows the page, not the
    total, to where a cursor continues (scim.keyset): conditions that follow one another in the order, each
    read through its own index range, the page being the first `count` of them all. `extra` columns (e.g. a
    user's groups) ride along. Rows are (record, *extra), where a record has the table's columns as
    attributes: plain rows, no ORM objects to build for a read."""
    query = page_query(model, tenant, where, ordering, count, offset=offset, past=past, extra=extra)
    return page_rows(model, db.session.execute(query).all())


def page_query(model, tenant, where: ColumnElement | None, ordering: list, count, *, offset=None, past: tuple = (),
               extra: tuple = ()):
    """page_in_order's statement, of the tenant's rows only; `tenant`, `count` and `offset` may be bound
    parameters (scim.reads builds the first page's statement once)."""
    table = model.__table__
    mine = model.tenant_id == tenant
    matches = select(model.id).where(mine)
    total = select(func.count().label("total")).select_from(model).where(mine)
    if where is not None:
        matches, total = matches.where(where), total.where(where)
    picked = [part.order_by(*ordering).offset(offset).limit(count)
              for part in ([matches.where(condition) for condition in past] or [matches])]
    ids = picked[0] if len(picked) == 1 else union_all(*(select(part.subquery().c.id) for part in picked))
    ids, total = ids.subquery(), total.subquery()
    query = (select(total.c.total, *table.c, *extra).select_from(total)
             .outerjoin(ids, true()).outerjoin(table, table.c.id == ids.c.id).order_by(*ordering))
    if len(picked) > 1:
        query = query.limit(max(count, 1))  # the first `count` of the parts together (1: the total alone)
    return query


def page_rows(model, rows) -> tuple[list, int]:
    """(records, total) from rows that carry the total first, then the table's columns, then any extras."""
    return [records(model.__table__, row, 1) for row in rows if row[1] is not None], rows[0][0]


_KEYS: dict = {}  # table -> its column names, in order (asked once per row of every page)


def records(table, row, offset: int = 0) -> tuple:
    """(record, *rest): the table's columns of a row (from `offset` on) as one object, then the rest."""
    keys = _KEYS.get(table)
    if keys is None:
        keys = _KEYS[table] = tuple(table.c.keys())
    width = len(keys)
    return (SimpleNamespace(**dict(zip(keys, row[offset:offset + width], strict=True))), *row[offset + width:])


_GROUPS_COLUMNS: dict = {}


def groups_column(dialect: str | None = None):
    """A user's groups as one JSON array of [id, displayName] pairs, computed inside the user query.
    Built once per database dialect: it is the same expression for every request.

    Each membership's group name is looked up by the group's key. (A join of link and groups lets
    PostgreSQL hash the whole groups table again for every user of a page while that table is small: a
    third more time for a page of 100 users, and for a lookup, in bench/RESULTS.md.)"""
    dialect = dialect or db.session.get_bind().dialect.name
    if dialect not in _GROUPS_COLUMNS:
        postgres = dialect == "postgresql"
        name = select(Group.display_name).where(Group.id == Link.group_id).scalar_subquery()
        pair = (func.json_build_array if postgres else func.json_array)(Link.group_id, name)
        aggregate = func.json_agg(pair) if postgres else func.json_group_array(pair)
        _GROUPS_COLUMNS[dialect] = select(aggregate).select_from(Link).where(Link.user_id == User.id).scalar_subquery()
    return _GROUPS_COLUMNS[dialect]


def group_pairs(raw) -> list[tuple[str, str]]:
    """(group id, displayName) pairs, by name, from groups_column's value (PostgreSQL hands back a list,
    SQLite text)."""
    pairs = json.loads(raw) if isinstance(raw, str) else (raw or [])
    return [(gid, display) for gid, display in sorted(pairs, key=lambda pair: (pair[1] or "", pair[0]))]


def touch(row) -> None:
    row.last_modified = utcnow()  # the UPDATE this causes also bumps `version` (the mapper's version_id_col)


def fits(values: dict, limit: int = 255) -> None:
    """Attributes kept in indexed columns have a size: longer values are 400, not a database error."""
    for key, value in values.items():
        if isinstance(value, str) and len(value) > limit:
            raise invalid_value(f"{key} is longer than {limit} characters")


@contextmanager
def refused_as_duplicate(what: str):
    """A unique index refusing the writes inside (even for a concurrent worker's row) is 409 uniqueness."""
    try:
        yield
    except IntegrityError:
        db.session.rollback()
        raise uniqueness(f"{what} already exists") from None


def flush_unique(what: str) -> None:
    """Flush; a unique index refusing the write (even a concurrent worker's) becomes 409 uniqueness."""
    with refused_as_duplicate(what):
        db.session.flush()


# Users

def groups_for(user_id: str) -> list[tuple[str, str]]:
    return group_pairs(db.session.scalar(select(groups_column()).where(User.id == user_id)))


# Groups

def write_group(group: Group, resource: dict) -> Group:
    resource = dict(resource)
    fits({"displayName": resource["displayName"], "externalId": resource.get("externalId")})
    resource.pop("members", None)  # membership lives in the link table
    group.display_name = resource["displayName"]
    group.external_id = resource.get("externalId")
    group.data = resource
    if group.id is None:
        db.session.add(group)
    else:
        touch(group)
    flush_unique(f"a group with displayName {group.display_name!r}")
    return group


def members_of(group_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """The members of several groups as (user id, display) pairs, in one statement. A member's display is the
    one the client sent when adding it, or else the user's displayName or userName."""
    found: dict[str, list[tuple[str, str]]] = {gid: [] for gid in group_ids}
    if not group_ids:
        return found
    display = func.coalesce(Link.display, User.display_name, User.user_name)
    rows = db.session.execute(
        select(Link.group_id, Link.user_id, display)
        .join(User, User.id == Link.user_id)
        .where(Link.group_id.in_(group_ids))
        .order_by(Link.group_id, Link.user_id)
    )
    for group_id, uid, shown in rows:
        found[group_id].append((uid, shown))
    return found


def _insert_ignoring_duplicates():
    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Link.__table__)


def add_members(tenant: int, group_id: str, members: dict[str, str | None]) -> list[str]:
    """Add users of the tenant to its group: per chunk, one existence check and one multi-row INSERT; members
    already there are left as they are, display included (ON CONFLICT DO NOTHING), so a retried add changes
    nothing. Another tenant's user is unknown here, like one that does not exist. Returns the ids added (not
    those that were members already)."""
    ids, added = list(members), []
    for part in chunks(ids):
        known = set(db.session.scalars(select(User.id).where(User.id.in_(part), User.tenant_id == tenant)))
        unknown = [uid for uid in part if uid not in known]
        if unknown:
            raise invalid_value(f"unknown user id(s) in members: {', '.join(unknown[:10])}")
        rows = [{"group_id": group_id, "user_id": uid, "display": members[uid]} for uid in part]
        statement = _insert_ignoring_duplicates().on_conflict_do_nothing(index_elements=["group_id", "user_id"])
        try:
            added += db.session.scalars(statement.returning(Link.user_id), rows)
        except IntegrityError:  # the user was being deleted by another transaction at that very moment
            raise invalid_value("a member was deleted while being added; retry") from None
    return added


def remove_members(group_id: str, ids: list[str] | None, where: ColumnElement | None = None) -> list[str]:
    """Remove the given users (or those matching `where`, or everyone when both are None) in one DELETE a chunk;
    returns the ids removed."""
    stmt = delete(Link).where(Link.group_id == group_id).returning(Link.user_id)
    if where is not None:
        return list(db.session.scalars(stmt.where(where)))
    if ids is None:
        return list(db.session.scalars(stmt))
    removed = []
    for part in chunks(ids):
        removed += db.session.scalars(stmt.where(Link.user_id.in_(part)))
    return removed
