"""/Groups: create, read, replace, patch and delete, with membership in the link table."""

import pytest
from sqlalchemy import func, select

from models import Group, Link, User, db

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def patch_body(*operations):
    return {"schemas": [PATCH], "Operations": list(operations)}


def link_rows(group_id):
    return set(db.session.scalars(select(Link.user_id).where(Link.group_id == group_id)))


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def users(make_user):
    return [make_user(f"member{i}@example.com")["id"] for i in range(4)]


def test_create_group_with_members(api, users):
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering",
            "externalId": "okta-g1", "members": [{"value": users[0]}, {"value": users[1], "display": "x"}]}
    response = api.post("/Groups", json=body)
    assert response.status_code == 201
    group = response.json
    assert response.headers["Location"] == group["meta"]["location"]
    assert group["displayName"] == "Engineering" and group["externalId"] == "okta-g1"
    assert {m["value"] for m in group["members"]} == {users[0], users[1]}
    member = next(m for m in group["members"] if m["value"] == users[0])
    assert member == {"value": users[0], "$ref": f"http://localhost/scim/v2/Users/{users[0]}",
                      "display": "Barbara Jensen", "type": "User"}
    assert link_rows(group["id"]) == {users[0], users[1]}


def test_create_group_with_an_unknown_member_is_400_and_creates_nothing(api, users):
    body = {"displayName": "Bad", "members": [{"value": users[0]}, {"value": "no-such-user"}]}
    response = api.post("/Groups", json=body)
    assert response.status_code == 400 and "no-such-user" in response.json["detail"]
    assert count(Group) == 0 and count(Link) == 0


def test_create_group_without_display_name_is_400(api):
    response = api.post("/Groups", json={"members": []})
    assert response.status_code == 400 and response.json["scimType"] == "invalidValue"


def test_get_group_and_excluded_members(api, make_group, users):
    group = make_group("Readers", members=users[:2])
    assert len(api.get(f"/Groups/{group['id']}").json["members"]) == 2
    body = api.get(f"/Groups/{group['id']}?excludedAttributes=members").json
    assert "members" not in body and body["displayName"] == "Readers"
    listed = api.get("/Groups?excludedAttributes=members").json["Resources"][0]
    assert "members" not in listed


def test_user_groups_attribute_reflects_the_link_table(api, make_group, users):
    group = make_group("Team", members=[users[0]])
    groups = api.get(f"/Users/{users[0]}").json["groups"]
    assert groups == [{"value": group["id"], "$ref": f"http://localhost/scim/v2/Groups/{group['id']}",
                       "display": "Team", "type": "direct"}]
    assert "groups" not in api.get(f"/Users/{users[1]}").json


def test_put_replaces_name_and_the_whole_membership(api, make_group, users):
    group = make_group("Old", members=users[:2])
    response = api.put(f"/Groups/{group['id']}", json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": group["id"],
        "displayName": "New", "members": [{"value": users[1]}, {"value": users[2]}]})
    assert response.status_code == 200 and response.json["displayName"] == "New"
    assert link_rows(group["id"]) == {users[1], users[2]}


def test_patch_add_is_idempotent(api, make_group, users):
    group = make_group("G", members=[users[0]])
    operation = {"op": "add", "path": "members", "value": [{"value": users[0]}, {"value": users[1]}]}
    for _ in range(2):
        assert api.patch(f"/Groups/{group['id']}", json=patch_body(operation)).status_code == 204
    assert link_rows(group["id"]) == {users[0], users[1]}
    assert count(Link) == 2


def test_remove_member_by_value_filter_keeps_the_others(api, make_group, users):
    group = make_group("G", members=users)
    response = api.patch(f"/Groups/{group['id']}", json=patch_body(
        {"op": "remove", "path": f'members[value eq "{users[1]}"]'}))
    assert response.status_code == 204
    assert link_rows(group["id"]) == {users[0], users[2], users[3]}


def test_remove_members_by_a_compound_filter(api, make_group, users):
    group = make_group("G", members=users)
    api.patch(f"/Groups/{group['id']}", json=patch_body(
        {"op": "remove", "path": f'members[value eq "{users[0]}" or value eq "{users[3]}"]'}))
    assert link_rows(group["id"]) == {users[1], users[2]}
    api.patch(f"/Groups/{group['id']}", json=patch_body(
        {"op": "remove", "path": f'members[not (value eq "{users[1]}")]'}))
    assert link_rows(group["id"]) == {users[1]}


def test_entra_remove_with_a_value_list_removes_just_those(api, make_group, users):
    group = make_group("G", members=users)
    api.patch(f"/Groups/{group['id']}", json=patch_body(
        {"op": "Remove", "path": "members", "value": [{"value": users[2]}]}))
    assert link_rows(group["id"]) == {users[0], users[1], users[3]}


def test_remove_members_without_filter_empties_the_group(api, make_group, users):
    group = make_group("G", members=users)
    api.patch(f"/Groups/{group['id']}", json=patch_body({"op": "remove", "path": "members"}))
    assert link_rows(group["id"]) == set()
    assert count(User) == 4


def test_replace_members_sets_exactly_the_given_ones(api, make_group, users):
    group = make_group("G", members=users[:3])
    api.patch(f"/Groups/{group['id']}", json=patch_body(
        {"op": "replace", "path": "members", "value": [{"value": users[3]}]}))
    assert link_rows(group["id"]) == {users[3]}


def test_operations_apply_in_order(api, make_group, users):
    group = make_group("G", members=[users[0]])
    api.patch(f"/Groups/{group['id']}", json=patch_body(
        {"op": "add", "path": "members", "value": [{"value": users[1]}]},
        {"op": "remove", "path": f'members[value eq "{users[1]}"]'},
        {"op": "remove", "path": f'members[value eq "{users[0]}"]'},
        {"op": "add", "path": "members", "value": [{"value": users[0]}]}))
    assert link_rows(group["id"]) == {users[0]}


def test_patch_with_an_unknown_member_changes_nothing(api, make_group, users):
    group = make_group("Keep", members=[users[0]])
    response = api.patch(f"/Groups/{group['id']}", json=patch_body(
        {"op": "replace", "value": {"displayName": "Renamed"}},
        {"op": "remove", "path": f'members[value eq "{users[0]}"]'},
        {"op": "add", "path": "members", "value": [{"value": "ghost"}]}))
    assert response.status_code == 400
    db.session.expire_all()
    assert link_rows(group["id"]) == {users[0]}
    assert db.session.get(Group, group["id"]).display_name == "Keep"


@pytest.mark.parametrize("operation", [
    {"op": "replace", "value": {"id": "ignored", "displayName": "Renamed"}},   # Okta
    {"op": "replace", "path": "displayName", "value": "Renamed"},
    {"op": "Replace", "value": {"displayName": "Renamed"}},                   # Entra
])
def test_rename(api, make_group, users, operation):
    group = make_group("Before", members=[users[0]])
    response = api.patch(f"/Groups/{group['id']}", json=patch_body(operation))
    assert response.status_code == 204 and response.data == b""
    assert api.get(f"/Groups/{group['id']}").json["displayName"] == "Renamed"
    db.session.expire_all()
    assert db.session.get(Group, group["id"]).display_name == "Renamed"
    assert link_rows(group["id"]) == {users[0]}


def test_membership_change_bumps_the_group_version(api, make_group, users):
    group = make_group("V")
    response = api.patch(f"/Groups/{group['id']}", json=patch_body(
        {"op": "add", "path": "members", "value": [{"value": users[0]}]}))
    assert response.status_code == 204 and response.headers["ETag"] == 'W/"2"'
    assert api.get(f"/Groups/{group['id']}").json["meta"]["version"] == 'W/"2"'


def test_patch_answers_the_group_when_attributes_are_asked_for(api, make_group, users):
    group = make_group("Asked", members=users[:2])
    operation = {"op": "add", "path": "members", "value": [{"value": users[2]}]}
    without_members = api.patch(f"/Groups/{group['id']}?excludedAttributes=members", json=patch_body(operation))
    assert without_members.status_code == 200 and "members" not in without_members.json
    assert without_members.json["displayName"] == "Asked"
    only_members = api.patch(f"/Groups/{group['id']}?attributes=members", json=patch_body(operation))
    assert only_members.status_code == 200 and len(only_members.json["members"]) == 3


def test_nested_groups_are_refused(api, make_group):
    inner = make_group("Inner")
    response = api.post("/Groups", json={"displayName": "Outer",
                                         "members": [{"value": inner["id"], "type": "Group"}]})
    assert response.status_code == 400 and count(Group) == 1


def test_delete_group_removes_links_but_not_users(api, make_group, users):
    group = make_group("Doomed", members=users)
    assert api.delete(f"/Groups/{group['id']}").status_code == 204
    assert api.get(f"/Groups/{group['id']}").status_code == 404
    assert count(Link) == 0 and count(User) == 4


def test_delete_user_removes_its_memberships(api, make_group, users):
    group = make_group("Team", members=users[:2])
    api.delete(f"/Users/{users[0]}")
    assert link_rows(group["id"]) == {users[1]}
    assert [m["value"] for m in api.get(f"/Groups/{group['id']}").json["members"]] == [users[1]]


def test_membership_patch_statements_do_not_grow_with_the_member_count(api, make_group, make_user,
                                                                      count_statements):
    ids = [make_user(f"bulk{i}@example.com")["id"] for i in range(40)]
    group = make_group("Big")

    def add_then_remove(members):
        adding = patch_body({"op": "add", "path": "members", "value": [{"value": m} for m in members]})
        removing = patch_body(*({"op": "remove", "path": f'members[value eq "{m}"]'} for m in members))
        with count_statements() as added:
            assert api.patch(f"/Groups/{group['id']}?excludedAttributes=members", json=adding).status_code == 200
        with count_statements() as removed:
            assert api.patch(f"/Groups/{group['id']}?excludedAttributes=members", json=removing).status_code == 200
        return added.count, removed.count

    assert add_then_remove(ids[:2]) == add_then_remove(ids)
    assert link_rows(group["id"]) == set()
