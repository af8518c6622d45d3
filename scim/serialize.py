"""Records -> SCIM JSON: meta, locations, versions, groups and members, attribute selection, list bodies.

Pure functions of their arguments: `base` is the SCIM base URL the locations are built on (scim.requests.
base_url() for a request), and nothing here reads a request, a header or the database.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from scim.schema import ENTERPRISE_SCHEMA, GROUP, USER, Attr, extensions

LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ALWAYS_RETURNED = {"id", "schemas"}


def timestamp(value: datetime) -> str:
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were stored in UTC.
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def etag(version: int) -> str:
    return f'W/"{version}"'


def location(base: str, endpoint: str, resource_id: str) -> str:
    return f"{base}{endpoint}/{resource_id}"


def meta(row, resource_type: str, endpoint: str, base: str) -> dict:
    return {
        "resourceType": resource_type,
        "created": timestamp(row.created),
        "lastModified": timestamp(row.last_modified),
        "location": location(base, endpoint, row.id),
        "version": etag(row.version),
    }


def schemas_of(resource: Attr, data: dict) -> list[str]:
    return [resource.name] + [ext.name for ext in extensions(resource) if ext.name in data]


def groups_value(pairs: list[tuple[str, str]], base: str) -> list[dict]:
    """A user's `groups` from (group id, displayName) pairs, by name."""
    return [{"value": gid, "$ref": location(base, "Groups", gid), "display": display, "type": "direct"}
            for gid, display in pairs]


def members_value(pairs: list[tuple[str, str]], base: str) -> list[dict]:
    """A group's `members` from (user id, display) pairs."""
    return [{"value": uid, "$ref": location(base, "Users", uid), "display": display, "type": "User"}
            for uid, display in pairs]


def user_to_scim(user, groups: list[dict], base: str) -> dict:
    body = {"schemas": schemas_of(USER, user.data), "id": user.id, **user.data}
    manager = user.data.get(ENTERPRISE_SCHEMA, {}).get("manager")
    if manager and manager.get("value"):
        body[ENTERPRISE_SCHEMA] = {**body[ENTERPRISE_SCHEMA],
                                   "manager": {**manager, "$ref": location(base, "Users", manager["value"])}}
    body["active"] = user.active
    if groups:
        body["groups"] = groups
    body["meta"] = meta(user, "User", "Users", base)
    return body


def group_to_scim(group, members: list[dict] | None, base: str) -> dict:
    body = {"schemas": schemas_of(GROUP, group.data), "id": group.id, **group.data}
    if members is not None:
        body["members"] = members
    body["meta"] = meta(group, "Group", "Groups", base)
    return body


def list_body(resources: list[dict], total: int, start: int | None = None, next_cursor: str | None = None,
              previous_cursor: str | None = None) -> dict:
    """A ListResponse (RFC 7644 §3.4.2). Paged by index it says its startIndex; paged by cursor (RFC 9865 §2)
    it has no startIndex, and nextCursor on every page but the last, previousCursor where there is one."""
    body = {"schemas": [LIST_SCHEMA], "totalResults": total}
    if start is not None:
        body["startIndex"] = start
    body["itemsPerPage"] = len(resources)
    for name, cursor in (("previousCursor", previous_cursor), ("nextCursor", next_cursor)):
        if cursor is not None:
            body[name] = cursor
    body["Resources"] = resources
    return body


@dataclass
class Selection:
    """`attributes` or `excludedAttributes`, lower-cased, by top-level name: whether the whole attribute is
    named, and which of its sub-attributes. Looked up per key, so selecting costs the same for any count."""

    whole: set = field(default_factory=set)
    subs: dict = field(default_factory=dict)  # top-level name -> set of sub-attribute names

    def __bool__(self) -> bool:
        return bool(self.whole or self.subs)

    def names(self, top: str) -> bool:
        return top in self.whole or top in self.subs


def select_attributes(body: dict, included: Selection, excluded: Selection) -> dict:
    """RFC 7644 §3.4.2.5: `attributes` keeps only the named ones, `excludedAttributes` drops them; id and
    schemas always come back."""
    if not included and not excluded:
        return body
    result = {}
    for key, value in body.items():
        lowered = key.lower()
        if lowered in ALWAYS_RETURNED:
            result[key] = value
            continue
        if included and not included.names(lowered) or lowered in excluded.whole:
            continue
        subs_in, subs_out = included.subs.get(lowered, set()), excluded.subs.get(lowered, set())
        result[key] = _select_sub(value, subs_in, subs_out) if subs_in or subs_out else value
    return result


def _select_sub(value, keep: set, drop: set):
    if isinstance(value, list):
        return [_select_sub(item, keep, drop) for item in value]
    if not isinstance(value, dict):
        return value
    return {k: v for k, v in value.items()
            if (not keep or k.lower() in keep) and k.lower() not in drop}


