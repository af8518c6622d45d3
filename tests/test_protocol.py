"""RFC 7644 beyond the basics: versions and ETags (§3.14), sorting (§3.4.2.3), attribute selection on
every response (§3.4.2.5, §3.9) and POST .search (§3.4.3)."""

import pytest
from sqlalchemy import select

from models import User, db
from tests.conftest import user_body

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
DEACTIVATE = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}


def stored_active(user_id):
    db.session.expire_all()
    return db.session.scalar(select(User.active).where(User.id == user_id))


def test_every_write_moves_the_version_and_the_etag(api, make_user):
    user = make_user("v@example.com")
    assert user["meta"]["version"] == 'W/"1"'
    patched = api.patch(f"/Users/{user['id']}", json=DEACTIVATE)
    assert patched.headers["ETag"] == patched.json["meta"]["version"] == 'W/"2"'
    replaced = api.put(f"/Users/{user['id']}", json=user_body("v@example.com"))
    assert replaced.headers["ETag"] == 'W/"3"'
    assert api.get(f"/Users/{user['id']}").headers["ETag"] == 'W/"3"'


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_stale_if_match_is_412_and_changes_nothing(api, make_user, method):
    user = make_user("stale@example.com")
    api.patch(f"/Users/{user['id']}", json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "title", "value": "now version 2"}]})
    kwargs = {"headers": {"If-Match": 'W/"1"'}}
    if method != "delete":
        kwargs["json"] = DEACTIVATE if method == "patch" else user_body("stale@example.com", active=False)
    response = getattr(api, method)(f"/Users/{user['id']}", **kwargs)
    assert response.status_code == 412 and response.json["status"] == "412"
    assert stored_active(user["id"]) is True


@pytest.mark.parametrize("if_match", ['W/"1"', '"1"', "*", 'W/"7", W/"1"'])
def test_matching_if_match_lets_the_write_through(api, make_user, if_match):
    user = make_user("fresh@example.com")
    response = api.patch(f"/Users/{user['id']}", json=DEACTIVATE, headers={"If-Match": if_match})
    assert response.status_code == 200 and stored_active(user["id"]) is False


def test_if_match_on_groups(api, make_group):
    group = make_group("G")
    stale = api.put(f"/Groups/{group['id']}", json={"displayName": "H"}, headers={"If-Match": 'W/"9"'})
    assert stale.status_code == 412
    fresh = api.put(f"/Groups/{group['id']}", json={"displayName": "H"}, headers={"If-Match": 'W/"1"'})
    assert fresh.status_code == 200 and fresh.json["meta"]["version"] == 'W/"2"'


def test_if_none_match_with_the_current_version_is_304(api, make_user):
    user = make_user("cache@example.com")
    unchanged = api.get(f"/Users/{user['id']}", headers={"If-None-Match": 'W/"1"'})
    assert unchanged.status_code == 304 and unchanged.data == b""
    assert unchanged.headers["ETag"] == 'W/"1"'
    changed = api.get(f"/Users/{user['id']}", headers={"If-None-Match": 'W/"0"'})
    assert changed.status_code == 200 and changed.json["id"] == user["id"]


def test_a_write_that_lost_a_race_on_the_version_is_412(api, make_user, monkeypatch):
    # The version moves between this request's read and its write (as when a writer that holds no lock,
    # e.g. on SQLite, gets in between): the UPDATE ... WHERE version = <read> matches nothing. A PATCH of
    # more than `active` reads the user first (a deactivation is one UPDATE, with no read to race).
    from sqlalchemy import update

    from scim import users
    user = make_user("race@example.com")
    real = users.user_for_write

    def version_moves_meanwhile(*args):
        row = real(*args)
        db.session.execute(update(User).where(User.id == user["id"]).values(version=User.version + 1)
                           .execution_options(synchronize_session=False))
        return row
    monkeypatch.setattr(users, "user_for_write", version_moves_meanwhile)
    retitle = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False, "title": "Boss"}}]}
    response = api.patch(f"/Users/{user['id']}", json=retitle)
    assert response.status_code == 412
    assert stored_active(user["id"]) is True


@pytest.fixture
def sortable(make_user):
    make_user("b@example.com", given="Zed", family="Adams")
    make_user("C@example.com", given="amy", family=None)
    make_user("a@example.com", given="Bob", family="Cole")


def names(response):
    assert response.status_code == 200, response.json
    return [r["userName"] for r in response.json["Resources"]]


@pytest.mark.parametrize("query, expected", [
    ("sortBy=userName", ["a@example.com", "b@example.com", "C@example.com"]),   # userName ignores case
    ("sortBy=userName&sortOrder=descending", ["C@example.com", "b@example.com", "a@example.com"]),
    ("sortBy=name.givenName", ["C@example.com", "a@example.com", "b@example.com"]),
    ("sortBy=NAME.FAMILYNAME", ["b@example.com", "a@example.com", "C@example.com"]),  # missing last
    ("sortBy=name.familyName&sortOrder=descending", ["C@example.com", "a@example.com", "b@example.com"]),
    ("sortBy=urn:ietf:params:scim:schemas:core:2.0:User:userName", ["a@example.com", "b@example.com", "C@example.com"]),
])
def test_sort_by(api, sortable, query, expected):
    assert names(api.get(f"/Users?{query}")) == expected


def test_sort_applies_before_paging(api, sortable):
    assert names(api.get("/Users?sortBy=userName&startIndex=2&count=1")) == ["b@example.com"]


def test_sort_by_an_attribute_kept_in_the_json_document(api, make_user):
    for name, title in (("x@example.com", "b"), ("y@example.com", "A"), ("z@example.com", "c")):
        make_user(name, title=title)
    assert names(api.get("/Users?sortBy=title")) == ["y@example.com", "x@example.com", "z@example.com"]


@pytest.mark.parametrize("query", ["sortBy=nope", "sortBy=emails", "sortOrder=sideways", "sortBy=no..pe",
                                   'sortBy=emails[type eq "work"]'])
def test_bad_sort_is_400(api, query):
    response = api.get(f"/Users?{query}")
    assert response.status_code == 400 and response.json["scimType"] == "invalidValue"


def test_attributes_apply_to_write_responses(api, make_user):
    created = api.post("/Users?attributes=userName", json=user_body("attr@example.com"))
    assert created.status_code == 201
    assert set(created.json) == {"schemas", "id", "userName"}
    patched = api.patch(f"/Users/{created.json['id']}?excludedAttributes=name,emails", json=DEACTIVATE)
    assert "name" not in patched.json and "emails" not in patched.json and patched.json["active"] is False


def test_users_search_takes_its_parameters_from_the_body(api, sortable):
    response = api.post("/Users/.search", json={
        "schemas": [SEARCH], "filter": 'userName ne "b@example.com"', "sortBy": "userName",
        "sortOrder": "descending", "startIndex": 1, "count": 5, "attributes": ["userName"]})
    assert names(response) == ["C@example.com", "a@example.com"]
    assert response.json["totalResults"] == 2
    assert set(response.json["Resources"][0]) == {"schemas", "id", "userName"}


def test_groups_search(api, make_group):
    make_group("Alpha")
    make_group("Beta")
    response = api.post("/Groups/.search", json={"schemas": [SEARCH], "filter": 'displayName sw "b"'})
    assert [g["displayName"] for g in response.json["Resources"]] == ["Beta"]


@pytest.mark.parametrize("body, scim_type", [
    ({"schemas": ["urn:wrong"]}, "invalidSyntax"),
    ({"schemas": [SEARCH], "filter": "userName eq"}, "invalidFilter"),
    ({"schemas": [SEARCH], "count": {"n": 1}}, "invalidValue"),
])
def test_bad_search_request_is_400(api, body, scim_type):
    response = api.post("/Users/.search", json=body)
    assert response.status_code == 400 and response.json["scimType"] == scim_type


def test_root_search_spans_users_then_groups(api, make_user, make_group):
    user = make_user("root@example.com")
    group = make_group("Root Group")
    everything = api.post("/.search", json={"schemas": [SEARCH]}).json
    assert everything["totalResults"] == 2
    assert [r["id"] for r in everything["Resources"]] == [user["id"], group["id"]]
    second = api.post("/.search", json={"schemas": [SEARCH], "startIndex": 2, "count": 1}).json
    assert [r["id"] for r in second["Resources"]] == [group["id"]] and second["totalResults"] == 2


def test_root_search_filter_on_an_attribute_only_groups_have(api, make_user, make_group):
    make_user("someone@example.com")
    group = make_group("Only Groups")
    body = api.post("/.search", json={"schemas": [SEARCH], "filter": 'displayName eq "Only Groups"'}).json
    assert [r["id"] for r in body["Resources"]] == [group["id"]]
    by_user_name = api.post("/.search", json={"schemas": [SEARCH], "filter": 'userName eq "someone@example.com"'})
    assert by_user_name.json["totalResults"] == 1
    bad = api.post("/.search", json={"schemas": [SEARCH], "filter": 'nothing eq "x"'})
    assert bad.status_code == 400 and bad.json["scimType"] == "invalidFilter"


def test_root_search_or_across_attributes_of_different_types(api, make_user, make_group):
    user = make_user("bulky@example.com")
    group = make_group("Bulk G")
    body = api.post("/.search", json={"schemas": [SEARCH],
                                      "filter": 'displayName sw "Bulk" or userName sw "bulk"'}).json
    assert sorted(r["id"] for r in body["Resources"]) == sorted([user["id"], group["id"]])


def test_whole_extension_in_attributes_and_excluded_attributes(api, make_user):
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    user = make_user("ext@example.com", **{enterprise: {"department": "Tour"}})
    only = api.get(f"/Users/{user['id']}?attributes={enterprise}").json
    assert only[enterprise] == {"department": "Tour"} and "userName" not in only
    without = api.get(f"/Users/{user['id']}?excludedAttributes={enterprise}").json
    assert enterprise not in without and without["userName"] == "ext@example.com"


def test_root_search_names_an_attribute_no_type_has_as_written(api):
    response = api.post("/.search", json={"schemas": [SEARCH], "filter": 'favouriteColour eq "blue"'})
    assert response.status_code == 400 and "favouriteColour" in response.json["detail"]
