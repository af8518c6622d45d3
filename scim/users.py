"""/Users views."""

from models import User, db
from scim import bp
from scim.filters import USER_MAP
from scim.listing import list_resources
from scim.patch import apply_patch, operations
from scim.schema import USER, normalize_resource
from scim.serialize import no_content, read_json, resource_response, use_search_body, user_to_scim, wants
from scim.store import commit, get_for_write, get_or_404, groups_of, write_user


def render_users(users: list[User]) -> list[dict]:
    groups = groups_of([u.id for u in users]) if wants("groups") else {}
    return [user_to_scim(u, groups.get(u.id, [])) for u in users]


def user_response(user: User, status: int = 200):
    return resource_response(render_users([user])[0], status)


def current_resource(user: User) -> dict:
    return {**user.data, "active": user.active}


@bp.get("/Users")
def list_users():
    return list_resources(User, USER_MAP, render_users)


@bp.post("/Users/.search")
def search_users():
    use_search_body()
    return list_users()


@bp.post("/Users")
def create_user():
    user = write_user(User(), normalize_resource(USER, read_json()))
    return commit(user_response(user, 201))


@bp.get("/Users/<user_id>")
def get_user(user_id):
    return user_response(get_or_404(User, user_id, "User"))


@bp.put("/Users/<user_id>")
def replace_user(user_id):
    # RFC 7644 §3.5.1: a full replace; id, meta and groups in the body are read-only and ignored.
    user = get_for_write(User, user_id, "User")
    write_user(user, normalize_resource(USER, read_json()))
    return commit(user_response(user))


@bp.patch("/Users/<user_id>")
def patch_user(user_id):
    user = get_for_write(User, user_id, "User")
    ops = operations(read_json(), USER)
    write_user(user, apply_patch(current_resource(user), USER, ops))
    return commit(user_response(user))


@bp.delete("/Users/<user_id>")
def delete_user(user_id):
    db.session.delete(get_for_write(User, user_id, "User"))
    return commit(no_content())
