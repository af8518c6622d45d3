"""The user writes IdPs send most, as statements SQLAlchemy builds once per database dialect, with parameters.

Okta creates a user on assignment (POST), sends the whole profile back on every change (PUT), and both Okta
and Entra ID deactivate by PATCH. These run Core statements, not the ORM's unit of work:

- a create is one INSERT of the user, and on PostgreSQL its emails in the same statement (a CTE);
- a replace whose emails are those stored (Okta's profile push), and a PATCH that only sets `active` (the
  deactivation), are one UPDATE ... WHERE id = <id> [AND version = <If-Match>] that bumps the version and
  brings the row back (on PostgreSQL with the user's groups). The UPDATE takes the row lock, and PostgreSQL
  checks its WHERE again against the row a concurrent writer committed meanwhile, so nobody's change is
  overwritten unseen (RFC 7644 §3.14) and the emails table needs no rewrite;
- when that UPDATE matches no row (no such user, another version, other emails), the user is read locked
  (SELECT ... FOR UPDATE), which says 404 or 412, or is written with an UPDATE ... WHERE version = <the
  version read> that rewrites the emails in the same statement (on PostgreSQL). That statement starts after
  the lock is held, so it sees the emails a writer that held it before committed.

On PostgreSQL each of these statements also turns on the durable commit for its transaction (models.
SYNCHRONOUS_COMMIT), which then needs no statement of its own. A unique index refusing a userName (even a
concurrent worker's) is 409.
"""

import json
import threading
from types import SimpleNamespace

from sqlalchemy import (
    JSON,
    Boolean,
    Integer,
    String,
    bindparam,
    cast,
    column,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from werkzeug.security import generate_password_hash

from models import SYNCHRONOUS_COMMIT, User, UserEmail, db, made_durable, new_id, utcnow
from scim.errors import ScimError, not_found, precondition_failed
from scim.reads import Prepared
from scim.store import (
    check_if_match,
    fits,
    group_pairs,
    groups_column,
    groups_for,
    records,
    refused_as_duplicate,
    valid_id,
)

USERS = User.__table__
EMAILS = UserEmail.__table__
# One password hash at a time in a worker process: werkzeug's scrypt takes 32 MB for each, and a gthread
# worker's threads would otherwise hold one each at once. Hashing is CPU-bound, and gunicorn runs two
# workers a CPU, so more at once in one process would not finish them sooner.
HASHING = threading.BoundedSemaphore(1)


def hash_password(password: str) -> str:
    with HASHING:
        return generate_password_hash(password)
EMAIL_COLUMNS = ("value", "type", "is_primary")
# What a write sets from the resource (user_row); id and created are set once, on create.
WRITTEN = ("user_name", "display_name", "given_name", "family_name", "external_id", "active", "password_hash",
           "data", "last_modified")
RETURNED = (USERS.c.id, USERS.c.created, USERS.c.version, USERS.c.active, USERS.c.data)
POSTGRESQL = "postgresql"


def _new_emails(user):
    """INSERT of the emails of `user` (a CTE with its id) from the JSON array parameter `emails`."""
    sent = func.json_to_recordset(bindparam("emails", type_=JSON)).table_valued(
        column("value", String), column("type", String), column("is_primary", Boolean),
    ).render_derived(name="sent", with_types=True)
    return insert(EMAILS).from_select(["user_id", *EMAIL_COLUMNS], select(user.c.id, *sent.c)
                                      .select_from(user).join(sent, true()))


def _insert_user(dialect: str):
    statement = insert(USERS).values({name: bindparam(name) for name in ("id", "tenant_id", "created", "version",
                                                                        *WRITTEN)})
    if dialect != POSTGRESQL:
        return statement  # the emails follow in an executemany INSERT
    user = statement.returning(USERS.c.id).cte("new_user")
    return select(SYNCHRONOUS_COMMIT).select_from(user).add_cte(_new_emails(user).cte("new_emails"))


def _returning(statement, dialect: str, old=None):
    """What the response needs of the written row and the write does not know (RETURNED); on PostgreSQL with
    the user's groups, the row as it was before (`old`, for its events), and asking for the durable commit.
    (SQLite's RETURNING cannot carry the groups' subquery, nor another table: they are read apart.)"""
    if dialect != POSTGRESQL:
        return statement.returning(*RETURNED)
    before = () if old is None else (old.c.data.label("old_data"), old.c.active.label("old_active"))
    return statement.returning(*RETURNED, groups_column(dialect).label("groups"), *before,
                               SYNCHRONOUS_COMMIT.label("durable"))


def _old_row():
    """The user as it is before the UPDATE that joins this, locked first: under a concurrent write the lock
    waits for it and reads what it committed, so the events compare against the version replaced."""
    return select(USERS.c.id, USERS.c.data, USERS.c.active).where(
        USERS.c.id == bindparam("user_id"), USERS.c.tenant_id == bindparam("tenant", type_=Integer),
    ).with_for_update().cte("old").prefix_with("MATERIALIZED")


def _new_version(values: dict, where=(), old=None):
    """UPDATE of the tenant's user `user_id`, as a new version, if its version is `expected` (None: any)."""
    expected = bindparam("expected", type_=Integer)
    matches = [USERS.c.id == bindparam("user_id"), USERS.c.tenant_id == bindparam("tenant", type_=Integer),
               or_(expected.is_(None), USERS.c.version == expected), *where]
    if old is not None:
        matches.append(USERS.c.id == old.c.id)
    return update(USERS).where(*matches).values({**values, "version": USERS.c.version + 1})


def _same_emails(dialect: str):
    """The stored `emails` are the JSON document `emails_doc` (as JSON values on PostgreSQL, as minified
    text on SQLite, where another key order only sends the write down the longer path)."""
    doc = bindparam("emails_doc", type_=String)
    if dialect == POSTGRESQL:
        return cast(USERS.c.data.op("->")(literal_column("'emails'")), JSONB).is_not_distinct_from(cast(doc, JSONB))
    return func.json_extract(USERS.c.data, "$.emails").is_not_distinct_from(func.json(doc))


def _replace_if_same_emails(dialect: str):
    values = {name: bindparam(name) for name in WRITTEN}
    # Not sent, active and the password keep their values (a replace must not re-enable an account).
    values["active"] = func.coalesce(bindparam("active", type_=Boolean), USERS.c.active)
    values["password_hash"] = func.coalesce(bindparam("password_hash", type_=String), USERS.c.password_hash)
    old = _old_row() if dialect == POSTGRESQL else None
    return _returning(_new_version(values, [_same_emails(dialect)], old), dialect, old)


def _set_active(dialect: str):
    values = {name: bindparam(name) for name in ("active", "last_modified")}
    old = _old_row() if dialect == POSTGRESQL else None
    return _returning(_new_version(values, old=old), dialect, old)


def _update_user(dialect: str, with_emails: bool):
    statement = _returning(_new_version({name: bindparam(name) for name in WRITTEN}), dialect)
    if dialect != POSTGRESQL or not with_emails:
        return statement  # SQLite: the caller rewrites the emails in statements of their own
    updated = statement.cte("updated")
    old = delete(EMAILS).where(EMAILS.c.user_id.in_(select(updated.c.id))).cte("old_emails")
    return select(*updated.c).add_cte(old, _new_emails(updated).cte("new_emails"))


INSERT_USER = Prepared(_insert_user)
REPLACE_IF_SAME_EMAILS = Prepared(_replace_if_same_emails)
SET_ACTIVE = Prepared(_set_active)
UPDATE_USER = {with_emails: Prepared(lambda dialect, e=with_emails: _update_user(dialect, e))
               for with_emails in (True, False)}
USER_FOR_WRITE = Prepared(lambda _dialect: select(*USERS.c).where(
    USERS.c.id == bindparam("id"), USERS.c.tenant_id == bindparam("tenant", type_=Integer)).with_for_update())


def user_row(resource: dict) -> tuple[dict, list[dict]]:
    """The users row and the user_emails rows of a clean resource dict: `data`, the indexed columns, active
    and the password hash (None when the resource has none: the write decides what that means)."""
    data = dict(resource)
    password = data.pop("password", None)
    name = data.get("name", {})
    fits({"userName": data["userName"], "displayName": data.get("displayName"),
          "externalId": data.get("externalId"), "name.givenName": name.get("givenName"),
          "name.familyName": name.get("familyName")})
    for email in data.get("emails", []):
        fits({"emails.value": email.get("value")})
        fits({"emails.type": email.get("type")}, limit=64)
    row = {
        "user_name": data["userName"], "display_name": data.get("displayName"), "given_name": name.get("givenName"),
        "family_name": name.get("familyName"), "external_id": data.get("externalId"),
        "active": data.pop("active", None),
        # Kept only as a salted hash; never returned (RFC 7643 §4.1.1: returned "never").
        "password_hash": hash_password(password) if password is not None else None,
        "data": data,
        "last_modified": utcnow(),
    }
    return row, email_rows(data)


def email_rows(data: dict) -> list[dict]:
    """The user_emails rows of a resource (one per value of its `emails`), without the user id."""
    return [{"value": e.get("value"), "type": e.get("type"), "is_primary": bool(e.get("primary"))}
            for e in data.get("emails", [])]


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _add_emails(user_id: str, emails: list[dict]) -> None:
    if emails:
        db.session.execute(insert(EMAILS), [{"user_id": user_id, **email} for email in emails])


def _written(result, dialect: str, user_id: str, last_modified, before=None) -> tuple[SimpleNamespace, list] | None:
    """(record, groups) of the user an UPDATE ... RETURNING wrote, or None when it matched no row. The record's
    `before` is the user's attributes and `active` before the write (from the statement's `old` row on
    PostgreSQL, else as given)."""
    row = result.first()
    if row is None:
        return None
    if before is None and "old_data" in row._fields:
        before = {**row.old_data, "active": row.old_active}
    record = SimpleNamespace(id=user_id, created=row.created, last_modified=last_modified, version=row.version,
                             active=row.active, data=row.data, before=before)
    if dialect != POSTGRESQL:
        return record, groups_for(user_id)
    made_durable()
    return record, group_pairs(row.groups)


def _as_before(tenant: int, user_id: str, dialect: str) -> dict | None:
    """SQLite: the user's attributes and `active` before a one-statement write (the request holds the
    database's write lock already, so nothing changes them in between); PostgreSQL reads them in the write."""
    if dialect == POSTGRESQL:
        return None
    row = db.session.execute(select(USERS.c.data, USERS.c.active).where(
        USERS.c.id == user_id, USERS.c.tenant_id == tenant)).first()
    return None if row is None else {**row.data, "active": row.active}


def expected_version(if_match: set[str] | None) -> int | None | bool:
    """The version If-Match asks for (None: any), or False when the one-statement writes cannot say it
    (several tags, or one that is not a version of ours: the locked read compares them)."""
    if if_match is None or "*" in if_match:
        return None
    if len(if_match) != 1:
        return False
    digits = next(iter(if_match))[1:-1]
    return int(digits) if digits.isascii() and digits.isdigit() and str(int(digits)) == digits else False


def insert_user(tenant: int, resource: dict) -> SimpleNamespace:
    """Store a new user of the tenant from a clean resource dict; returns its record (the table's columns as
    attributes)."""
    row, emails = user_row(resource)
    row.update(id=new_id(), tenant_id=tenant, created=row["last_modified"], version=1,
               active=True if row["active"] is None else row["active"])
    dialect = _dialect()
    with refused_as_duplicate(f"a user with userName {row['user_name']!r}"):
        db.session.execute(INSERT_USER.statement(dialect), {**row, "emails": emails}).close()
        if dialect == POSTGRESQL:
            made_durable()
        else:
            _add_emails(row["id"], emails)
    return SimpleNamespace(**row)


def write_replacement(tenant: int, user_id: str, if_match: set[str] | None, resource: dict) -> tuple:
    """Replace the tenant's user with a clean resource dict (RFC 7644 §3.5.1), as a new version: (record,
    groups)."""
    expected = expected_version(if_match)
    if valid_id(user_id) and expected is not False:
        try:
            row, _emails = user_row(resource)
        except ScimError:  # a missing user or a stale If-Match is the answer first, as when it is read first
            user_for_write(tenant, user_id, if_match)
            raise
        dialect = _dialect()
        emails_doc, before = resource.get("emails"), _as_before(tenant, user_id, dialect)
        with refused_as_duplicate(f"a user with userName {row['user_name']!r}"):
            result = db.session.execute(REPLACE_IF_SAME_EMAILS.statement(dialect), {
                **row, "user_id": user_id, "tenant": tenant, "expected": expected,
                "emails_doc": None if emails_doc is None else json.dumps(emails_doc)})
        written = _written(result, dialect, user_id, row["last_modified"], before)
        if written is not None:
            return written
    return update_user(user_for_write(tenant, user_id, if_match), resource)


def write_active(tenant: int, user_id: str, if_match: set[str] | None, active: bool) -> tuple | None:
    """Set only `active` (a deactivation), as a new version: (record, groups); None when no row matched (no
    such user, or another version than If-Match names): the caller's locked read says which."""
    expected = expected_version(if_match)
    if not valid_id(user_id) or expected is False:
        return None
    dialect, now = _dialect(), utcnow()
    before = _as_before(tenant, user_id, dialect)
    result = db.session.execute(SET_ACTIVE.statement(dialect), {
        "user_id": user_id, "tenant": tenant, "expected": expected, "active": active, "last_modified": now})
    return _written(result, dialect, user_id, now, before)


def user_for_write(tenant: int, user_id: str, if_match: set[str] | None = None) -> SimpleNamespace:
    """The tenant's user's record, locked until the request commits (PostgreSQL: SELECT ... FOR UPDATE; SQLite holds
    the database's write lock already), if its version is one `if_match` names (RFC 7644 §3.14: else 412)."""
    row = None
    if valid_id(user_id):
        row = db.session.execute(USER_FOR_WRITE.statement(_dialect()), {"id": user_id, "tenant": tenant}).first()
    if row is None:
        raise not_found("User", user_id)
    check_if_match(row.version, if_match)
    return records(USERS, row)[0]


def update_user(current, resource: dict) -> tuple:
    """Write the user `current` (from user_for_write, so locked) as a clean resource dict, as a new version,
    its emails rewritten if they changed: (record, groups)."""
    row, emails = user_row(resource)
    if row["active"] is None:
        row["active"] = current.active
    if row["password_hash"] is None:
        row["password_hash"] = current.password_hash
    rewrite = emails != email_rows(current.data)
    dialect = _dialect()
    with refused_as_duplicate(f"a user with userName {row['user_name']!r}"):
        result = db.session.execute(UPDATE_USER[rewrite].statement(dialect),
                                    {**row, "user_id": current.id, "tenant": current.tenant_id,
                                     "expected": current.version, "emails": emails})
    written = _written(result, dialect, current.id, row["last_modified"], {**current.data, "active": current.active})
    if written is None:  # the version moved since it was read: a writer that held no lock got in between
        raise precondition_failed("the resource was modified by another request; read it again and retry")
    if rewrite and dialect != POSTGRESQL:
        db.session.execute(delete(EMAILS).where(EMAILS.c.user_id == current.id))
        _add_emails(current.id, emails)
    return written
