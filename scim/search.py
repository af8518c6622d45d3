"""POST /.search at the root (RFC 7644 §3.4.3): one query over Users and Groups, Users first."""

from models import Group, User
from scim import bp
from scim.errors import ScimError
from scim.filters import GROUP_MAP, USER_MAP, filter_to_where, sort_order
from scim.groups import render_groups
from scim.serialize import list_response, page_args, param, use_search_body
from scim.store import page
from scim.users import render_users

RESOURCE_TYPES = ((User, USER_MAP, render_users), (Group, GROUP_MAP, render_groups))


def _queries():
    """(model, where, order, render) for each type the filter applies to; an attribute one type lacks
    means no resource of that type matches. A filter neither type understands is a 400."""
    queries, errors = [], []
    for model, attributes, render in RESOURCE_TYPES:
        try:
            where = filter_to_where(param("filter"), attributes)
            order = sort_order(param("sortBy"), param("sortOrder"), attributes)
        except ScimError as error:
            errors.append(error)
            continue
        queries.append((model, where, order, render))
    if not queries:
        raise errors[0]
    return queries


@bp.post("/.search")
def search_everything():
    use_search_body()
    start, count = page_args()
    skip, resources, total = start - 1, [], 0
    for model, where, order, render in _queries():
        rows, matched = page(model, where, order, max(skip, 0) + 1, max(count - len(resources), 0))
        skip -= matched
        total += matched
        resources += render(rows)
    return list_response(resources, total, start)
