"""The list endpoints' shared path: filter -> WHERE, sort -> ORDER BY, paging, one page, a ListResponse."""

from collections.abc import Callable

from scim.filters import AttributeMap, filter_to_where
from scim.requests import check_filter_length, page_args, param
from scim.responses import list_response
from scim.sorting import sort_order
from scim.store import page


def list_resources(model, attributes: AttributeMap, render: Callable[[list], list[dict]], extra: tuple = ()):
    """`render` turns page rows, tuples of (model, *extra), into SCIM resources."""
    where = filter_to_where(check_filter_length("filter", param("filter")), attributes)
    order = sort_order(check_filter_length("sortBy", param("sortBy")), param("sortOrder"), attributes)
    start, count = page_args()
    rows, total = page(model, where, order, start, count, extra)
    return list_response(render(rows), total, start)
