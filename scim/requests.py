"""Reading a request: body, parameters, paging, attribute selection and preconditions, as plain values.

Views call these, then hand plain values to the data layer (scim.store) and records to scim.serialize.
"""

import json
import time
from dataclasses import dataclass

from flask import current_app, request

from scim.cursors import Cursor, decode, signing_key
from scim.errors import (
    expired_cursor,
    invalid_count,
    invalid_cursor,
    invalid_filter,
    invalid_syntax,
    invalid_value,
    unsupported_media_type,
)
from scim.patch import Limits
from scim.schema import GROUP, GROUP_SCHEMA, USER, USER_SCHEMA, extensions
from scim.serialize import Selection

# What a request's url_root is made of (ProxyFix has already put X-Forwarded-* there when TRUST_PROXY is on).
ROOT_KEYS = ("wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME")


_BASE_URLS: dict[tuple, str] = {}  # a few hosts at most; cleared when clients send many


def base_url(of=None) -> str:
    """The SCIM base URL of this request (or of the werkzeug request `of`): url_root follows
    X-Forwarded-Proto/-Host when TRUST_PROXY is on (ngrok, reverse proxies)."""
    req = of or request
    key = tuple(req.environ.get(name) for name in ROOT_KEYS)
    found = _BASE_URLS.get(key)
    if found is None:
        if len(_BASE_URLS) >= 256:
            _BASE_URLS.clear()
        found = _BASE_URLS[key] = f"{req.url_root}scim/v2/"
    return found


def _etags(header: str) -> set[str]:
    """The entity tags of an If-Match/If-None-Match header, weak or strong alike (weak comparison)."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def if_match() -> set[str] | None:
    """RFC 7644 §3.14: the entity tags If-Match names (the data layer compares them with the locked row), or
    None without the header."""
    header = request.headers.get("If-Match")
    return None if header is None else _etags(header)


def not_modified(current: str) -> bool:
    """RFC 7644 §3.14: GET with If-None-Match naming the current version (an ETag) is answered 304."""
    header = request.headers.get("If-None-Match")
    return header is not None and bool({"*", current.removeprefix("W/")} & _etags(header))


def patch_limits():
    """The caps on one PATCH request, from the settings."""
    config = current_app.config
    return Limits(config["SCIM_MAX_PATCH_OPERATIONS"], config["SCIM_MAX_FILTER_LENGTH"], config["SCIM_MAX_VALUES"])


def check_filter_length(name: str, text: str | None) -> str | None:
    """A filter (or sortBy) longer than SCIM_MAX_FILTER_LENGTH is refused before it is parsed."""
    limit = current_app.config["SCIM_MAX_FILTER_LENGTH"]
    if text is not None and len(text) > limit:
        too_long = invalid_filter if name == "filter" else invalid_value
        raise too_long(f"{name} is longer than {limit} characters")
    return text


SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
SEARCH_PARAMETERS = {"attributes", "excludedattributes", "filter", "sortby", "sortorder", "startindex", "count",
                     "cursor"}


def use_search_body() -> None:
    """POST .../.search (RFC 7644 §3.4.3): the query parameters come from a SearchRequest body instead."""
    body = read_json()
    schemas = body.get("schemas")
    if schemas is not None and SEARCH_SCHEMA not in (schemas if isinstance(schemas, list) else [schemas]):
        raise invalid_syntax(f"schemas must contain {SEARCH_SCHEMA}")
    params = {}
    for key, value in body.items():
        if key.lower() not in SEARCH_PARAMETERS or value is None:
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        elif isinstance(value, bool) or not isinstance(value, (str, int)):
            raise invalid_value(f"{key} has the wrong type")
        params[key.lower()] = str(value)
    request.environ["scim.search_params"] = params


def param(name: str) -> str | None:
    """A query parameter, from the URL or from the SearchRequest body of a POST .search."""
    search = request.environ.get("scim.search_params")
    if search is not None:
        return search.get(name.lower())
    return request.args.get(name)


def int_value(name: str, raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid_value(f"{name} must be an integer, got {raw!r}") from None


# Past any table, and within the 64-bit integer an OFFSET takes (SQLite cannot bind a larger one at all).
MAX_START_INDEX = 2**62


def page_bounds(start: str | None, count: str | None, config) -> tuple[int, int]:
    """RFC 7644 §3.4.2.4: startIndex is 1-based (below 1 means 1); count below 0 means 0, and is capped."""
    first = min(max(int_value("startIndex", start, 1), 1), MAX_START_INDEX)
    size = int_value("count", count, config["SCIM_DEFAULT_PAGE_SIZE"])
    return first, min(max(size, 0), config["SCIM_MAX_PAGE_SIZE"])


def page_args() -> tuple[int, int]:
    return page_bounds(param("startIndex"), param("count"), current_app.config)


@dataclass(frozen=True)
class CursorPaging:
    """RFC 9865 paging, asked for with the `cursor` parameter: the cursor to continue from (None: the first
    page) and the page size."""

    cursor: Cursor | None
    count: int


def cursor_paging(query: str) -> CursorPaging | None:
    """RFC 9865 §2: a `cursor` parameter asks for cursor paging, empty for the first page; without one the
    list is paged by index (the default, RFC 9865 §2.4)."""
    return cursor_paging_of(param("cursor"), param("startIndex"), param("count"), query, current_app.config)


def cursor_paging_of(text: str | None, start: str | None, count: str | None, query: str,
                     config) -> CursorPaging | None:
    """cursor_paging from the parameters' values (the hot path has no Flask request). A cursor must be one
    this service issued, for the same list (`query`: scim.cursors.query_digest) and count, within
    SCIM_CURSOR_TIMEOUT seconds."""
    if text is None:
        return None
    if start is not None:
        raise invalid_value("startIndex and cursor ask for different paging methods: send one of them")
    size = cursor_count(count, config)
    if text == "":
        return CursorPaging(None, size)
    cursor = decode(text, signing_key(config["SCIM_TOKEN_PEPPER"]))
    timeout = config["SCIM_CURSOR_TIMEOUT"]
    if timeout and time.time() - cursor.issued > timeout:
        raise expired_cursor(f"the cursor is more than {timeout} seconds old (cursorTimeout): start again with "
                             "an empty cursor")
    if cursor.query != query:
        raise invalid_cursor("the cursor belongs to another list: the filter, sortBy and sortOrder must stay "
                             "those of the request that returned it")
    if cursor.count != size:
        raise invalid_count(f"count must stay {cursor.count}, the count of the request that returned the cursor")
    return CursorPaging(cursor, size)


def cursor_count(raw: str | None, config) -> int:
    """RFC 9865 §2 and §2.1: count below 0 means 0; more than maxPageSize (SCIM_MAX_PAGE_SIZE), or not an
    integer, is 400 invalidCount. Without count, SCIM_DEFAULT_PAGE_SIZE."""
    limit = config["SCIM_MAX_PAGE_SIZE"]
    if raw is None or raw == "":
        return min(config["SCIM_DEFAULT_PAGE_SIZE"], limit)
    try:
        count = int(raw)
    except ValueError:
        raise invalid_count(f"count must be an integer, got {raw!r}") from None
    if count > limit:
        raise invalid_count(f"count must be at most {limit} (maxPageSize), got {count}")
    return max(count, 0)


def cursor_key() -> bytes:
    return signing_key(current_app.config["SCIM_TOKEN_PEPPER"])


def selection(name: str) -> Selection:
    """`attributes`/`excludedAttributes` as a Selection: "name.givenName" -> subs["name"] = {"givenname"}.
    Read once per request (a page of 100 resources asks 100 times)."""
    cache = request.environ.setdefault("scim.selected_names", {})
    if name not in cache:
        cache[name] = _parse_names(name, param(name) or "")
    return cache[name]


def _parse_names(name: str, raw: str) -> Selection:
    if not raw:
        return Selection()  # most requests: every attribute
    items = [part.strip() for part in raw.split(",") if part.strip()]
    limit = current_app.config["SCIM_MAX_ATTRIBUTE_NAMES"]
    if len(items) > limit:
        raise invalid_value(f"{name} names more than {limit} attributes")
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
    included, excluded = selection("attributes"), selection("excludedAttributes")
    if included:
        return included.names(attribute)
    return attribute not in excluded.whole


def selects_attributes() -> bool:
    return bool(param("attributes") or param("excludedAttributes"))


def member_ids(members) -> dict[str, str | None]:
    """The members of a `members` value, a list of {"value": id, "display": ...} (Okta sends no `type`), as
    user id -> the display the client sent (None when it sent none), in the order given."""
    if members is None:
        return {}
    if isinstance(members, dict):
        members = [members]
    if not isinstance(members, list):
        raise invalid_value("members must be an array of {\"value\": \"<user id>\"}")
    ids: dict[str, str | None] = {}
    for member in members:
        if not isinstance(member, dict) or not isinstance(member.get("value"), str):
            raise invalid_value("each member must be an object with a string value (the user id)")
        if str(member.get("type", "User")).lower() not in ("user", ""):
            raise invalid_value("only users can be members of a group")
        display = member.get("display")
        if display is not None and not isinstance(display, str):
            raise invalid_value("a member's display must be a string")
        if member["value"] not in ids or display is not None:
            ids[member["value"]] = display
    return ids


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
        raise unsupported_media_type(f"unsupported Content-Encoding {request.content_encoding!r}; send plain JSON")
    raw = request.get_data(cache=True)  # cached: the audit trail stores it (redacted) afterwards
    try:
        body = parse_json(raw)
    except json.JSONDecodeError as exc:
        raise invalid_syntax(f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column "
                          f"{exc.colno}") from None
    except NotJsonConstant as exc:
        raise invalid_syntax(f"the request body is not valid JSON: {exc}") from None
    except (ValueError, RecursionError):
        raise invalid_syntax("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid_syntax("the request body must be a JSON object")
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
                raise invalid_value("strings must be valid Unicode without NUL characters")
        elif isinstance(item, (dict, list)):
            if level > max_depth:
                raise invalid_syntax("the request body is nested too deeply")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
