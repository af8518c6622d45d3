"""/Groups views. Membership lives in the link table and changes through set-based statements."""

import copy

from models import Group, db
from scim import bp, events
from scim.audit import commit
from scim.auth import tenant
from scim.filters import GROUP_MAP
from scim.listing import list_resources
from scim.members import MembershipPatch
from scim.patch import apply_patch, operations
from scim.requests import (
    base_url,
    if_match,
    member_ids,
    patch_limits,
    read_json,
    selects_attributes,
    use_search_body,
)
from scim.resources import render_groups
from scim.responses import no_content, resource_response
from scim.schema import GROUP, normalize_resource
from scim.serialize import etag, group_to_scim
from scim.store import add_members, get_for_write, get_or_404, remove_members, write_group


def group_response(group: Group, status: int = 200):
    return resource_response(render_groups([(group,)])[0], status)


def without_members(group: Group) -> dict:
    """The group as its events carry it: membership changes are events of their own."""
    return group_to_scim(group, None, base_url())


def add(group: Group, members: dict) -> None:
    events.members_changed(group.id, added=add_members(tenant(), group.id, members))


@bp.get("/Groups")
def list_groups():
    return list_resources(Group, GROUP_MAP, render_groups)


@bp.post("/Groups/.search")
def search_groups():
    use_search_body()
    return list_groups()


@bp.post("/Groups")
def create_group():
    body = read_json()
    group = write_group(Group(tenant_id=tenant()), normalize_resource(GROUP, body))
    add(group, member_ids(body.get("members")))
    events.group_written(None, group.data, without_members(group))
    return commit(group_response(group, 201))


@bp.get("/Groups/<group_id>")
def get_group(group_id):
    return group_response(get_or_404(tenant(), Group, group_id, "Group"))


@bp.put("/Groups/<group_id>")
def replace_group(group_id):
    # Okta's AIW apps push the full membership this way: the members sent are the members kept.
    group = get_for_write(tenant(), Group, group_id, "Group", if_match())
    before, body = copy.deepcopy(group.data), read_json()
    write_group(group, normalize_resource(GROUP, body))
    events.members_changed(group.id, removed=remove_members(group.id, None))
    add(group, member_ids(body.get("members")))
    events.group_written(before, group.data, without_members(group))
    return commit(group_response(group))


@bp.patch("/Groups/<group_id>")
def patch_group(group_id):
    limits = patch_limits()
    group = get_for_write(tenant(), Group, group_id, "Group", if_match())
    before = copy.deepcopy(group.data)
    ops = operations(read_json(), GROUP, limits)
    member_ops = [op for op in ops if op.attribute == "members"]
    other_ops = [op for op in ops if op.attribute != "members"]
    if other_ops:
        write_group(group, apply_patch(group.data, GROUP, other_ops, limits.values))
    MembershipPatch(tenant(), group.id).apply_all(member_ops)
    if member_ops and not other_ops:
        write_group(group, group.data)  # a membership change is a new version of the group
    events.group_written(before, group.data, without_members(group))
    if selects_attributes():
        return commit(group_response(group))
    # RFC 7644 §3.5.2: 204 is a complete answer to PATCH (Okta and Entra ID expect it for groups); the
    # whole group, members and all, comes back only when attributes/excludedAttributes ask for it.
    return commit(no_content(etag(group.version)))


@bp.delete("/Groups/<group_id>")
def delete_group(group_id):
    group = get_for_write(tenant(), Group, group_id, "Group", if_match())
    events.group_deleted(without_members(group))
    db.session.delete(group)
    return commit(no_content())
