"""The directory's pages: a tenant's users and groups, one user, one group with its members."""

import json

from flask import render_template, request

from console import Denied, console
from console.queries import (
    events_about,
    find_groups,
    find_users,
    group_of,
    groups_of,
    members_of,
    requests_about,
    user_of,
)
from console.scope import chosen_tenant, tenant_ids


@console.get("/users")
def users():
    tenant = chosen_tenant()
    if tenant is None:
        return render_template("console/users.html", tenant=None, found=[], text="", active="")
    text, active = request.args.get("q", "").strip()[:255], request.args.get("active", "")
    found = find_users(tenant.id, text, {"yes": True, "no": False}.get(active), request.args.get("after"))
    return render_template("console/users.html", tenant=tenant, found=found, text=text, active=active)


@console.get("/users/<user_id>")
def user(user_id):
    found = user_of(tenant_ids(), user_id)
    if found is None:
        raise Denied()
    return render_template("console/user.html", user=found, groups=groups_of(found),
                           attributes=json.dumps(found.data, indent=2, ensure_ascii=False),
                           requests=requests_about(found.tenant_id, found.id),
                           events=events_about(found.tenant_id, found.id))


@console.get("/groups")
def groups():
    tenant = chosen_tenant()
    text = request.args.get("q", "").strip()[:255]
    found = find_groups(tenant.id, text, request.args.get("after")) if tenant else []
    return render_template("console/groups.html", tenant=tenant, found=found, text=text)


@console.get("/groups/<group_id>")
def group(group_id):
    found = group_of(tenant_ids(), group_id)
    if found is None:
        raise Denied()
    total, members = members_of(found, request.args.get("after"))
    return render_template("console/group.html", group=found, total=total, members=members,
                           attributes=json.dumps(found.data, indent=2, ensure_ascii=False),
                           requests=requests_about(found.tenant_id, found.id),
                           events=events_about(found.tenant_id, found.id))
