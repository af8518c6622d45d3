"""The list endpoints' shared path: filter -> WHERE, paging, one page of rows, a ListResponse."""

from collections.abc import Callable

from flask import request

from scim.filters import AttributeMap, filter_to_where
from scim.serialize import list_response, page_args
from scim.store import page


def list_resources(model, attributes: AttributeMap, render: Callable[[list], list[dict]]):
    where = filter_to_where(request.args.get("filter"), attributes)
    start, count = page_args()
    rows, total = page(model, where, start, count)
    return list_response(render(rows), total, start)
