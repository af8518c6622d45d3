"""Reading and writing resources: the one place that turns clean SCIM dicts into rows and back."""

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from werkzeug.security import generate_password_hash

from models import Group, Link, User, UserEmail, db, utcnow
from scim.errors import ScimError, bad_request, not_found
from scim.serialize import check_if_match, location

CHUNK = 5000  # ids per IN (...) list: under SQLite's and PostgreSQL's bound-parameter limits


def chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def commit(response):
    """Commit the request's transaction once its response is built: nothing after the commit touches the
    database, so a client is never told "error" about a write that was made."""
    db.session.commit()
    return response


def valid_id(resource_id: str) -> bool:
    # Ids are UUIDs: anything longer, or with a NUL the database cannot even compare, names nothing.
    return len(resource_id) <= 64 and "\x00" not in resource_id


def get_or_404(model, resource_id: str, kind: str):
    row = db.session.get(model, resource_id) if valid_id(resource_id) else None
    if row is None:
        raise not_found(kind, resource_id)
    return row


def get_for_write(model, resource_id: str, kind: str):
    """The row, locked until the request commits (PostgreSQL: SELECT ... FOR UPDATE), after If-Match.

    The lock makes concurrent writers to one resource take turns, so each sees the other's change; the
    version column catches what a lock cannot (SQLite) and If-Match compares against the locked row.
    """
    row = None
    if valid_id(resource_id):
        row = db.session.scalar(select(model).where(model.id == resource_id).with_for_update())
    if row is None:
        raise not_found(kind, resource_id)
    check_if_match(row.version)
    return row


def page(model, where: ColumnElement | None, order: list, start: int, count: int) -> tuple[list, int]:
    """One page in a stable order (the sort asked for, then created, id), and the total count, both in SQL."""
    total_query = select(func.count()).select_from(model)
    rows_query = select(model).order_by(*order, model.created, model.id).offset(start - 1).limit(count)
    if where is not None:
        total_query, rows_query = total_query.where(where), rows_query.where(where)
    total = db.session.scalar(total_query)
    rows = list(db.session.scalars(rows_query)) if count else []
    return rows, total


def touch(row) -> None:
    row.last_modified = utcnow()  # the UPDATE this causes also bumps `version` (the mapper's version_id_col)


def fits(values: dict, limit: int = 255) -> None:
    """Attributes kept in indexed columns have a size: longer values are 400, not a database error."""
    for key, value in values.items():
        if isinstance(value, str) and len(value) > limit:
            raise bad_request(f"{key} is longer than {limit} characters")


def flush_unique(what: str) -> None:
    """Flush; a unique index refusing the write (even a concurrent worker's) becomes 409 uniqueness."""
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise ScimError(409, f"{what} already exists", "uniqueness") from None


# Users

def write_user(user: User, resource: dict) -> User:
    """Store a clean resource dict on `user`: `data`, the indexed columns, the emails table, the password."""
    resource = dict(resource)
    if user.id is not None:  # before the new values are set, so that autoflush cannot write them early
        db.session.execute(delete(UserEmail).where(UserEmail.user_id == user.id))
        touch(user)
    password = resource.pop("password", None)
    if password is not None:
        # Kept only as a salted hash; never returned (RFC 7643 §4.1.1: returned "never").
        user.password_hash = generate_password_hash(password)
    name = resource.get("name", {})
    fits({"userName": resource["userName"], "displayName": resource.get("displayName"),
          "externalId": resource.get("externalId"), "name.givenName": name.get("givenName"),
          "name.familyName": name.get("familyName")})
    for email in resource.get("emails", []):
        fits({"emails.value": email.get("value")})
        fits({"emails.type": email.get("type")}, limit=64)
    user.user_name = resource["userName"]
    user.display_name = resource.get("displayName")
    user.given_name = name.get("givenName")
    user.family_name = name.get("familyName")
    user.external_id = resource.get("externalId")
    # Omitted from a PUT, active keeps its value: a replace must not re-enable a deactivated account.
    user.active = resource.pop("active", True if user.active is None else user.active)
    user.data = resource
    if user.id is None:
        db.session.add(user)
    flush_unique(f"a user with userName {user.user_name!r}")
    emails = [
        {"user_id": user.id, "value": e.get("value"), "type": e.get("type"),
         "is_primary": bool(e.get("primary"))}
        for e in resource.get("emails", [])
    ]
    if emails:
        db.session.execute(insert(UserEmail), emails)
    return user


def groups_of(user_ids: list[str]) -> dict[str, list[dict]]:
    """The read-only `groups` attribute of several users, in one statement."""
    found: dict[str, list[dict]] = {uid: [] for uid in user_ids}
    if not user_ids:
        return found
    rows = db.session.execute(
        select(Link.user_id, Group.id, Group.display_name)
        .join(Group, Group.id == Link.group_id)
        .where(Link.user_id.in_(user_ids))
        .order_by(Group.display_name, Group.id)
    )
    for user_id, group_id, display in rows:
        found[user_id].append(
            {"value": group_id, "$ref": location("Groups", group_id), "display": display, "type": "direct"}
        )
    return found


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


def members_of(group_ids: list[str]) -> dict[str, list[dict]]:
    """The `members` of several groups, in one statement."""
    found: dict[str, list[dict]] = {gid: [] for gid in group_ids}
    if not group_ids:
        return found
    rows = db.session.execute(
        select(Link.group_id, Link.user_id, User.user_name, User.display_name)
        .join(User, User.id == Link.user_id)
        .where(Link.group_id.in_(group_ids))
        .order_by(Link.group_id, Link.user_id)
    )
    for group_id, uid, user_name, display in rows:
        found[group_id].append(
            {"value": uid, "$ref": location("Users", uid), "display": display or user_name, "type": "User"}
        )
    return found


def member_ids(members) -> list[str]:
    """The user ids of a `members` value: a list of {"value": id, ...} (Okta sends no `type`)."""
    if members is None:
        return []
    if isinstance(members, dict):
        members = [members]
    if not isinstance(members, list):
        raise bad_request("members must be an array of {\"value\": \"<user id>\"}")
    ids = []
    for member in members:
        if not isinstance(member, dict) or not isinstance(member.get("value"), str):
            raise bad_request("each member must be an object with a string value (the user id)")
        if str(member.get("type", "User")).lower() not in ("user", ""):
            raise bad_request("only users can be members of a group")
        ids.append(member["value"])
    return list(dict.fromkeys(ids))


def _insert_ignoring_duplicates(rows: list[dict]):
    dialect = db.session.get_bind().dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Link)
    return stmt.on_conflict_do_nothing(index_elements=["group_id", "user_id"])


def add_members(group_id: str, ids: list[str]) -> None:
    """Add users to a group: one existence check and one INSERT per chunk; existing members are left as they are."""
    for part in chunks(ids):
        # FOR SHARE (PostgreSQL): a user being added cannot be deleted until this request commits.
        known = set(db.session.scalars(select(User.id).where(User.id.in_(part)).with_for_update(read=True)))
        unknown = [uid for uid in part if uid not in known]
        if unknown:
            raise bad_request(f"unknown user id(s) in members: {', '.join(unknown[:10])}")
        rows = [{"group_id": group_id, "user_id": uid} for uid in part]
        try:
            db.session.execute(_insert_ignoring_duplicates(rows), rows)
        except IntegrityError:  # SQLite takes no share lock: the user was deleted in between
            raise bad_request("a member was deleted while being added; retry") from None


def remove_members(group_id: str, ids: list[str] | None, where: ColumnElement | None = None) -> None:
    """Remove the given users (or those matching `where`, or everyone when both are None) in one DELETE a chunk."""
    stmt = delete(Link).where(Link.group_id == group_id)
    if where is not None:
        db.session.execute(stmt.where(where))
    elif ids is None:
        db.session.execute(stmt)
    else:
        for part in chunks(ids):
            db.session.execute(stmt.where(Link.user_id.in_(part)))
