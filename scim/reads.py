"""The reads IdPs send most, as statements SQLAlchemy builds once per database dialect, with parameters.

Okta and Entra look a user up by userName or externalId before every change, and read it back by id after.
Building such a statement is most of a request's cost, so these are built once and run with their values.
Two runners run them: the session (the Flask views, on both databases) and a DBAPI cursor (the hot path,
scim/hotpath.py, on PostgreSQL) with the SQL compiled from the same statement: one definition for both.
"""

from collections.abc import Callable

from sqlalchemy import BigInteger, Integer, bindparam, func, null, select

from models import User, db
from scim.errors import not_found
from scim.filters import USER_MAP, folded_column, folded_value
from scim.keyset import KeysetPage, asked, check_position, keyset_result, ordering, past_tie
from scim.store import group_pairs, groups_column, page_query, page_rows, records, valid_id

LOOKUP_ATTRIBUTES = ("username", "externalid")  # the attributes IdPs look users up by


class Prepared:
    """A statement built once per dialect by `build(dialect name)`; its SQL compiled once per dialect too."""

    def __init__(self, build: Callable[[str], object]):
        self._build = build
        self._statements: dict = {}
        self._compiled: dict = {}

    def statement(self, dialect: str):
        if dialect not in self._statements:
            self._statements[dialect] = self._build(dialect)
        return self._statements[dialect]

    def sql(self, dialect) -> tuple[str, dict, bool]:
        """(SQL text, default parameters, whether it returns rows) for a dialect object, e.g. psycopg's: what a
        DBAPI cursor runs."""
        if dialect.name not in self._compiled:
            compiled = self.statement(dialect.name).compile(dialect=dialect)
            returns_rows = not (compiled.isinsert or compiled.isupdate or compiled.isdelete)
            self._compiled[dialect.name] = (compiled.string, dict(compiled.params), returns_rows)
        return self._compiled[dialect.name]


def _groups(with_groups: bool, dialect: str):
    return groups_column(dialect) if with_groups else null()


TENANT = bindparam("tenant", type_=Integer)  # every statement here is of one tenant's rows

USER_BY_ID = {with_groups: Prepared(lambda dialect, g=with_groups: select(*User.__table__.c, _groups(g, dialect))
                                    .where(User.id == bindparam("id"), User.tenant_id == TENANT))
              for with_groups in (True, False)}


def _lookup(attribute: str, with_groups: bool) -> Prepared:
    """The page of users whose attribute equals the value, each row with the total of matches (a window
    count: no second scan for the total; ordered as the general path orders a page)."""
    table = User.__table__
    matches = folded_column(USER_MAP.scalars[attribute]) == bindparam("value")
    return Prepared(lambda dialect: select(func.count().over().label("total"), *table.c, _groups(with_groups, dialect))
                    .where(User.tenant_id == TENANT, matches).order_by(table.c.created, table.c.id)
                    .offset(bindparam("offset", type_=BigInteger)).limit(bindparam("limit", type_=BigInteger)))


def _lookup_total(attribute: str) -> Prepared:
    """The total alone, for a page that came back empty (startIndex past the matches, or count=0)."""
    matches = folded_column(USER_MAP.scalars[attribute]) == bindparam("value")
    return Prepared(lambda _dialect: select(func.count()).select_from(User).where(User.tenant_id == TENANT, matches))


def _page(with_groups: bool) -> Prepared:
    """A page of all users, as the general path builds it with no filter and no sortBy."""
    return Prepared(lambda dialect: page_query(
        User, TENANT, None, [User.created, User.id], bindparam("limit", type_=BigInteger),
        offset=bindparam("offset", type_=BigInteger), extra=(_groups(with_groups, dialect),)))


def _keyset(backward: bool, with_groups: bool) -> Prepared:
    """The page of all users past a position (created, id), as scim.keyset builds it with no filter and no
    sortBy."""
    at = past_tie(User, bindparam("created", type_=User.created.type), bindparam("row_id", type_=User.id.type),
                  backward)
    return Prepared(lambda dialect: page_query(
        User, TENANT, None, ordering(User, None, backward), bindparam("limit", type_=BigInteger), past=(at,),
        extra=(_groups(with_groups, dialect),)))


LOOKUPS = {(attribute, g): _lookup(attribute, g) for attribute in LOOKUP_ATTRIBUTES for g in (True, False)}
PAGES = {g: _page(g) for g in (True, False)}
LOOKUP_TOTALS = {attribute: _lookup_total(attribute) for attribute in LOOKUP_ATTRIBUTES}
KEYSETS = {(backward, g): _keyset(backward, g) for backward in (False, True) for g in (True, False)}


class SessionRunner:
    """Runs prepared statements in the request's session."""

    def rows(self, prepared: Prepared, params: dict) -> list:
        return db.session.execute(prepared.statement(db.session.get_bind().dialect.name), params).all()


def user_with_groups(tenant: int, user_id: str, runner=None, with_groups: bool = True) -> tuple:
    """(user record, [(group id, displayName)]) of the tenant's user, or 404."""
    rows = (runner or SessionRunner()).rows(USER_BY_ID[with_groups], {"id": user_id, "tenant": tenant}) \
        if valid_id(user_id) else []
    if not rows:
        raise not_found("User", user_id)
    record, groups = records(User.__table__, rows[0])
    return record, group_pairs(groups)


def users_page(tenant: int, start: int, count: int, with_groups: bool, runner=None) -> tuple:
    """Page `startIndex` of all the tenant's users and their total: what store.page gives with no filter and no
    sort."""
    params = {"tenant": tenant, "offset": start - 1, "limit": count}
    return page_rows(User, (runner or SessionRunner()).rows(PAGES[with_groups], params))


def lookup(tenant: int, attribute: str, value: str, start: int, count: int, with_groups: bool, runner=None) -> tuple:
    """The page of the tenant's users whose `attribute` equals `value` (by its caseExact), and their total: the
    same rows, order and total as the general list path gives for `filter=<attribute> eq "<value>"`."""
    runner = runner or SessionRunner()
    params = {"tenant": tenant, "value": folded_value(USER_MAP.scalars[attribute], value), "offset": start - 1,
              "limit": count}
    rows = runner.rows(LOOKUPS[(attribute, with_groups)], params)
    if rows:
        return page_rows(User, rows)
    empty = start > 1 or count == 0  # else no row means no match
    total = runner.rows(LOOKUP_TOTALS[attribute], {"tenant": tenant, "value": params["value"]})[0][0] if empty else 0
    return [], total


def users_past(tenant: int, position: tuple | None, backward: bool, count: int, with_groups: bool,
               runner=None) -> KeysetPage:
    """The cursor page of all the tenant's users past `position` (from the start without one): what
    scim.keyset.keyset_page gives with no filter and no sortBy."""
    runner = runner or SessionRunner()
    if position is None:
        rows = runner.rows(PAGES[with_groups], {"tenant": tenant, "offset": 0, "limit": asked(count)})
    else:
        check_position(User, None, position)
        created, row_id = position
        rows = runner.rows(KEYSETS[(backward, with_groups)], {"tenant": tenant, "created": created,
                                                              "row_id": row_id, "limit": asked(count)})
    return keyset_result(*page_rows(User, rows), count, backward)
