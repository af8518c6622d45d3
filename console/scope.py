"""The tenants the logged-in admin may see, for the pages of this request."""

from flask import g, request

from console import Denied
from console.accounts import visible_tenants


def tenants():
    """The tenants this admin may see, read once per request."""
    if "tenants" not in g:
        g.tenants = visible_tenants(g.admin)
    return g.tenants


def tenant_ids() -> list[int]:
    return [tenant.id for tenant in tenants()]


def chosen_tenant():
    """The tenant the page's `tenant` parameter names (its id; one this admin may not see is not found), else the
    admin's first, or None when it sees none."""
    wanted = request.values.get("tenant", type=int)
    if wanted is None:
        return tenants()[0] if tenants() else None
    for tenant in tenants():
        if tenant.id == wanted:
            return tenant
    raise Denied()
