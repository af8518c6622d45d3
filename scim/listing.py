"""The list endpoints' shared path: filter -> WHERE, sort -> ORDER BY, paging, one page, a ListResponse."""

from collections.abc import Callable

from models import User
from scim.filters import AttributeMap, filter_to_where, lookup_filter, sort_order
from scim.reads import LOOKUP_ATTRIBUTES, lookup
from scim.requests import check_filter_length, page_args, param, wants
from scim.responses import list_response
from scim.store import page


def list_resources(model, attributes: AttributeMap, render: Callable[[list], list[dict]], extra: tuple = ()):
    """`render` turns page rows, tuples of (model, *extra), into SCIM resources."""
    text = check_filter_length("filter", param("filter"))
    sort_by = check_filter_length("sortBy", param("sortBy"))
    order = sort_order(sort_by, param("sortOrder"), attributes)
    start, count = page_args()
    found = lookup_filter(text, attributes, LOOKUP_ATTRIBUTES) if model is User and not order else None
    if found:  # Okta's and Entra's lookup, with a statement built once
        rows, total = lookup(*found, start, count, wants("groups"))
    else:
        rows, total = page(model, filter_to_where(text, attributes), order, start, count, extra)
    return list_response(render(rows), total, start)
