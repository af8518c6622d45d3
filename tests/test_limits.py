"""Requests that ask for more work than the service does within its timeout are refused before the work,
with a SCIM error, an audit row and no change; bodies that are not standard JSON are refused too."""

import json

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Group, Link, User, UserEmail, db
from tests.conftest import user_body

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
DATA = (User, UserEmail, Group, Link)


def counts() -> tuple:
    db.session.expire_all()
    return tuple(db.session.scalar(select(func.count()).select_from(model)) for model in DATA)


def last_audit() -> AuditEntry:
    db.session.expire_all()
    return db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()


def assert_refused(response, status: int, scim_type: str | None, before: tuple) -> None:
    """A SCIM error body, an audit row for it, and the data tables as they were."""
    assert response.status_code == status, response.data[:500]
    assert response.mimetype == "application/scim+json"
    assert response.json["status"] == str(status) and response.json.get("scimType") == scim_type
    assert last_audit().status == status
    assert counts() == before


def patch_body(operations: list) -> dict:
    return {"schemas": [PATCH], "Operations": operations}


def test_search_naming_more_attributes_than_allowed_is_400(api):
    before = counts()
    names = [f"a{i}" for i in range(220_000)]
    response = api.post("/.search", json={"schemas": [SEARCH], "attributes": names})
    assert_refused(response, 400, "invalidValue", before)
    assert "more than 200 attributes" in response.json["detail"]


def test_attribute_selection_within_the_cap_still_works(api, make_user):
    make_user("picked@example.com")
    names = ["userName"] + [f"unknown{i}" for i in range(199)]
    response = api.post("/Users/.search", json={"schemas": [SEARCH], "attributes": names})
    assert response.status_code == 200
    assert set(response.json["Resources"][0]) == {"schemas", "id", "userName"}


def test_group_patch_with_more_operations_than_allowed_is_413(api, make_user, make_group):
    user = make_user("member@example.com")
    group = make_group("Pinned")
    before = counts()
    operations = [{"op": "add" if i % 2 == 0 else "remove", "path": "members", "value": [{"value": user["id"]}]}
                  for i in range(20_000)]
    response = api.patch(f"/Groups/{group['id']}", json=patch_body(operations))
    assert_refused(response, 413, None, before)


def test_alternating_member_operations_cost_the_same_statements_for_any_count(api, make_user, make_group,
                                                                              count_statements):
    users = [make_user(f"alt{i}@example.com")["id"] for i in range(3)]
    group = make_group("Alternating", members=[users[2]])

    def alternate(count):
        return [{"op": "add", "path": "members", "value": [{"value": users[i % 2]}]} if i % 3 else
                {"op": "remove", "path": f'members[value eq "{users[i % 2]}"]'} for i in range(count)]
    with count_statements() as few:
        assert api.patch(f"/Groups/{group['id']}", json=patch_body(alternate(20))).status_code == 204
    # Back to the same members, so that both requests make the same change (and write the same events).
    assert api.patch(f"/Groups/{group['id']}", json=patch_body(
        [{"op": "remove", "path": f'members[value eq "{users[1]}"]'}])).status_code == 204
    with count_statements() as many:
        assert api.patch(f"/Groups/{group['id']}", json=patch_body(alternate(9_998))).status_code == 204
    assert many.count == few.count
    members = {m["value"] for m in api.get(f"/Groups/{group['id']}").json["members"]}
    # The last operation for each user decides: 9,997 (add users[1]), 9,996 (remove users[0]).
    assert members == {users[1], users[2]}


def test_okta_sized_membership_patch_still_works(api, make_user, make_group):
    users = [make_user(f"okta{i}@example.com")["id"] for i in range(5)]
    group = make_group("Okta push", members=users[:3])
    operations = [{"op": "remove", "path": f'members[value eq "{uid}"]'} for uid in users[:3]] * 333
    operations.append({"op": "add", "path": "members", "value": [{"value": uid} for uid in users[3:]]})
    assert len(operations) == 1_000
    assert api.patch(f"/Groups/{group['id']}", json=patch_body(operations)).status_code == 204
    assert {m["value"] for m in api.get(f"/Groups/{group['id']}").json["members"]} == set(users[3:])


def test_user_patch_with_more_attribute_operations_than_allowed_is_413(api, make_user):
    user = make_user("emails@example.com")
    before = counts()
    operations = [{"op": "add", "path": "emails", "value": [{"value": f"e{i}@example.com"}]} for i in range(8_000)]
    response = api.patch(f"/Users/{user['id']}", json=patch_body(operations))
    assert_refused(response, 413, None, before)
    assert "1000 operations on attributes" in response.json["detail"]


def test_path_less_value_split_into_more_operations_than_allowed_is_413(api, make_user):
    user = make_user("split@example.com")
    before = counts()
    value = {f"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:k{i}": "x" for i in range(20_000)}
    response = api.patch(f"/Users/{user['id']}", json=patch_body([{"op": "replace", "value": value}]))
    assert_refused(response, 413, None, before)


def test_duplicate_values_added_many_times_are_kept_once(api, make_user):
    user = make_user("dupes@example.com")
    email = [{"value": "second@example.com", "type": "home"}]
    operations = [{"op": "add", "path": "emails", "value": email * 100} for _ in range(1_000)]
    response = api.patch(f"/Users/{user['id']}", json=patch_body(operations))
    assert response.status_code == 200
    assert [e["value"] for e in response.json["emails"]] == ["dupes@example.com", "second@example.com"]


def test_more_values_than_allowed_in_one_attribute_is_400(app, api, make_user):
    app.config["SCIM_MAX_VALUES"] = 10
    user = make_user("many@example.com")
    before = counts()
    emails = [{"value": f"m{i}@example.com"} for i in range(10)]
    response = api.patch(f"/Users/{user['id']}", json=patch_body([{"op": "add", "path": "emails", "value": emails}]))
    assert_refused(response, 400, "invalidValue", before)
    assert "emails may hold at most 10 values" in response.json["detail"]
    phones = [{"value": str(i)} for i in range(11)]
    created = api.post("/Users", json=user_body("toomany@example.com", phoneNumbers=phones))
    assert_refused(created, 400, "invalidValue", before)


def test_filter_longer_than_allowed_is_refused_before_parsing(api, monkeypatch):
    before = counts()
    monkeypatch.setattr("scim.filters.ScimFilter", None)  # parsing it would fail with a TypeError (500)
    text = " or ".join(f'userName eq "u{i}"' for i in range(100_000))
    for response in (api.get("/Users", query_string={"filter": text}),
                     api.post("/.search", json={"schemas": [SEARCH], "filter": text})):
        assert_refused(response, 400, "invalidFilter", before)
        assert "filter is longer than 10000 characters" in response.json["detail"]


def test_patch_path_longer_than_allowed_is_400(api, make_group):
    group = make_group("Long path")
    before = counts()
    path = "members[" + " or ".join(f'value eq "u{i}"' for i in range(10_000)) + "]"
    response = api.patch(f"/Groups/{group['id']}", json=patch_body([{"op": "remove", "path": path}]))
    assert_refused(response, 400, "invalidPath", before)


def test_bulk_over_max_operations_is_413_and_runs_nothing(api):
    before = counts()
    operations = [{"method": "POST", "path": "/Users", "bulkId": f"u{i}",
                   "data": user_body(f"bulk{i}@example.com", password="Pa55-word-long")} for i in range(101)]
    response = api.post("/Bulk", json={"schemas": [BULK], "Operations": operations})
    assert_refused(response, 413, None, before)
    assert "maxOperations (100)" in response.json["detail"]


def test_bulk_operations_past_the_time_budget_are_answered_503_and_not_run(app, api):
    app.config["SCIM_BULK_TIME_BUDGET"] = 0
    before = counts()
    operations = [{"method": "POST", "path": "/Users", "bulkId": f"t{i}", "data": user_body(f"t{i}@example.com")}
                  for i in range(3)]
    response = api.post("/Bulk", json={"schemas": [BULK], "Operations": operations})
    assert response.status_code == 200
    assert [(op["status"], op["bulkId"]) for op in response.json["Operations"]] == [
        ("503", "t0"), ("503", "t1"), ("503", "t2")]
    assert "SCIM_BULK_TIME_BUDGET" in response.json["Operations"][0]["response"]["detail"]
    assert counts() == before


@pytest.mark.parametrize("value", ['"0001-01-01T00:00:00+05:00"', '"9999-12-31T23:59:59-05:00"'])
def test_date_filter_outside_the_representable_range_is_400(api, value):
    before = counts()
    response = api.get("/Users", query_string={"filter": f"meta.created gt {value}"})
    assert_refused(response, 400, "invalidFilter", before)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_constants_are_invalid_syntax_everywhere(app, api, make_user, constant):
    app.config["SCIM_USER_EXTENSIONS"] = ("urn:example:params:scim:schemas:extension:custom:2.0:User",)
    user = make_user("nan@example.com")
    before = counts()
    custom = '"urn:example:params:scim:schemas:extension:custom:2.0:User": {"x": ' + constant + "}"
    create = '{"userName": "nan2@example.com", ' + custom + "}"
    patch = '{"Operations": [{"op": "replace", "path": "title", "value": ' + constant + "}]}"
    bulk = '{"Operations": [{"method": "POST", "path": "/Users", "bulkId": "b", "data": ' + create + "}]}"
    search = '{"count": ' + constant + "}"
    for method, path, raw in [("POST", "/Users", create), ("PUT", f"/Users/{user['id']}", create),
                              ("PATCH", f"/Users/{user['id']}", patch), ("POST", "/Bulk", bulk),
                              ("POST", "/Users/.search", search)]:
        response = api.request(method, path, data=raw, headers={"Content-Type": "application/scim+json"})
        assert_refused(response, 400, "invalidSyntax", before)
        assert f"{constant.lstrip('-')}" in response.json["detail"]


def test_json_syntax_error_says_where(api):
    response = api.request("POST", "/Users", data='{\n  "userName": "x",\n  oops\n}',
                           headers={"Content-Type": "application/scim+json"})
    assert response.status_code == 400 and response.json["scimType"] == "invalidSyntax"
    assert "line 3 column 3" in response.json["detail"]


def test_options_answers_204_with_allow_and_no_html(api, make_user):
    user = make_user("options@example.com")
    for path, methods in (("/Users", {"GET", "POST"}), (f"/Users/{user['id']}", {"GET", "PUT", "PATCH", "DELETE"})):
        response = api.request("OPTIONS", path)
        assert response.status_code == 204 and response.data == b""
        assert "Content-Type" not in response.headers
        assert methods <= {m.strip() for m in response.headers["Allow"].split(",")}
        assert last_audit().method == "OPTIONS"


def test_options_without_a_credential_is_401(client):
    response = client.open("/scim/v2/Users", method="OPTIONS")
    assert response.status_code == 401 and response.json["status"] == "401"


def test_removing_active_deactivates_the_account(api, make_user):
    user = make_user("unassigned@example.com")
    response = api.patch(f"/Users/{user['id']}", json=patch_body([{"op": "remove", "path": "active"}]))
    assert response.status_code == 200 and response.json["active"] is False
    db.session.expire_all()
    assert db.session.get(User, user["id"]).active is False
    assert api.get(f"/Users/{user['id']}").json["active"] is False


def members_shown(api, group_id: str) -> dict:
    return {m["value"]: m["display"] for m in api.get(f"/Groups/{group_id}").json["members"]}


def test_member_display_sent_by_the_client_is_kept(api, make_user):
    alice = make_user("alice@example.com", given="Alice", family="Ames")
    bob = make_user("bob@example.com", given="Bob", family="Burns")
    created = api.post("/Groups", json={"displayName": "Shown", "members": [
        {"value": alice["id"], "display": "alice (Okta)"}, {"value": bob["id"]}]})
    assert created.status_code == 201
    shown = {m["value"]: m["display"] for m in created.json["members"]}
    assert shown == {alice["id"]: "alice (Okta)", bob["id"]: "Bob Burns"}  # none sent: the user's name
    assert members_shown(api, created.json["id"]) == shown


def test_member_display_is_immutable_once_added(api, make_user, make_group):
    carol = make_user("carol@example.com")
    group = make_group("Immutable")
    add = [{"op": "add", "path": "members", "value": [{"value": carol["id"], "display": "first"}]}]
    assert api.patch(f"/Groups/{group['id']}", json=patch_body(add)).status_code == 204
    add[0]["value"][0]["display"] = "second"
    assert api.patch(f"/Groups/{group['id']}", json=patch_body(add)).status_code == 204
    assert members_shown(api, group["id"]) == {carol["id"]: "first"}
    put = {"displayName": "Immutable", "members": [{"value": carol["id"], "display": "by PUT"}]}
    assert api.put(f"/Groups/{group['id']}", json=put).status_code == 200
    assert members_shown(api, group["id"]) == {carol["id"]: "by PUT"}  # a replace adds the members anew


def test_member_display_must_be_a_string(api, make_user):
    dave = make_user("dave@example.com")
    before = counts()
    response = api.post("/Groups", json={"displayName": "Bad", "members": [{"value": dave["id"], "display": 7}]})
    assert_refused(response, 400, "invalidValue", before)


def test_large_json_body_is_still_read(api):
    body = user_body("big@example.com", title="t" * 100_000)
    response = api.request("POST", "/Users", data=json.dumps(body), headers={"Content-Type": "application/scim+json"})
    assert response.status_code == 201
