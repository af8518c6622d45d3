"""/Users views."""

from models import User, db
from scim import bp, events
from scim.audit import commit, note_secret
from scim.auth import tenant
from scim.errors import ScimError
from scim.filters import USER_MAP
from scim.listing import list_resources
from scim.patch import active_only, apply_patch, check_resource_values, operations
from scim.reads import user_with_groups
from scim.requests import if_match, patch_limits, read_json, use_search_body
from scim.resources import groups_if_wanted, render_user, render_users
from scim.responses import no_content, resource_response
from scim.schema import USER, normalize_resource
from scim.store import get_for_write
from scim.writes import insert_user, update_user, user_for_write, write_active, write_replacement


def user_response(user, groups: list[tuple[str, str]], status: int = 200):
    return resource_response(render_user(user, groups), status)


def written_response(user, groups: list[tuple[str, str]], password_sent: bool = False):
    """The answer to a write of an existing user (`user.before`: its attributes before), and its events."""
    resource = render_user(user, groups)
    events.user_written(user.before, current_resource(user), resource, password_sent)
    return resource_response(resource)


def current_resource(user) -> dict:
    return {**user.data, "active": user.active}


@bp.get("/Users")
def list_users():
    return list_resources(User, USER_MAP, render_users, groups_if_wanted())


@bp.post("/Users/.search")
def search_users():
    use_search_body()
    return list_users()


def user_resource(body: dict) -> dict:
    """A create or replace body as the clean resource to store, within the value caps."""
    resource = normalize_resource(USER, body)
    check_resource_values(USER, resource, patch_limits().values)
    note_secret(resource.get("password"))
    return resource


@bp.post("/Users")
def create_user():
    user = insert_user(tenant(), user_resource(read_json()))
    resource = render_user(user, [])  # a new user belongs to no group yet
    events.user_written(None, current_resource(user), resource)
    return commit(resource_response(resource, 201))


@bp.get("/Users/<user_id>")
def get_user(user_id):
    return user_response(*user_with_groups(tenant(), user_id))


def read_for(user_id: str, read):
    """read() (the request body, checked); when it refuses the body, a missing user or a stale If-Match is
    the answer instead, as when the user is read first (the writes below read it only when they must)."""
    try:
        return read()
    except ScimError:
        user_for_write(tenant(), user_id, if_match())
        raise


@bp.put("/Users/<user_id>")
def replace_user(user_id):
    # RFC 7644 §3.5.1: a full replace; id, meta and groups in the body are read-only and ignored.
    resource = read_for(user_id, lambda: user_resource(read_json()))
    written = write_replacement(tenant(), user_id, if_match(), resource)
    return commit(written_response(*written, password_sent="password" in resource))


@bp.patch("/Users/<user_id>")
def patch_user(user_id):
    limits = patch_limits()
    ops = read_for(user_id, lambda: operations(read_json(), USER, limits))
    active = read_for(user_id, lambda: active_only(ops, USER))
    written = write_active(tenant(), user_id, if_match(), active) if active is not None else None
    password_sent = False
    if written is None:  # more than a deactivation, or no row matched: the user read locked says why
        user, patched = patched_user(user_id, ops, limits)
        password_sent = patched.get("password") is not None
        written = update_user(user, patched)
    return commit(written_response(*written, password_sent=password_sent))


def patched_user(user_id: str, ops, limits) -> tuple:
    user = user_for_write(tenant(), user_id, if_match())
    patched = apply_patch(current_resource(user), USER, ops, limits.values)
    # RFC 7644 §3.5.2.2: a removed attribute is unassigned; an account with no active state is not active.
    patched.setdefault("active", False)
    note_secret(patched.get("password"))
    return user, patched


@bp.delete("/Users/<user_id>")
def delete_user(user_id):
    user = get_for_write(tenant(), User, user_id, "User", if_match())
    events.user_deleted(render_user(user, []))  # as it was; its memberships go with it
    db.session.delete(user)
    return commit(no_content())
