"""Cursor paging (RFC 9865) on /Users, /Groups and their /.search: walks that see every resource once, in
the list's order, forwards and back, while resources come and go; the errors RFC 9865 §2.1 names; the
advertisement in /ServiceProviderConfig. Index paging (startIndex) stays as it was: tests/test_listing.py."""

import itertools
import re
import time
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from sqlalchemy import event, func, select, update

from models import DEFAULT_TENANT_ID, AuditEntry, Group, User, db
from scim.cursors import Cursor, decode, encode, signing_key
from scim.filters import USER_MAP
from scim.keyset import keyset_page
from scim.sorting import sort_key
from tests.conftest import AUTH
from tests.test_errors import assert_scim_error

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def get_page(api, path: str) -> dict:
    response = api.get(path)
    assert response.status_code == 200, response.json
    assert "startIndex" not in response.json  # RFC 9865: a cursor page has no index
    return response.json


def walk(api, query: str = "", count: int = 2) -> list[dict]:
    """Every page of a cursor walk, from the empty cursor to the page without nextCursor."""
    pages = [get_page(api, f"/Users?cursor=&count={count}{query}")]
    while "nextCursor" in pages[-1]:
        pages.append(get_page(api, f"/Users?cursor={pages[-1]['nextCursor']}&count={count}{query}"))
    return pages


def names(pages: list[dict]) -> list[str]:
    return [resource["userName"] for body in pages for resource in body["Resources"]]


def index_order(api, query: str = "") -> list[str]:
    """The same list in one index page: the order cursor pages must follow."""
    response = api.get(f"/Users?startIndex=1&count=1000{query}")
    assert response.status_code == 200, response.json
    return [resource["userName"] for resource in response.json["Resources"]]


@pytest.fixture
def crowd(make_user):
    """Nine users: displayNames that repeat or are missing, titles (kept in the JSON document) on some,
    three deactivated, and four created at the very same instant, so that only the id tells them apart."""
    users = []
    for i in range(9):
        extra = {"displayName": None if i % 3 == 0 else f"Person {i % 4}", "active": i % 3 != 1}
        if i % 2:
            extra["title"] = f"Title {i % 3}"
        if i % 4 == 0:
            extra["externalId"] = f"ext-{9 - i}"
        users.append(make_user(f"user{i}@example.com", **extra))
    same_instant = datetime(2024, 1, 1, tzinfo=UTC)
    db.session.execute(update(User).where(User.id.in_([u["id"] for u in users[2:6]])).values(created=same_instant))
    db.session.commit()
    return users


# Walking a list

def test_a_walk_sees_every_user_once_in_the_index_order(api, crowd):
    pages = walk(api)
    assert names(pages) == index_order(api)
    assert sorted(names(pages)) == sorted(u["userName"] for u in crowd)
    assert [len(body["Resources"]) for body in pages] == [2, 2, 2, 2, 1]
    assert all(body["totalResults"] == 9 and body["itemsPerPage"] == len(body["Resources"]) for body in pages)


def test_the_order_is_the_one_in_the_database(api, crowd):
    stored = db.session.scalars(select(User.user_name).order_by(User.created, User.id)).all()
    assert names(walk(api, count=4)) == stored


@pytest.mark.parametrize("query", [
    "&sortBy=userName",
    "&sortBy=userName&sortOrder=descending",
    "&sortBy=displayName",                      # repeated values and missing ones (last ascending)
    "&sortBy=displayName&sortOrder=descending",  # missing ones first
    "&sortBy=externalId",                       # caseExact, mostly missing
    "&sortBy=externalId&sortOrder=descending",
    "&sortBy=title",                            # inside the JSON document
    "&sortBy=title&sortOrder=descending",
    "&sortBy=active&sortOrder=descending",
    "&sortBy=meta.created",
    "&sortBy=meta.lastModified&sortOrder=descending",
    "&filter=" + quote('userName sw "user" and not (displayName eq "person 1")'),
    "&filter=" + quote("active eq true") + "&sortBy=displayName&sortOrder=descending",
])
def test_a_walk_follows_filter_and_sort(api, crowd, query):
    pages = walk(api, query)
    expected = index_order(api, query)
    assert names(pages) == expected
    assert all(body["totalResults"] == len(expected) for body in pages)


def test_missing_values_come_last_ascending_and_first_descending(api, crowd):
    missing = {u["userName"] for u in crowd if "displayName" not in u}
    ascending = names(walk(api, "&sortBy=displayName"))
    descending = names(walk(api, "&sortBy=displayName&sortOrder=descending"))
    assert set(ascending[-3:]) == missing and set(descending[:3]) == missing


def test_users_there_for_the_whole_walk_are_seen_once_while_others_come_and_go(api, make_user, crowd):
    seen, added, deleted, deleted_unseen = [], [], [], []
    body = get_page(api, "/Users?cursor=&count=3")
    for step in itertools.count():
        seen += names([body])
        added.append(make_user(f"late{step}@example.com")["userName"])
        ahead = [u for u in crowd if u["userName"] not in seen + deleted]
        behind = [u for u in crowd if u["userName"] in seen and u["userName"] not in deleted]
        gone = (ahead if step % 2 == 0 else behind) or behind
        if gone:
            assert api.delete(f"/Users/{gone[0]['id']}").status_code == 204
            deleted.append(gone[0]["userName"])
            if gone is ahead:
                deleted_unseen.append(gone[0]["userName"])
        if "nextCursor" not in body:
            break
        body = get_page(api, f"/Users?cursor={body['nextCursor']}&count=3")
    assert len(seen) == len(set(seen))  # none twice
    throughout = {u["userName"] for u in crowd} - set(deleted)
    assert throughout <= set(seen) and not set(deleted_unseen) & set(seen)
    assert set(added[:-1]) <= set(seen)  # created after each cursor, so after it in the order: they come too
    assert set(db.session.scalars(select(User.user_name))) == throughout | set(added)


@pytest.mark.parametrize("query", [
    "", "&sortBy=displayName", "&sortBy=displayName&sortOrder=descending", "&sortBy=title&sortOrder=descending",
])
def test_previous_cursor_walks_back_over_the_same_pages(api, crowd, query):
    forwards = walk(api, query)
    assert "previousCursor" not in forwards[0]  # RFC 9865 §2: never on the first page
    assert all("previousCursor" in body for body in forwards[1:])
    backwards = [forwards[-1]]
    while "previousCursor" in backwards[-1]:
        backwards.append(get_page(api, f"/Users?cursor={backwards[-1]['previousCursor']}&count=2{query}"))
    assert [names([b]) for b in reversed(backwards)] == [names([f]) for f in forwards]
    assert all("nextCursor" in body for body in backwards[1:])


def test_a_next_cursor_from_a_page_read_backwards_goes_forwards_again(api, crowd):
    forwards = walk(api)
    back = get_page(api, f"/Users?cursor={forwards[2]['previousCursor']}&count=2")
    assert names([back]) == names([forwards[1]])
    again = get_page(api, f"/Users?cursor={back['nextCursor']}&count=2")
    assert names([again]) == names([forwards[2]])


def test_one_page_holding_everything_has_no_cursors(api, crowd):
    body = get_page(api, "/Users?cursor=&count=50")
    assert len(body["Resources"]) == 9
    assert "nextCursor" not in body and "previousCursor" not in body


def test_an_empty_list_has_no_cursors(api):
    body = get_page(api, "/Users?cursor")
    assert body == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0,
                    "itemsPerPage": 0, "Resources": []}


@pytest.mark.parametrize("count", ["0", "-5"])
def test_count_zero_gives_the_total_alone(api, crowd, count):
    body = get_page(api, f"/Users?cursor=&count={count}")
    assert body["totalResults"] == 9 and body["itemsPerPage"] == 0 and body["Resources"] == []
    assert "nextCursor" not in body and "previousCursor" not in body


def test_without_count_a_page_has_the_default_size(app, api, crowd):
    app.config["SCIM_DEFAULT_PAGE_SIZE"] = 4
    body = get_page(api, "/Users?cursor=")
    assert body["itemsPerPage"] == 4
    assert get_page(api, f"/Users?cursor={body['nextCursor']}")["itemsPerPage"] == 4


def test_groups_walk_by_cursor_too(api, make_group):
    for name in ("Sales", "ops", "Design", "Admins", "eng"):
        make_group(name)
    query = "&sortBy=displayName&excludedAttributes=members"
    body = get_page(api, f"/Groups?cursor=&count=2{query}")
    seen = [g["displayName"] for g in body["Resources"]]
    while "nextCursor" in body:
        body = get_page(api, f"/Groups?cursor={body['nextCursor']}&count=2{query}")
        seen += [g["displayName"] for g in body["Resources"]]
    assert seen == ["Admins", "Design", "eng", "ops", "Sales"]
    assert seen == db.session.scalars(select(Group.display_name).order_by(func.lower(Group.display_name))).all()


def test_search_takes_the_cursor_in_its_body(api, crowd):
    request = {"schemas": [SEARCH], "filter": 'userName sw "user"', "sortBy": "userName", "count": 4,
               "attributes": ["userName"], "cursor": ""}
    first = api.post("/Users/.search", json=request)
    assert first.status_code == 200 and "startIndex" not in first.json
    second = api.post("/Users/.search", json={**request, "cursor": first.json["nextCursor"]})
    assert second.status_code == 200
    assert names([first.json, second.json]) == [f"user{i}@example.com" for i in range(8)]
    assert second.json["Resources"][0] == {"schemas": crowd[4]["schemas"], "id": crowd[4]["id"],
                                           "userName": "user4@example.com"}
    assert second.json["previousCursor"] and second.json["nextCursor"]


def test_search_without_a_cursor_pages_by_index_as_before(api, crowd):
    body = api.post("/Users/.search", json={"schemas": [SEARCH], "count": 2}).json
    assert body["startIndex"] == 1 and "nextCursor" not in body


def test_index_paging_has_no_cursors(api, crowd):
    body = api.get("/Users?startIndex=3&count=2").json
    assert (body["startIndex"], body["itemsPerPage"]) == (3, 2)
    assert "nextCursor" not in body and "previousCursor" not in body


def test_the_data_layer_pages_by_position_without_an_http_client(app, crowd):
    key = sort_key("displayName", "descending", USER_MAP)
    first = keyset_page(User, DEFAULT_TENANT_ID, None, key, 4)
    second = keyset_page(User, DEFAULT_TENANT_ID, None, key, 4, first.last)
    back = keyset_page(User, DEFAULT_TENANT_ID, None, key, 4, second.first, backward=True)
    assert (first.total, first.more, second.more, back.more) == (9, True, True, False)
    assert [r[0].id for r in back.rows] == [r[0].id for r in first.rows]
    assert first.last[0] == first.rows[-1][0].display_name.lower() and first.last[2] == first.rows[-1][0].id
    everything = keyset_page(User, DEFAULT_TENANT_ID, None, key, 9).rows
    assert [r[0].id for r in first.rows + second.rows] == [r[0].id for r in everything[:8]]


# What a cursor page costs

def offset_of(statement: str, parameters) -> int | None:
    """The OFFSET a statement skips (SQLite always writes one, 0 when none is asked for), None without one."""
    found = re.search(r"OFFSET (\?|%\((\w+)\)s)", statement)
    if found is None:
        return None
    return parameters[found.group(2)] if found.group(2) else parameters[statement[:found.start(1)].count("?")]


@pytest.fixture
def flask_only(app, monkeypatch):
    """Every request answered by Flask's path, whose statements the engine's events see. On PostgreSQL the
    hot path (scim/hotpath.py) runs the very same statements (scim.reads.KEYSETS, PAGES) on its own cursor."""
    monkeypatch.setattr(app.extensions["scim.hotpath"], "enabled", False)


def test_a_cursor_page_is_found_by_position_not_by_offset(api, crowd, flask_only):
    deep = walk(api)[-2]["nextCursor"]
    statements = []

    def keep(_conn, _cursor, statement, parameters, *_args):
        statements.append((statement, parameters))
    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        get_page(api, f"/Users?cursor={deep}&count=2")
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    [(query, parameters)] = [(s, p) for s, p in statements if "count(*)" in s and "FROM users" in s]
    assert "(users.created, users.id) >" in query
    assert offset_of(query, parameters) in (None, 0)


def test_first_and_deep_pages_take_the_same_statements(api, crowd, count_statements, flask_only):
    deep = walk(api)[-2]["nextCursor"]
    with count_statements() as first:
        get_page(api, "/Users?cursor=&count=2")
    with count_statements() as later:
        get_page(api, f"/Users?cursor={deep}&count=2")
    assert 0 < first.count == later.count <= 6


# Errors (RFC 9865 §2.1)

def next_cursor(api, query: str = "&count=2") -> str:
    return get_page(api, f"/Users?cursor={query}")["nextCursor"]


@pytest.mark.parametrize("cursor", [
    "garbage", "x" * 200, "a.b", "%25%25", "AAAA", "A" * 9000,
])
def test_a_cursor_not_issued_here_is_invalid_cursor(api, crowd, cursor):
    assert_scim_error(api.get(f"/Users?cursor={cursor}&count=2"), 400, "invalidCursor")


def test_a_tampered_cursor_is_invalid_cursor(api, crowd):
    cursor = next_cursor(api)
    for at in (0, 20, len(cursor) - 2):
        changed = cursor[:at] + ("B" if cursor[at] != "B" else "C") + cursor[at + 1:]
        assert_scim_error(api.get(f"/Users?cursor={changed}&count=2"), 400, "invalidCursor")


def test_a_cursor_signed_with_another_pepper_is_invalid_cursor(make_app, api, crowd):
    other = make_app(SCIM_TOKEN_PEPPER="another-server-secret").test_client()
    cursor = other.get("/scim/v2/Users?cursor=&count=2", headers=AUTH).json["nextCursor"]
    assert_scim_error(api.get(f"/Users?cursor={cursor}&count=2"), 400, "invalidCursor")


@pytest.mark.parametrize("made_for, used_with", [
    ("", "&filter=" + quote("active eq true")),
    ("&filter=" + quote("active eq true"), "&filter=" + quote("active eq false")),
    ("&sortBy=userName", ""),
    ("&sortBy=userName", "&sortBy=displayName"),
    ("&sortBy=userName", "&sortBy=userName&sortOrder=descending"),
])
def test_a_cursor_of_another_list_is_invalid_cursor(api, crowd, made_for, used_with):
    cursor = next_cursor(api, f"&count=2{made_for}")
    response = api.get(f"/Users?cursor={cursor}&count=2{used_with}")
    assert_scim_error(response, 400, "invalidCursor")
    assert "another list" in response.json["detail"]


def test_a_users_cursor_on_groups_is_invalid_cursor(api, crowd, make_group):
    assert_scim_error(api.get(f"/Groups?cursor={next_cursor(api)}&count=2"), 400, "invalidCursor")


def test_naming_sort_order_or_the_attribute_case_differently_is_the_same_list(api, crowd):
    cursor = next_cursor(api, "&count=2&sortBy=userName")
    assert get_page(api, f"/Users?cursor={cursor}&count=2&sortBy=USERNAME&sortOrder=ascending")["Resources"]


def test_start_index_and_cursor_together_are_400(api, crowd):
    assert_scim_error(api.get("/Users?cursor=&startIndex=1&count=2"), 400, "invalidValue")
    response = api.post("/Users/.search", json={"schemas": [SEARCH], "cursor": "", "startIndex": 3})
    assert_scim_error(response, 400, "invalidValue")


@pytest.mark.parametrize("count", ["1001", "ten", "1.5"])
def test_a_count_past_max_page_size_or_not_a_number_is_invalid_count(api, count):
    assert_scim_error(api.get(f"/Users?cursor=&count={count}"), 400, "invalidCount")


def test_max_page_size_follows_the_configuration(app, api, crowd):
    app.config["SCIM_MAX_PAGE_SIZE"] = 3
    assert_scim_error(api.get("/Users?cursor=&count=4"), 400, "invalidCount")
    assert get_page(api, "/Users?cursor=&count=3")["itemsPerPage"] == 3


def test_the_count_must_stay_that_of_the_first_request(api, crowd):
    cursor = next_cursor(api)
    response = api.get(f"/Users?cursor={cursor}&count=3")
    assert_scim_error(response, 400, "invalidCount")
    assert "count must stay 2" in response.json["detail"]


def aged(app, cursor: str, seconds: int) -> str:
    """The same cursor, signed again as if issued `seconds` ago."""
    key = signing_key(app.config["SCIM_TOKEN_PEPPER"])
    found = decode(cursor, key)
    return encode(Cursor(found.position, found.backward, found.query, found.count, found.issued - seconds), key)


def test_a_cursor_older_than_the_advertised_cursor_timeout_is_expired_cursor(app, api, crowd):
    timeout = api.get("/ServiceProviderConfig").json["pagination"]["cursorTimeout"]
    cursor = next_cursor(api)
    assert get_page(api, f"/Users?cursor={aged(app, cursor, timeout - 5)}&count=2")["Resources"]
    response = api.get(f"/Users?cursor={aged(app, cursor, timeout + 1)}&count=2")
    assert_scim_error(response, 400, "expiredCursor")


def test_cursors_do_not_expire_with_a_timeout_of_zero(app, api, crowd):
    app.config["SCIM_CURSOR_TIMEOUT"] = 0
    old = aged(app, next_cursor(api), 10 * 365 * 86400)
    assert get_page(api, f"/Users?cursor={old}&count=2")["Resources"]


@pytest.mark.parametrize("position", [
    ("not a date", "some-id"),
    (datetime(2024, 1, 1), 7),
    (datetime(2024, 1, 1),),
    ("x", datetime(2024, 1, 1), "some-id"),
])
def test_a_signed_cursor_that_does_not_fit_the_list_is_invalid_cursor(app, api, crowd, position):
    # What a client could make with an empty SCIM_TOKEN_PEPPER: refused before the database sees it.
    found = decode(next_cursor(api), signing_key(app.config["SCIM_TOKEN_PEPPER"]))
    forged = encode(Cursor(position, False, found.query, 2, int(time.time())),
                    signing_key(app.config["SCIM_TOKEN_PEPPER"]))
    assert_scim_error(api.get(f"/Users?cursor={forged}&count=2"), 400, "invalidCursor")


def test_the_search_of_users_and_groups_together_refuses_a_cursor(api, crowd):
    response = api.post("/.search", json={"schemas": [SEARCH], "cursor": ""})
    assert_scim_error(response, 400, "invalidValue")
    assert "startIndex" in response.json["detail"]


def test_cursor_errors_are_in_the_audit_trail_with_their_scim_type(api, crowd):
    api.get("/Users?cursor=garbage")
    row = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert (row.status, row.scim_type) == (400, "invalidCursor")


# Advertisement (RFC 9865 §4)

def test_service_provider_config_advertises_both_paging_methods(api):
    pagination = api.get("/ServiceProviderConfig").json["pagination"]
    assert pagination == {"cursor": True, "index": True, "defaultPaginationMethod": "index",
                          "defaultPageSize": 100, "maxPageSize": 1000, "cursorTimeout": 3600}


def test_the_advertised_sizes_and_timeout_follow_the_configuration(app, api):
    app.config.update(SCIM_DEFAULT_PAGE_SIZE=500, SCIM_MAX_PAGE_SIZE=200, SCIM_CURSOR_TIMEOUT=0)
    pagination = api.get("/ServiceProviderConfig").json["pagination"]
    assert pagination == {"cursor": True, "index": True, "defaultPaginationMethod": "index",
                          "defaultPageSize": 200, "maxPageSize": 200}
