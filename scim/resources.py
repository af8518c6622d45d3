"""Store records as SCIM resources for this request: what /Users, /Groups and /.search render alike."""

from sqlalchemy import null

from scim.requests import base_url, wants
from scim.serialize import group_to_scim, groups_value, members_value, user_to_scim
from scim.store import group_pairs, groups_column, members_of


def groups_if_wanted() -> tuple:
    """The extra page column with each user's groups, or nothing when the response leaves `groups` out."""
    return (groups_column(),) if wants("groups") else (null(),)


def render_users(rows: list[tuple], base: str | None = None) -> list[dict]:
    """Page rows (user, groups as JSON) as SCIM users, on this request's base URL unless given one."""
    base = base or base_url()
    return [user_to_scim(user, groups_value(group_pairs(groups), base), base) for user, groups in rows]


def render_user(user, groups: list[tuple[str, str]], base: str | None = None) -> dict:
    base = base or base_url()
    return user_to_scim(user, groups_value(groups, base), base)


def render_groups(rows: list[tuple]) -> list[dict]:
    """Page rows (group,) as SCIM groups, with the members of all of them read in one statement."""
    base = base_url()
    groups = [row[0] for row in rows]
    members = members_of([g.id for g in groups]) if wants("members") else {}
    return [group_to_scim(g, members_value(members[g.id], base) if members.get(g.id) else None, base)
            for g in groups]
