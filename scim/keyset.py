"""Keyset paging, for cursors (RFC 9865): a page is the rows past a position in the list's order, found by
comparing with that position, so that the last page of 100,000 users costs what the first does (index
paging, scim.store.page, skips startIndex - 1 index entries instead).

The order is the sort key when sortBy gives one (scim.sorting.SortKey: NULL sorts above every value), then
`created`, then `id`, both ascending. "Past a position" is spelled out key by key, so that descending keys
and NULLs are exact on SQLite and PostgreSQL alike; `created, id` is one row-value comparison, which both
answer from the index on (created, id), and a sort key's condition leads with a range its index answers.
A previous page reads the order backwards from its position, and its rows are turned around.

Plain arguments in (the WHERE of a filter, the sort key, a position), records out; no Flask.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, literal, or_, tuple_

from scim.errors import invalid_cursor
from scim.store import page_in_order


@dataclass(frozen=True)
class KeysetPage:
    rows: list  # (record, *extra), in the list's order
    total: int  # every match, not only this page's
    first: tuple | None  # the positions of the first and the last row (None for an empty page)
    last: tuple | None
    more: bool  # rows remain past the page, in the direction it was read


def keyset_page(model, tenant: int, where: ColumnElement | None, key, count: int, position: tuple | None = None,
                backward: bool = False, extra: tuple = ()) -> KeysetPage:
    """`count` of the tenant's rows after `position` (before it when `backward`; from the start without one),
    in the list's order, with the total and whether more rows follow. One statement: scim.store.page_in_order, asked for
    one row more than the page, which says whether there are more."""
    values = () if key is None else (key.expression,)  # the sort value rides along: the next position
    past = ()
    if position is not None:
        check_position(model, key, position)
        past = tuple(beyond(model, key, position, backward))
    rows, total = page_in_order(model, tenant, where, ordering(model, key, backward), asked(count), past=past,
                                extra=(*extra, *values))
    return keyset_result(rows, total, count, backward, len(values))


def asked(count: int) -> int:
    """The rows to read for a page of `count`: one more, which says whether more rows follow."""
    return count + 1 if count else 0


def keyset_result(rows: list, total: int, count: int, backward: bool, values: int = 0) -> KeysetPage:
    """The page from the rows read for it (asked(count) of them, in the order read; each ends with its
    `values` sort values)."""
    more, rows = len(rows) > count, rows[:count]
    if backward:
        rows.reverse()
    positions = [(*row[len(row) - values:], row[0].created, row[0].id) for row in rows]
    rows = [row[:len(row) - values] for row in rows]
    return KeysetPage(rows, total, positions[0] if rows else None, positions[-1] if rows else None, more)


def ordering(model, key, backward: bool = False) -> list:
    """ORDER BY for the list (the sort key, created, id), or for reading it backwards."""
    ties = [model.created.desc(), model.id.desc()] if backward else [model.created.asc(), model.id.asc()]
    return ([] if key is None else [key.term(backward)]) + ties


def beyond(model, key, position: tuple, backward: bool) -> list[ColumnElement]:
    """The rows strictly after `position` in the list's order (before it when `backward`), as conditions that
    follow one another in that order."""
    *value, created, row_id = position
    tie = past_tie(model, literal(created, model.created.type), literal(row_id, model.id.type), backward)
    if key is None:
        return [tie]
    # Ascending read forwards, or descending read backwards, goes towards greater values.
    return _past_key(key, value[0], key.descending == backward, tie)


def past_tie(model, created, row_id, backward: bool) -> ColumnElement:
    """The rows after (created, row_id) in `created, id` order, or before it when `backward`: one row-value
    comparison, answered from the index on (created, id). The values may be bound parameters (scim.reads)."""
    ties, at = tuple_(model.created, model.id), tuple_(created, row_id)
    return ties < at if backward else ties > at


def _past_key(key, value, upward: bool, tie: ColumnElement) -> list[ColumnElement]:
    """Past `value` on the sort key, `tie` deciding among equal values. NULL is above every value: the rows
    without one come last going up and first going down, as a part of their own, so that each part leads
    with a range (IS NULL, >=, <=) that the key's index answers in order; one condition with OR would make
    the database read the index from its start."""
    expression = key.expression
    at_null = and_(expression.is_(None), tie)
    if value is None:
        return [at_null] if upward else [at_null, expression.is_not(None)]
    bound = literal(value, expression.type)
    if upward:
        past = and_(expression >= bound, or_(expression > bound, tie))
        return [past, expression.is_(None)] if key.nullable else [past]
    return [and_(expression <= bound, or_(expression < bound, tie))]


def check_position(model, key, position: tuple) -> None:
    """A position must have the list's shape: a value of the sort key's type (or NULL where it can be
    missing), a datetime and an id. The cursor's signature vouches for it; this keeps a cursor signed with an
    empty SCIM_TOKEN_PEPPER from reaching the database with values it cannot compare."""
    shape = [] if key is None else [(_python_type(key.expression), key.nullable)]
    shape += [(datetime, False), (str, False)]
    if len(position) != len(shape) or not all(
            (value is None and nullable) or (kind is not None and isinstance(value, kind)
                                             and not (kind is not bool and isinstance(value, bool)))
            for value, (kind, nullable) in zip(position, shape, strict=True)):
        raise invalid_cursor("the cursor does not fit this list: start again with an empty cursor")


def _python_type(expression) -> type | None:
    try:
        return expression.type.python_type
    except NotImplementedError:
        return None
