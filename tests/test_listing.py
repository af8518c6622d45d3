"""GET /Users and /Groups: paging (RFC 7644 §3.4.2.4) and filters (§3.4.2.2), answered by the database."""

from urllib.parse import quote

import pytest
from sqlalchemy import text

from models import db

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def listing(api, path):
    response = api.get(path)
    assert response.status_code == 200, response.json
    assert response.json["schemas"] == [LIST]
    return response.json


def user_names(body):
    return [r["userName"] for r in body["Resources"]]


@pytest.fixture
def five_users(make_user):
    return [make_user(f"user{i}@example.com") for i in range(5)]


def test_total_results_is_the_full_count_not_the_page_size(api, five_users):
    body = listing(api, "/Users?startIndex=1&count=2")
    assert body["totalResults"] == 5 and body["itemsPerPage"] == 2 and body["startIndex"] == 1
    assert len(body["Resources"]) == 2


def test_pages_walk_every_user_once_in_a_stable_order(api, five_users):
    seen = []
    for start in (1, 3, 5):
        seen += user_names(listing(api, f"/Users?startIndex={start}&count=2"))
    assert sorted(seen) == sorted(u["userName"] for u in five_users)
    assert seen == user_names(listing(api, "/Users?startIndex=1&count=5"))


@pytest.mark.parametrize("query, start, items", [
    ("", 1, 5),                       # defaults: startIndex 1, count 100
    ("?startIndex=0&count=2", 1, 2),  # startIndex below 1 means 1
    ("?startIndex=-7&count=2", 1, 2),
    ("?startIndex=4", 4, 2),
    ("?startIndex=99", 99, 0),        # past the end: empty page, same total
    ("?count=-1", 1, 0),              # negative count means 0
    ("?count=0", 1, 0),               # count 0: only totalResults
    ("?count=100000", 1, 5),          # capped at the maximum page size
])
def test_paging_defaults_and_clamping(api, five_users, query, start, items):
    body = listing(api, "/Users" + query)
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (5, start, items)
    assert len(body["Resources"]) == items


def test_page_size_is_capped_by_configuration(app, api, five_users):
    app.config["SCIM_MAX_PAGE_SIZE"] = 3
    assert listing(api, "/Users?count=50")["itemsPerPage"] == 3


@pytest.mark.parametrize("query", ["startIndex=abc", "count=1.5", "count=ten"])
def test_non_numeric_paging_is_400(api, query):
    response = api.get(f"/Users?{query}")
    assert response.status_code == 400 and response.json["scimType"] == "invalidValue"


@pytest.fixture
def people(api, make_user):
    alice = make_user("Alice@Example.com", given="Alice", family="Smith", externalId="ext-A",
                      emails=[{"value": "alice.work@example.com", "type": "work", "primary": True},
                              {"value": "alice@home.example", "type": "home"}])
    bob = make_user("bob@example.com", given="Bob", family="Stone", externalId="ext-b")
    carol = make_user("carol@example.com", given="Carol", family="Smith", active=False)
    return {"alice": alice, "bob": bob, "carol": carol}


@pytest.mark.parametrize("filter_text, expected", [
    ('userName eq "alice@example.com"', ["Alice@Example.com"]),          # userName ignores case
    ('USERNAME EQ "ALICE@EXAMPLE.COM"', ["Alice@Example.com"]),          # so do names and operators
    ('userName eq "nobody@example.com"', []),
    ('externalId eq "ext-A"', ["Alice@Example.com"]),
    ('externalId eq "EXT-A"', []),                                       # externalId is caseExact
    ('emails.value eq "ALICE@HOME.EXAMPLE"', ["Alice@Example.com"]),
    ('emails[type eq "work" and value eq "alice.work@example.com"]', ["Alice@Example.com"]),
    ('emails[type eq "work"].value eq "alice@home.example"', []),        # same email row must match both
    ('displayName eq "bob stone"', ["bob@example.com"]),
    ('active eq false', ["carol@example.com"]),
    ('active eq true and name.familyName eq "Smith"', ["Alice@Example.com"]),
    ('name.familyName eq "Smith" or userName sw "bob"', ["Alice@Example.com", "bob@example.com", "carol@example.com"]),
    ('not (active eq true)', ["carol@example.com"]),
    ('userName co "o" and not (userName ew "Example.com")', []),
    ('externalId pr', ["Alice@Example.com", "bob@example.com"]),
])
def test_user_filters(api, people, filter_text, expected):
    body = listing(api, "/Users?filter=" + quote(filter_text))
    assert sorted(user_names(body)) == sorted(expected)
    assert body["totalResults"] == len(expected)


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.mark.parametrize("filter_text, expected", [
    ('title eq "cto"', ["boss@example.com"]),                                  # no column: JSON, ignoring case
    ('title co "T" and not (nickName pr)', ["boss@example.com"]),
    ('name.formatted sw "Ms"', ["boss@example.com"]),
    (f'{ENTERPRISE}:employeeNumber eq "701984"', ["boss@example.com"]),
    (f'{ENTERPRISE}:department ne "Sales"', ["boss@example.com", "plain@example.com"]),
    (f'{ENTERPRISE}:employeeNumber pr', ["boss@example.com"]),
    ('urn:ietf:params:scim:schemas:core:2.0:User:nickName eq "Babs"', ["plain@example.com"]),
])
def test_filters_on_attributes_kept_in_the_json_document(api, make_user, filter_text, expected):
    make_user("boss@example.com", title="CTO", name={"formatted": "Ms Barbara Jensen", "givenName": "B"},
              **{ENTERPRISE: {"employeeNumber": "701984", "department": "Tour"}})
    make_user("plain@example.com", nickName="Babs")
    body = listing(api, "/Users?filter=" + quote(filter_text))
    assert sorted(user_names(body)) == expected


def test_filter_on_id(api, people):
    body = listing(api, f'/Users?filter=id eq "{people["bob"]["id"]}"')
    assert user_names(body) == ["bob@example.com"]


def test_like_wildcards_in_values_are_literal(api, make_user):
    make_user("under_score@example.com")
    make_user("underXscore@example.com")
    body = listing(api, "/Users?filter=" + quote('userName co "under_"'))
    assert user_names(body) == ["under_score@example.com"]


@pytest.mark.parametrize("filter_text", [
    'noSuchAttribute eq "x"',          # unknown: never "return everything"
    'password eq "x"',                 # never returned, so never matched either
    'phoneNumbers.value eq "x"',       # multi-valued, kept only in the JSON document
    'name eq "x"',                     # complex: compare a sub-attribute
    'userName eq',                     # bad syntax
    'userName xx "a"',
    'active eq "yes"',
    'userName gt 5',
    'meta.created gt "yesterday"',
    'urn:example:custom:2.0:User:thing eq "x"',
])
def test_unsupported_or_bad_filters_are_400_invalid_filter(api, people, filter_text):
    response = api.get("/Users?filter=" + quote(filter_text))
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidFilter"
    assert response.json["detail"]


def test_filter_on_meta_last_modified_compares_dates(api, people):
    body = listing(api, "/Users?filter=" + quote('meta.lastModified gt "2000-01-01T00:00:00Z"'))
    assert body["totalResults"] == 3
    body = listing(api, "/Users?filter=" + quote('meta.lastModified gt "2999-01-01T00:00:00+01:00"'))
    assert body["totalResults"] == 0


def test_filter_with_paging_counts_all_matches(api, make_user):
    for i in range(4):
        make_user(f"match{i}@example.com")
    make_user("other@example.com")
    body = listing(api, "/Users?count=1&filter=" + quote('userName sw "match"'))
    assert body["totalResults"] == 4 and body["itemsPerPage"] == 1


def test_group_filters_on_display_name_and_id(api, make_group):
    ops = make_group("Ops")
    make_group("Sales")
    found = listing(api, "/Groups?filter=" + quote('displayName eq "OPS"'))["Resources"]
    assert [g["id"] for g in found] == [ops["id"]]
    assert listing(api, f'/Groups?filter=id eq "{ops["id"]}"')["totalResults"] == 1
    assert listing(api, "/Groups?filter=" + quote('members pr'))["totalResults"] == 0


def test_groups_are_a_paged_list_response(api, make_group):
    for name in ("A", "B", "C"):
        make_group(name)
    body = listing(api, "/Groups?startIndex=2&count=1")
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (3, 2, 1)
    assert body["Resources"][0]["displayName"] == "B"


def test_list_page_uses_a_constant_number_of_statements(api, make_user, make_group, count_statements):
    for i in range(12):
        make_user(f"q{i}@example.com")
    make_group("G", members=[u["id"] for u in listing(api, "/Users")["Resources"]])
    with count_statements() as small:
        listing(api, "/Users?count=2")
    with count_statements() as large:
        listing(api, "/Users?count=12")
    assert small.count == large.count <= 6  # count, page, groups; audit row


def test_attributes_and_excluded_attributes_select_what_comes_back(api, make_user):
    user = make_user("sel@example.com")
    body = listing(api, "/Users?attributes=userName,name.givenName")["Resources"][0]
    assert body == {"schemas": user["schemas"], "id": user["id"], "userName": "sel@example.com",
                    "name": {"givenName": "Barbara"}}
    body = listing(api, "/Users?excludedAttributes=emails,meta")["Resources"][0]
    assert "emails" not in body and "meta" not in body and body["userName"] == "sel@example.com"


def test_sqlite_and_postgresql_agree_on_the_backend_in_use(app):
    # Guards the fixture: the PostgreSQL run really runs on PostgreSQL, and the PgBouncer run through a
    # pooler (PostgreSQL answers on another port than the URL's).
    import os
    backend = os.environ.get("TEST_DATABASE", "sqlite")
    assert db.engine.dialect.name == {"sqlite": "sqlite", "postgresql": "postgresql", "pgbouncer": "postgresql"}[
        backend]
    if db.engine.dialect.name == "postgresql":
        server_port = db.session.scalar(text("SELECT inet_server_port()"))
        assert (server_port != db.engine.url.port) is (backend == "pgbouncer")

