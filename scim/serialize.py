"""Rows <-> SCIM JSON: meta, locations, versions, attribute selection, list responses and paging."""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Response, current_app, request

from scim.errors import SCIM_MEDIA_TYPE, ScimError, bad_request
from scim.patch import Limits
from scim.schema import ENTERPRISE_SCHEMA, GROUP, GROUP_SCHEMA, USER, USER_SCHEMA, Attr, extensions

LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ALWAYS_RETURNED = {"id", "schemas"}


def timestamp(value: datetime) -> str:
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were stored in UTC.
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def etag(version: int) -> str:
    return f'W/"{version}"'


def _etags(header: str) -> set[str]:
    """The entity tags of an If-Match/If-None-Match header, weak or strong alike (weak comparison)."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def check_if_match(version: int) -> None:
    """RFC 7644 §3.14: a write with If-Match naming another version is 412 and changes nothing."""
    header = request.headers.get("If-Match")
    if header is None:
        return
    tags = _etags(header)
    if "*" not in tags and f'"{version}"' not in tags:
        raise ScimError(412, f"If-Match {header} does not match the current version {etag(version)}")


def not_modified(current: str) -> bool:
    """RFC 7644 §3.14: GET with If-None-Match naming the current version (an ETag) is answered 304."""
    header = request.headers.get("If-None-Match")
    return header is not None and bool({"*", current.removeprefix("W/")} & _etags(header))


def location(endpoint: str, resource_id: str) -> str:
    # request.url_root follows X-Forwarded-Proto/-Host when TRUST_PROXY is on (ngrok, reverse proxies).
    return f"{request.url_root}scim/v2/{endpoint}/{resource_id}"


def meta(row, resource_type: str, endpoint: str) -> dict:
    return {
        "resourceType": resource_type,
        "created": timestamp(row.created),
        "lastModified": timestamp(row.last_modified),
        "location": location(endpoint, row.id),
        "version": etag(row.version),
    }


def schemas_of(resource: Attr, data: dict) -> list[str]:
    return [resource.name] + [ext.name for ext in extensions(resource) if ext.name in data]


def user_to_scim(user, groups: list[dict]) -> dict:
    body = {"schemas": schemas_of(USER, user.data), "id": user.id, **user.data}
    manager = user.data.get(ENTERPRISE_SCHEMA, {}).get("manager")
    if manager and manager.get("value"):
        body[ENTERPRISE_SCHEMA] = {**body[ENTERPRISE_SCHEMA],
                                   "manager": {**manager, "$ref": location("Users", manager["value"])}}
    body["active"] = user.active
    if groups:
        body["groups"] = groups
    body["meta"] = meta(user, "User", "Users")
    return body


def group_to_scim(group, members: list[dict] | None) -> dict:
    body = {"schemas": schemas_of(GROUP, group.data), "id": group.id, **group.data}
    if members is not None:
        body["members"] = members
    body["meta"] = meta(group, "Group", "Groups")
    return body


def scim_response(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype=SCIM_MEDIA_TYPE)
    response.headers.update(headers or {})
    return response


def no_content(version: str | None = None) -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body, so no media type
    if version:
        response.headers["ETag"] = version
    return response


def selects_attributes() -> bool:
    return bool(param("attributes") or param("excludedAttributes"))


def resource_response(body: dict, status: int = 200) -> Response:
    """A single resource with its ETag (RFC 7644 §3.14); 201 answers also carry Location (§3.3)."""
    headers = {"ETag": body["meta"]["version"]}
    if request.method == "GET" and not_modified(body["meta"]["version"]):
        return Response(status=304, headers=headers)
    if status == 201:
        headers["Location"] = body["meta"]["location"]
    return scim_response(select_attributes(body), status, headers)


def patch_limits():
    """The caps on one PATCH request, from the settings."""
    config = current_app.config
    return Limits(config["SCIM_MAX_PATCH_OPERATIONS"], config["SCIM_MAX_FILTER_LENGTH"], config["SCIM_MAX_VALUES"])


def check_filter_length(name: str, text: str | None) -> str | None:
    """A filter (or sortBy) longer than SCIM_MAX_FILTER_LENGTH is refused before it is parsed."""
    limit = current_app.config["SCIM_MAX_FILTER_LENGTH"]
    if text is not None and len(text) > limit:
        raise ScimError(400, f"{name} is longer than {limit} characters",
                        "invalidFilter" if name == "filter" else "invalidValue")
    return text


SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
SEARCH_PARAMETERS = {"attributes", "excludedattributes", "filter", "sortby", "sortorder", "startindex", "count"}


def use_search_body() -> None:
    """POST .../.search (RFC 7644 §3.4.3): the query parameters come from a SearchRequest body instead."""
    body = read_json()
    schemas = body.get("schemas")
    if schemas is not None and SEARCH_SCHEMA not in (schemas if isinstance(schemas, list) else [schemas]):
        raise bad_request(f"schemas must contain {SEARCH_SCHEMA}", "invalidSyntax")
    params = {}
    for key, value in body.items():
        if key.lower() not in SEARCH_PARAMETERS or value is None:
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        elif isinstance(value, bool) or not isinstance(value, (str, int)):
            raise bad_request(f"{key} has the wrong type")
        params[key.lower()] = str(value)
    request.environ["scim.search_params"] = params


def param(name: str) -> str | None:
    """A query parameter, from the URL or from the SearchRequest body of a POST .search."""
    search = request.environ.get("scim.search_params")
    if search is not None:
        return search.get(name.lower())
    return request.args.get(name)


def _int_arg(name: str, default: int) -> int:
    raw = param(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {raw!r}") from None


# Past any table, and within the 64-bit integer an OFFSET takes (SQLite cannot bind a larger one at all).
MAX_START_INDEX = 2**62


def page_args() -> tuple[int, int]:
    """RFC 7644 §3.4.2.4: startIndex is 1-based (below 1 means 1); count below 0 means 0, and is capped."""
    start = min(max(_int_arg("startIndex", 1), 1), MAX_START_INDEX)
    count = _int_arg("count", current_app.config["SCIM_DEFAULT_PAGE_SIZE"])
    count = min(max(count, 0), current_app.config["SCIM_MAX_PAGE_SIZE"])
    return start, count


def list_response(resources: list[dict], total: int, start: int) -> Response:
    body = {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": [select_attributes(r) for r in resources],
    }
    return scim_response(body)


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


def _names(name: str) -> Selection:
    """`attributes`/`excludedAttributes` as a Selection: "name.givenName" -> subs["name"] = {"givenname"}.
    Read once per request (a page of 100 resources asks 100 times)."""
    cache = request.environ.setdefault("scim.selected_names", {})
    if name not in cache:
        cache[name] = _parse_names(name, param(name) or "")
    return cache[name]


def _parse_names(name: str, raw: str) -> Selection:
    items = [part.strip() for part in raw.split(",") if part.strip()]
    limit = current_app.config["SCIM_MAX_ATTRIBUTE_NAMES"]
    if len(items) > limit:
        raise bad_request(f"{name} names more than {limit} attributes")
    urns = extension_urns()
    selection = Selection()
    for item in items:
        lowered = item.lower()
        for urn in (USER_SCHEMA, GROUP_SCHEMA):
            if lowered.startswith(urn.lower() + ":"):
                lowered = lowered[len(urn) + 1:]
        urn = next((u for u in urns if lowered.startswith(u + ":")), None)
        if lowered in urns:  # a whole extension
            path = (lowered,)
        elif urn:  # an extension attribute: "urn:...:User:employeeNumber"
            path = (urn, lowered[len(urn) + 1:])
        else:
            path = tuple(lowered.split(".", 1))
        if len(path) == 1:
            selection.whole.add(path[0])
        else:
            selection.subs.setdefault(path[0], set()).add(path[1])
    return selection


def extension_urns() -> list[str]:
    return [ext.name.lower() for resource in (USER, GROUP) for ext in extensions(resource)]


def wants(attribute: str) -> bool:
    """Whether the response will carry `attribute`, so views can skip loading what is not returned."""
    attribute = attribute.lower()
    included, excluded = _names("attributes"), _names("excludedAttributes")
    if included:
        return included.names(attribute)
    return attribute not in excluded.whole


def select_attributes(body: dict) -> dict:
    """RFC 7644 §3.4.2.5: `attributes` keeps only the named ones, `excludedAttributes` drops them; id and
    schemas always come back."""
    included, excluded = _names("attributes"), _names("excludedAttributes")
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


class NotJsonConstant(ValueError):
    pass


def _refuse_constant(name: str):
    raise NotJsonConstant(f"{name} is not a JSON value; send null or a number")


def parse_json(raw: bytes | str):
    """Strict JSON (RFC 8259): NaN, Infinity and -Infinity, which Python's parser takes, are refused, since a
    document holding them is not JSON to any other reader. Raises ValueError (with line and column)."""
    return json.loads(raw, parse_constant=_refuse_constant)


def read_json() -> dict:
    """The request body as a JSON object; anything else is 400 invalidSyntax (RFC 7644 §3.12)."""
    if request.content_encoding and request.content_encoding.lower() != "identity":
        # RFC 9110 §8.4.1: a content coding the server does not apply is 415.
        raise ScimError(415, f"unsupported Content-Encoding {request.content_encoding!r}; send plain JSON")
    raw = request.get_data(cache=True)  # cached: the audit trail stores it (redacted) afterwards
    try:
        body = parse_json(raw)
    except json.JSONDecodeError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column "
                          f"{exc.colno}", "invalidSyntax") from None
    except NotJsonConstant as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}", "invalidSyntax") from None
    except (ValueError, RecursionError):
        raise bad_request("the request body is not valid JSON", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object", "invalidSyntax")
    check_structure(body, current_app.config["SCIM_MAX_JSON_DEPTH"])
    return body


def check_structure(value, max_depth: int) -> None:
    """Walk the document once, without recursion: nesting depth, and strings a database cannot store
    (NUL characters, lone surrogates from escapes like "\\ud800")."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or not item.isascii() and not _utf8(item):
                raise bad_request("strings must be valid Unicode without NUL characters", "invalidValue")
        elif isinstance(item, (dict, list)):
            if level > max_depth:
                raise bad_request("the request body is nested too deeply", "invalidSyntax")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
