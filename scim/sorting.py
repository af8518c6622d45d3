"""sortBy and sortOrder (RFC 7644 §3.4.2.3) -> the list's sort key, and the ORDER BY it gives.

A list's order is the sort key (when sortBy names one), then `created`, then `id`: the same for every page, so
that index paging (scim.store.page) and cursor paging (scim.keyset) see one stable order.
"""

from dataclasses import dataclass

from scim2_models import Path
from scim2_models.exceptions import SCIMException
from scim2_models.path import AttrPath
from sqlalchemy import ColumnElement, String, UnaryExpression, func

from scim.errors import invalid_value
from scim.filters import AttributeMap, scalar_for


@dataclass(frozen=True)
class SortKey:
    """The attribute a list is sorted by, as SQL: strings by their caseExact rule (lower() when not), the
    direction, and whether rows can lack a value. Rows without one come last ascending and first descending:
    NULL sorts above every value, in both directions."""

    expression: ColumnElement
    descending: bool = False
    nullable: bool = True

    def term(self, reverse: bool = False) -> UnaryExpression:
        """The ORDER BY term; `reverse` reads the list from its end (a cursor's previous page)."""
        if self.descending != reverse:
            return self.expression.desc().nulls_first()
        return self.expression.asc().nulls_last()


def is_descending(sort_order: str | None) -> bool:
    if sort_order and sort_order.lower() not in ("ascending", "descending"):
        raise invalid_value("sortOrder must be ascending or descending")
    return bool(sort_order) and sort_order.lower() == "descending"


def sort_key(sort_by: str | None, sort_order: str | None, attributes: AttributeMap) -> SortKey | None:
    """The sort key sortBy and sortOrder name, None without sortBy; an attribute that cannot be sorted on
    (unknown, multi-valued, complex) is 400 invalidValue."""
    descending = is_descending(sort_order)
    if not sort_by:
        return None
    try:
        path = Path(sort_by).ast
    except (SCIMException, ValueError):
        raise invalid_value(f"sortBy {sort_by!r} is not an attribute") from None
    spec = scalar_for(path, attributes) if isinstance(path, AttrPath) else None
    if spec is None:
        raise invalid_value(f"sortBy {sort_by!r} is not a sortable attribute")
    column = spec.column
    if spec.type == "string" and not spec.case_exact:
        column = func.lower(column, type_=String())  # typed, so that a cursor's value binds as text
    # A table column says whether it can be NULL; a value inside the JSON document always can.
    nullable = getattr(getattr(spec.column, "expression", spec.column), "nullable", True)
    return SortKey(column, descending, nullable)


def sort_order(sort_by: str | None, sort_order: str | None, attributes: AttributeMap) -> list:
    """The ORDER BY terms for sortBy/sortOrder ahead of `created, id`: none without sortBy."""
    key = sort_key(sort_by, sort_order, attributes)
    return [] if key is None else [key.term()]
