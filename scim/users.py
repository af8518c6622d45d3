"""/Users views."""

from sqlalchemy import null

from models import User, db
from scim import bp
from scim.audit import note_secret
from scim.filters import USER_MAP
from scim.listing import list_resources
from scim.patch import apply_patch, check_resource_values, operations
from scim.schema import USER, normalize_resource
from scim.serialize import no_content, patch_limits, read_json, resource_response, use_search_body, user_to_scim, wants
from scim.store import commit, get_for_write, groups_column, groups_for, groups_value, user_with_groups, write_user


def render_users(rows: list[tuple]) -> list[dict]:
    """Page rows (user, groups as JSON) as SCIM users."""
    return [user_to_scim(user, groups_value(groups)) for user, groups in rows]


def user_response(user: User, groups: list[dict], status: int = 200):
    return resource_response(user_to_scim(user, groups), status)


def current_resource(user: User) -> dict:
    return {**user.data, "active": user.active}


def groups_if_wanted() -> tuple:
    return (groups_column(),) if wants("groups") else (null(),)


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
    user = write_user(User(), user_resource(read_json()))
    return commit(user_response(user, [], 201))  # a new user belongs to no group yet


@bp.get("/Users/<user_id>")
def get_user(user_id):
    return user_response(*user_with_groups(user_id))


@bp.put("/Users/<user_id>")
def replace_user(user_id):
    # RFC 7644 §3.5.1: a full replace; id, meta and groups in the body are read-only and ignored.
    user = get_for_write(User, user_id, "User")
    write_user(user, user_resource(read_json()))
    return commit(user_response(user, groups_for(user.id)))


@bp.patch("/Users/<user_id>")
def patch_user(user_id):
    limits = patch_limits()
    user = get_for_write(User, user_id, "User")
    patched = apply_patch(current_resource(user), USER, operations(read_json(), USER, limits), limits.values)
    # RFC 7644 §3.5.2.2: a removed attribute is unassigned; an account with no active state is not active.
    patched.setdefault("active", False)
    note_secret(patched.get("password"))
    write_user(user, patched)
    return commit(user_response(user, groups_for(user.id)))


@bp.delete("/Users/<user_id>")
def delete_user(user_id):
    db.session.delete(get_for_write(User, user_id, "User"))
    return commit(no_content())
