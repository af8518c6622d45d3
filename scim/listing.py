"""The list endpoints' shared path: filter -> WHERE, sort -> ORDER BY, paging by index or by cursor, one
page, a ListResponse."""

import time
from collections.abc import Callable

from models import User
from scim.auth import tenant
from scim.cursors import Cursor, encode, query_digest
from scim.filters import AttributeMap, filter_to_where, lookup_filter
from scim.keyset import KeysetPage, keyset_page
from scim.reads import LOOKUP_ATTRIBUTES, lookup, users_page, users_past
from scim.requests import CursorPaging, check_filter_length, cursor_key, cursor_paging, page_args, param, wants
from scim.responses import list_response
from scim.sorting import sort_key
from scim.store import page


def list_resources(model, attributes: AttributeMap, render: Callable[[list], list[dict]], extra: tuple = ()):
    """`render` turns page rows, tuples of (model, *extra), into SCIM resources."""
    filter_text = check_filter_length("filter", param("filter"))
    sort_by = check_filter_length("sortBy", param("sortBy"))
    where = filter_to_where(filter_text, attributes)
    key = sort_key(sort_by, param("sortOrder"), attributes)
    mine = tenant()  # the credential's tenant: every statement below reads its rows only
    query = list_digest(model, mine, filter_text, sort_by, key)
    paging = cursor_paging(query)
    if paging is not None:
        return cursor_list(model, mine, where, key, paging, query, render, extra)
    start, count = page_args()
    found = lookup_filter(filter_text, attributes, LOOKUP_ATTRIBUTES) if model is User and key is None else None
    if found:  # Okta's and Entra's lookup, with a statement built once
        rows, total = lookup(mine, *found, start, count, wants("groups"))
    elif model is User and key is None and where is None:  # an import's pages, likewise
        rows, total = users_page(mine, start, count, wants("groups"))
    else:
        rows, total = page(model, mine, where, [] if key is None else [key.term()], start, count, extra)
    return list_response(render(rows), total, start)


def list_digest(model, tenant_id: int, filter_text: str | None, sort_by: str | None, key) -> str:
    """What a cursor is bound to: the list's tenant, type, filter and order (RFC 9865 §2: the same query
    throughout; another tenant's cursor is refused like one for another filter)."""
    return query_digest(tenant_id, model.__tablename__, (filter_text or "").strip(), (sort_by or "").strip().lower(),
                        key is not None and key.descending)


def cursor_list(model, tenant_id: int, where, key, paging: CursorPaging, query: str, render, extra: tuple):
    cursor = paging.cursor
    position, backward = cursor and cursor.position, cursor is not None and cursor.backward
    if model is User and where is None and key is None:  # all users: statements built once
        result = users_past(tenant_id, position, backward, paging.count, wants("groups"))
    else:
        result = keyset_page(model, tenant_id, where, key, paging.count, position, backward, extra)
    next_cursor, previous_cursor = page_cursors(result, paging, query, cursor_key())
    return list_response(render(result.rows), result.total, next_cursor=next_cursor, previous_cursor=previous_cursor)


def page_cursors(result: KeysetPage, paging: CursorPaging, query: str, key: bytes) -> tuple[str | None, str | None]:
    """The page's nextCursor and previousCursor (None where it has none), signed with `key`."""
    after, before = neighbours(result, paging.cursor)
    issued = int(time.time())

    def issue(position: tuple | None, backward: bool) -> str | None:
        if position is None:
            return None
        return encode(Cursor(position, backward, query, paging.count, issued), key)
    return issue(after, False), issue(before, True)


def neighbours(result: KeysetPage, cursor: Cursor | None) -> tuple[tuple | None, tuple | None]:
    """The positions the page's nextCursor and previousCursor continue from. RFC 9865 §2: nextCursor on every
    page but the last, and previousCursor (optional) never on the first. Read forwards, the page knows whether
    more rows follow; read backwards (from a previousCursor), whether more rows precede it, and it came from
    the page after it. An empty page (count=0, or every row past the cursor deleted) has neither."""
    if not result.rows:
        return None, None
    if cursor is not None and cursor.backward:
        return result.last, result.first if result.more else None
    return result.last if result.more else None, result.first if cursor is not None else None
