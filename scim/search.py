"""POST /.search at the root (RFC 7644 §3.4.3): one query over Users and Groups, Users first."""

from models import Group, User
from scim import bp
from scim.auth import tenant
from scim.errors import ScimError, invalid_filter, invalid_value
from scim.filters import GROUP_MAP, USER_MAP, filter_to_where
from scim.requests import check_filter_length, page_args, param, use_search_body
from scim.resources import groups_if_wanted, render_groups, render_users
from scim.responses import list_response
from scim.sorting import sort_order
from scim.store import page

RESOURCE_TYPES = ((User, USER_MAP, render_users, groups_if_wanted), (Group, GROUP_MAP, render_groups, tuple))


def _queries():
    """(model, where, order, render, extra columns) for each resource type. An attribute one type lacks
    matches nothing of that type (`displayName sw "x" or userName sw "x"` finds groups and users); an
    attribute no type has is a 400."""
    queries, missing_everywhere = [], None
    check_filter_length("filter", param("filter"))
    check_filter_length("sortBy", param("sortBy"))
    for model, attributes, render, extra in RESOURCE_TYPES:
        missing: set = set()
        where = filter_to_where(param("filter"), attributes, missing)
        order = sort_order_or_none(attributes)
        names = {name.lower(): name for name in missing}  # compared without case, reported as written
        missing_everywhere = names if missing_everywhere is None else {
            key: name for key, name in missing_everywhere.items() if key in names}
        if order is not None:
            queries.append((model, where, order, render, extra()))
    if missing_everywhere:
        raise invalid_filter(f"attribute {sorted(missing_everywhere.values())[0]} is not filterable")
    if not queries:
        raise invalid_value(f"sortBy {param('sortBy')!r} is not a sortable attribute")
    return queries


def sort_order_or_none(attributes):
    """The ORDER BY for this type, or None when sortBy names an attribute it lacks (then it is left out)."""
    try:
        return sort_order(param("sortBy"), param("sortOrder"), attributes)
    except ScimError as error:
        if param("sortOrder") and param("sortOrder").lower() not in ("ascending", "descending"):
            raise error
        return None


@bp.post("/.search")
def search_everything():
    use_search_body()
    if param("cursor") is not None:
        # Users then Groups, each in its own order: one position cannot span both lists.
        raise invalid_value("cursor paging is offered on /Users, /Groups and their /.search; page a search of "
                            "both with startIndex")
    start, count = page_args()
    skip, resources, total = start - 1, [], 0
    for model, where, order, render, extra in _queries():
        rows, matched = page(model, tenant(), where, order, max(skip, 0) + 1, max(count - len(resources), 0), extra)
        skip -= matched
        total += matched
        resources += render(rows)
    return list_response(resources, total, start)
