"""Okta replayed: its SCIM 2.0 test suites and provisioning traffic, with Okta's own bodies and headers.

What Okta sends is described in docs/idp-behaviour.md:
- #okta-the-spec-test-suite: the Runscope "SCIM 2.0 SPEC Test", all 12 steps in order, with its headers;
- #okta-the-crud-test-suite: the SCIM side of the "CRUD Test": assign, profile update, deactivate, reactivate
  (and password sync);
- #okta-requests-action-by-action: group push (create, link, membership deltas, rename, full push, unlink)
  and import (/Users and /Groups paged the way Okta walks them).
"""

import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from models import Group, Link, User, db

# Each replay runs on the default tenant and again on a second one (tests/conftest.py).
ON_EVERY_TENANT = True
# Every change a test makes arrives at a webhook as the right events, signed (docs/events.md).
pytestmark = pytest.mark.usefixtures("events_match_the_directory")
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

OKTA_AGENT = "Okta SCIM Client 1.0.0"
# What the SPEC suite sends with every request, besides Authorization
# (docs/idp-behaviour.md#okta-headers-and-general-rules).
OKTA_HEADERS = {
    "Accept": "application/scim+json",
    "Accept-Charset": "utf-8",
    "Content-Type": "application/scim+json; charset=utf-8",
    "User-Agent": OKTA_AGENT,
}
# The suite's create steps (6 and 8) send plain JSON.
OKTA_POST_HEADERS = {
    "Accept": "application/scim+json; charset=utf-8",
    "Content-Type": "application/json",
    "User-Agent": OKTA_AGENT,
}


# Requests as Okta builds them

def query(**params) -> str:
    """A query string encoded the way Okta sends it: spaces as %20, quotes as %22, @ as %40."""
    return "?" + urlencode(params, quote_via=quote)


def find_users(api, user_name: str, headers=OKTA_HEADERS, **paging):
    return api.get("/Users" + query(filter=f'userName eq "{user_name}"', **paging), headers=headers)


def find_groups(api, display_name: str):
    return api.get("/Groups" + query(filter=f'displayName eq "{display_name}"'), headers=OKTA_HEADERS)


def patch_op(*operations) -> dict:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def okta_user_body(email: str, given="Test", family="User", password="1mz050nq", okta_id="00u1abcd") -> dict:
    """Okta's create body on assignment: everything in its profile mapping, groups [] and a password.

    docs/idp-behaviour.md#okta-requests-action-by-action
    """
    return {
        "schemas": [USER_SCHEMA],
        "userName": email,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": okta_id,
        "groups": [],
        "password": password,
        "active": True,
    }


def expect(response, status: int, what: str):
    """The JSON body after checking the status; the message names the step and shows the answer."""
    assert response.status_code == status, (
        f"{what}: expected {status}, got {response.status_code}: {response.get_data(as_text=True)}")
    return response.get_json()


def expect_error(response, status: int, what: str) -> dict:
    """RFC 7644 §3.12 error body, with `status` as a string as the SPEC suite compares it."""
    body = expect(response, status, what)
    assert ERROR_SCHEMA in body["schemas"], f"{what}: no Error schema in {body}"
    assert body.get("detail"), f"{what}: empty detail in {body}"
    assert body.get("status") == str(status), f"{what}: status must be the string {str(status)!r}: {body}"
    return body


def expect_list(response, what: str) -> dict:
    body = expect(response, 200, what)
    assert LIST_SCHEMA in body["schemas"], f"{what}: no ListResponse schema in {body}"
    for key in ("totalResults", "startIndex", "itemsPerPage"):
        assert type(body[key]) is int, f"{what}: {key} must be a JSON integer, got {body[key]!r}"
    return body


# Rows, read after the requests committed them in their own sessions

def fresh_session() -> None:
    db.session.rollback()  # forget what this session cached; read what the requests committed


def user_row(user_id: str) -> User | None:
    fresh_session()
    return db.session.get(User, user_id)


def group_row(group_id: str) -> Group | None:
    fresh_session()
    return db.session.get(Group, group_id)


def link_rows(group_id: str | None = None) -> set[tuple[str, str]]:
    fresh_session()
    stmt = select(Link.group_id, Link.user_id)
    if group_id is not None:
        stmt = stmt.where(Link.group_id == group_id)
    return {tuple(row) for row in db.session.execute(stmt)}


def users_named(user_name: str) -> list[User]:
    fresh_session()
    return list(db.session.scalars(select(User).where(func.lower(User.user_name) == user_name.lower())))


# 1. The SCIM 2.0 SPEC Test (docs/idp-behaviour.md#okta-the-spec-test-suite)

@dataclass
class SpecRun:
    """The suite's "Initial Script" variables, and the ones its steps save."""

    api: object
    given: str = "Runscope300"
    family: str = "Hfluaklab151"
    user_name: str = "Runscope300Hfluaklab151@example.com"  # randomUsername = randomEmail
    user_name_caps: str = "RUNSCOPE300HFLUAKLAB151@example.com"
    invalid_user_email: str = "abcdefgh@example.com"
    missing_user_id: str = "010101001010101011001010101011"
    isv_user_id: str = ""
    id_user_one: str = ""

    def create_body(self) -> dict:
        return {
            "schemas": [USER_SCHEMA],
            "userName": self.user_name,
            "name": {"givenName": self.given, "familyName": self.family},
            "emails": [{"primary": True, "value": self.user_name, "type": "work"}],
            "displayName": f"{self.given} {self.family}",
            "active": True,
        }


def assert_core_user(user: dict, what: str) -> None:
    for path in ("id", "userName"):
        assert user.get(path), f"{what}: empty {path} in {user}"
    assert user.get("name", {}).get("familyName"), f"{what}: empty name.familyName in {user}"
    assert user.get("name", {}).get("givenName"), f"{what}: empty name.givenName in {user}"
    assert isinstance(user.get("active"), bool), f"{what}: active missing or not a boolean in {user}"
    assert user.get("emails") and user["emails"][0].get("value"), f"{what}: empty emails[0].value in {user}"


def step_01_users_endpoint(run: SpecRun) -> None:
    what = "step 1 (Test Users endpoint)"
    body = expect_list(run.api.get("/Users?count=1&startIndex=1", headers=OKTA_HEADERS), what)
    assert body["Resources"], f"{what}: Resources is empty although a user exists"
    assert body["itemsPerPage"] == 1 and body["startIndex"] == 1, f"{what}: {body}"
    assert_core_user(body["Resources"][0], what)
    run.isv_user_id = body["Resources"][0]["id"]


def step_02_get_user_by_id(run: SpecRun) -> None:
    what = "step 2 (Get Users/{{id}})"
    body = expect(run.api.get(f"/Users/{run.isv_user_id}", headers=OKTA_HEADERS), 200, what)
    assert_core_user(body, what)
    assert body["id"] == run.isv_user_id, f"{what}: id {body['id']} != {run.isv_user_id}"


def step_03_invalid_user_by_username(run: SpecRun) -> None:
    what = "step 3 (Test invalid User by username)"
    body = expect_list(find_users(run.api, run.invalid_user_email), what)
    assert body["totalResults"] == 0, f"{what}: {body}"


def step_04_invalid_user_by_id(run: SpecRun) -> None:
    what = "step 4 (Test invalid User by ID)"
    expect_error(run.api.get(f"/Users/{run.missing_user_id}", headers=OKTA_HEADERS), 404, what)


def step_05_random_user_does_not_exist(run: SpecRun) -> None:
    what = "step 5 (Make sure random user doesn't exist)"
    body = expect_list(find_users(run.api, run.user_name), what)
    assert body["totalResults"] == 0, f"{what}: {body}"


def step_06_create_user(run: SpecRun) -> None:
    what = "step 6 (Create Okta user with realistic values)"
    body = expect(run.api.post("/Users", json=run.create_body(), headers=OKTA_POST_HEADERS), 201, what)
    assert body["active"] is True and body["id"], f"{what}: {body}"
    assert body["name"] == {"givenName": run.given, "familyName": run.family}, f"{what}: {body}"
    assert USER_SCHEMA in body["schemas"] and body["userName"] == run.user_name, f"{what}: {body}"
    assert body["emails"][0]["value"] == run.user_name, f"{what}: {body}"
    run.id_user_one = body["id"]
    row = user_row(run.id_user_one)
    assert row is not None and row.user_name == run.user_name and row.active, f"{what}: row {row}"


def step_07_verify_user_created(run: SpecRun) -> None:
    what = "step 7 (Verify that user was created)"
    body = expect(run.api.get(f"/Users/{run.id_user_one}", headers=OKTA_HEADERS), 200, what)
    assert body["userName"] == run.user_name, f"{what}: {body}"
    assert body["name"]["familyName"] == run.family and body["name"]["givenName"] == run.given, f"{what}: {body}"


def step_08_recreate_is_409(run: SpecRun) -> None:
    what = "step 8 (Expect failure when recreating user with same values)"
    response = run.api.post("/Users", json=run.create_body(), headers=OKTA_POST_HEADERS)
    expect_error(response, 409, what)
    assert len(users_named(run.user_name)) == 1, f"{what}: a second row was stored"


def step_09_username_case_insensitive(run: SpecRun) -> None:
    what = "step 9 (Username Case Sensitivity Check)"
    body = expect_list(find_users(run.api, run.user_name_caps), what)
    # RFC 7643 §4.1.1: userName is caseExact false, so the CAPS variant finds the user just created.
    assert body["totalResults"] == 1, f"{what}: {body}"
    assert body["Resources"][0]["id"] == run.id_user_one, f"{what}: {body}"


def step_10_groups_endpoint(run: SpecRun) -> None:
    what = "step 10 (Verify Groups endpoint)"
    started = time.perf_counter()
    response = run.api.get("/Groups", headers=OKTA_HEADERS)
    elapsed_ms = (time.perf_counter() - started) * 1000
    body = expect_list(response, what)
    assert elapsed_ms < 600, f"{what}: took {elapsed_ms:.0f} ms"
    if body["totalResults"] >= 1:
        assert isinstance(body.get("Resources"), list), f"{what}: Resources is not an array: {body}"


def step_11_bad_token_is_401(run: SpecRun) -> None:
    what = "step 11 (Check status 401)"
    headers = {**OKTA_HEADERS, "Authorization": "non-token"}
    response = find_users(run.api, run.user_name_caps, headers=headers)
    expect_error(response, 401, what)
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), f"{what}: {response.headers}"


def step_12_missing_user_is_404(run: SpecRun) -> None:
    what = "step 12 (Check status 404)"
    expect_error(run.api.get("/Users/00919288221112222", headers=OKTA_HEADERS), 404, what)


SPEC_STEPS = [
    step_01_users_endpoint, step_02_get_user_by_id, step_03_invalid_user_by_username,
    step_04_invalid_user_by_id, step_05_random_user_does_not_exist, step_06_create_user,
    step_07_verify_user_created, step_08_recreate_is_409, step_09_username_case_insensitive,
    step_10_groups_endpoint, step_11_bad_token_is_401, step_12_missing_user_is_404,
]


def test_spec_suite_passes_every_step_in_order(api, make_user, make_group):
    make_user("existing.user@example.com")  # "At least one user must exist before the run"
    make_group("Existing Group")  # so that step 10's script checks Resources too
    run = SpecRun(api)
    for step in SPEC_STEPS:
        step(run)


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "non-token", "Bearer "])
def test_request_without_a_valid_bearer_token_is_401(client, authorization):
    headers = dict(OKTA_HEADERS)
    if authorization is not None:
        headers["Authorization"] = authorization
    response = client.get("/scim/v2/Users?startIndex=1&count=100", headers=headers)
    body = expect_error(response, 401, f"Authorization: {authorization!r}")
    assert "Resources" not in body
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


# 2. The CRUD Test (docs/idp-behaviour.md#okta-the-crud-test-suite):
#    the SCIM traffic behind assign, update, deactivate and reactivate

def assign_user(api, email: str) -> str:
    """Okta's "Assign user to the app": a lookup by userName (no match), then the create."""
    lookup = expect_list(find_users(api, email, startIndex=1, count=100), "assign: lookup")
    assert lookup["totalResults"] == 0, f"assign: lookup found {lookup}"
    body = expect(api.post("/Users", json=okta_user_body(email), headers=OKTA_HEADERS), 201, "assign: create")
    assert body["id"] and body["userName"] == email and body["active"] is True, body
    assert body["externalId"] == "00u1abcd" and body["locale"] == "en-US", body
    assert "password" not in body, f"assign: the password came back: {body}"
    row = user_row(body["id"])
    assert row.user_name == email and row.external_id == "00u1abcd" and row.active is True
    return body["id"]


def verify_found_by_filter(api, email: str, given: str, family: str, active: bool) -> None:
    body = expect_list(find_users(api, email), "verify by filter")
    assert body["totalResults"] == 1, body
    found = body["Resources"][0]
    assert found["userName"] == email and found["emails"][0]["value"] == email, found
    assert found["name"]["givenName"] == given and found["name"]["familyName"] == family, found
    assert found["active"] is active, found


def update_given_name(api, user_id: str, given: str) -> None:
    """Okta's profile update: GET the user, then PUT the whole object back with id, meta and groups []."""
    before = expect(api.get(f"/Users/{user_id}", headers=OKTA_HEADERS), 200, "update: read")
    sent = {**before, "name": {**before["name"], "givenName": given}, "groups": []}
    after = expect(api.put(f"/Users/{user_id}", json=sent, headers=OKTA_HEADERS), 200, "update: PUT")
    assert after["id"] == user_id and after["name"]["givenName"] == given, after
    assert after["userName"] == before["userName"] and after["emails"] == before["emails"], after
    assert after["meta"]["created"] == before["meta"]["created"], after
    assert after["meta"]["version"] != before["meta"]["version"], after
    assert user_row(user_id).given_name == given


def set_active(api, user_id: str, active: bool, what: str = "set active") -> None:
    """Deactivate / reactivate as OIN apps do: a PATCH without a path."""
    body = patch_op({"op": "replace", "value": {"active": active}})
    response = api.patch(f"/Users/{user_id}", json=body, headers=OKTA_HEADERS)
    assert response.status_code in (200, 204), f"{what}: {response.get_data(as_text=True)}"
    if response.status_code == 200:
        assert response.json["active"] is active, f"{what}: {response.json}"


def verify_active(api, user_id: str, email: str, active: bool, given: str) -> None:
    body = expect(api.get(f"/Users/{user_id}", headers=OKTA_HEADERS), 200, f"verify active={active}")
    assert body["active"] is active, body
    verify_found_by_filter(api, email, given, "User", active)  # a deactivated user is still found
    assert user_row(user_id).active is active


def test_crud_suite_assign_update_deactivate_reactivate(api):
    email = "crud.user@okta.local"
    user_id = assign_user(api, email)  # step 3
    verify_found_by_filter(api, email, "Test", "User", True)  # step 4
    update_given_name(api, user_id, "Another")  # step 5
    body = expect(api.get(f"/Users/{user_id}", headers=OKTA_HEADERS), 200, "step 6")
    assert body["name"]["givenName"] == "Another", body
    for step, active in (("7-8", False), ("9-11", True), ("12-13", False)):
        set_active(api, user_id, active, f"steps {step}")
        verify_active(api, user_id, email, active, "Another")


def test_password_sync_is_stored_hashed_and_never_returned(api):
    user_id = assign_user(api, "password.user@okta.local")
    first_hash = user_row(user_id).password_hash
    assert first_hash and first_hash != "1mz050nq" and check_password_hash(first_hash, "1mz050nq")

    new_password = "N3w-s3cret!pw"
    response = api.patch(f"/Users/{user_id}", json=patch_op({"op": "replace", "value": {"password": new_password}}),
                         headers=OKTA_HEADERS)
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    fetched, listed = api.get(f"/Users/{user_id}"), find_users(api, "password.user@okta.local")
    for answer in (response, fetched, listed):
        assert new_password not in answer.get_data(as_text=True)
    for user in (response.get_json() or {}, fetched.json, listed.json["Resources"][0]):
        assert "password" not in user, user

    stored = user_row(user_id).password_hash
    assert stored != new_password and stored != first_hash
    assert check_password_hash(stored, new_password) and not check_password_hash(stored, "1mz050nq")


def test_aiw_put_with_active_false_deactivates(api):
    email = "aiw.user@okta.local"
    user_id = assign_user(api, email)
    current = expect(api.get(f"/Users/{user_id}", headers=OKTA_HEADERS), 200, "read")
    answer = expect(api.put(f"/Users/{user_id}", json={**current, "active": False}, headers=OKTA_HEADERS),
                    200, "AIW PUT active false")
    assert answer["active"] is False, answer
    verify_active(api, user_id, email, False, "Test")


def test_profile_put_with_empty_groups_keeps_memberships(api, make_group):
    user_id = assign_user(api, "member.user@okta.local")
    group = make_group("Engineering", members=[user_id])
    current = expect(api.get(f"/Users/{user_id}", headers=OKTA_HEADERS), 200, "read")
    expect(api.put(f"/Users/{user_id}", json={**current, "groups": []}, headers=OKTA_HEADERS), 200, "PUT")
    # RFC 7643: groups is readOnly; Okta's groups [] on PUT must not touch memberships.
    assert link_rows(group["id"]) == {(group["id"], user_id)}
    fetched = expect(api.get(f"/Users/{user_id}"), 200, "read back")
    assert [g["value"] for g in fetched.get("groups", [])] == [group["id"]], fetched


# 3. Group push (docs/idp-behaviour.md#okta-requests-action-by-action)

@pytest.fixture
def people(make_user):
    """Three users: (id, userName) each."""
    return [(u["id"], u["userName"]) for u in (make_user(f"{n}@okta.local") for n in ("ann", "bob", "cid"))]


def push_group(api, name: str) -> str:
    body = {"schemas": [GROUP_SCHEMA], "displayName": name, "members": []}
    created = expect(api.post("/Groups", json=body, headers=OKTA_HEADERS), 201, "group push: create")
    assert created["id"] and created["displayName"] == name and not created.get("members"), created
    return created["id"]


def patch_group(api, group_id: str, *operations) -> None:
    response = api.patch(f"/Groups/{group_id}", json=patch_op(*operations), headers=OKTA_HEADERS)
    assert response.status_code in (200, 204), response.get_data(as_text=True)


def add_op(*members: tuple[str, str]) -> dict:
    """Okta's member add: value and display (the userName), no type."""
    return {"op": "add", "path": "members", "value": [{"value": uid, "display": name} for uid, name in members]}


def remove_op(user_id: str) -> dict:
    return {"op": "remove", "path": f'members[value eq "{user_id}"]'}


def member_ids_of(api, group_id: str) -> set[str]:
    body = expect(api.get(f"/Groups/{group_id}", headers=OKTA_HEADERS), 200, "group read")
    return {m["value"] for m in body.get("members") or []}


def test_group_push_creates_an_empty_group(api):
    group_id = push_group(api, "Push Group")
    row = group_row(group_id)
    assert row is not None and row.display_name == "Push Group"
    assert link_rows(group_id) == set()


@pytest.mark.parametrize("asked", ["Push Group", "push group", "PUSH GROUP"])
def test_link_existing_group_by_display_name_ignores_case(api, asked):
    group_id = push_group(api, "Push Group")
    push_group(api, "Other Group")
    body = expect_list(find_groups(api, asked), "link existing")
    assert body["totalResults"] == 1 and [g["id"] for g in body["Resources"]] == [group_id], body


def test_membership_delta_removes_and_adds_in_one_request(api, people):
    ann, bob, _ = people
    group_id = push_group(api, "Delta")
    patch_group(api, group_id, add_op(ann))
    assert member_ids_of(api, group_id) == {ann[0]}

    patch_group(api, group_id, remove_op(ann[0]), add_op(bob))
    assert member_ids_of(api, group_id) == {bob[0]}
    assert link_rows(group_id) == {(group_id, bob[0])}


def test_adding_an_existing_member_again_does_not_duplicate_it(api, people):
    ann = people[0]
    group_id = push_group(api, "Retry")
    patch_group(api, group_id, add_op(ann))
    patch_group(api, group_id, add_op(ann))
    body = expect(api.get(f"/Groups/{group_id}"), 200, "group read")
    assert [m["value"] for m in body["members"]] == [ann[0]], body
    assert link_rows(group_id) == {(group_id, ann[0])}


def test_rename_with_id_in_value_keeps_id_and_members(api, people):
    ann = people[0]
    group_id = push_group(api, "Old Name")
    patch_group(api, group_id, add_op(ann))
    patch_group(api, group_id, {"op": "replace", "value": {"id": group_id, "displayName": "New Name"}})
    body = expect(api.get(f"/Groups/{group_id}"), 200, "group read")
    assert body["id"] == group_id and body["displayName"] == "New Name", body
    assert group_row(group_id).display_name == "New Name"
    assert link_rows(group_id) == {(group_id, ann[0])}
    assert expect_list(find_groups(api, "Old Name"), "old name")["totalResults"] == 0
    assert expect_list(find_groups(api, "New Name"), "new name")["totalResults"] == 1


def test_full_push_replaces_the_members(api, people):
    ann, bob, cid = people
    group_id = push_group(api, "Full Push")
    patch_group(api, group_id, add_op(ann, bob))
    full = [{"value": uid, "display": name} for uid, name in (bob, cid)]
    patch_group(api, group_id, {"op": "replace", "path": "members", "value": full})
    assert member_ids_of(api, group_id) == {bob[0], cid[0]}
    assert link_rows(group_id) == {(group_id, bob[0]), (group_id, cid[0])}


def test_aiw_put_replaces_name_and_members(api, people):
    ann, _, cid = people
    group_id = push_group(api, "AIW")
    patch_group(api, group_id, add_op(ann))
    body = {"schemas": [GROUP_SCHEMA], "id": group_id, "displayName": "AIW Renamed",
            "members": [{"value": cid[0], "display": cid[1]}]}
    answer = expect(api.put(f"/Groups/{group_id}", json=body, headers=OKTA_HEADERS), 200, "AIW PUT")
    assert answer["displayName"] == "AIW Renamed", answer
    assert [m["value"] for m in answer["members"]] == [cid[0]], answer
    assert link_rows(group_id) == {(group_id, cid[0])}


def test_user_groups_attribute_follows_membership(api, people):
    ann, bob, _ = people
    group_id = push_group(api, "Visible")
    patch_group(api, group_id, add_op(ann, bob))
    patch_group(api, group_id, remove_op(bob[0]))
    member = expect(api.get(f"/Users/{ann[0]}"), 200, "member read")
    assert [(g["value"], g["display"]) for g in member["groups"]] == [(group_id, "Visible")], member
    former = expect(api.get(f"/Users/{bob[0]}"), 200, "former member read")
    assert group_id not in [g["value"] for g in former.get("groups", [])], former


def test_excluded_attributes_members_omits_members(api, people):
    group_id = push_group(api, "Big")
    patch_group(api, group_id, add_op(*people))
    full = expect_list(api.get("/Groups", headers=OKTA_HEADERS), "list")
    assert len(full["Resources"][0]["members"]) == 3, full
    slim = expect_list(api.get("/Groups?excludedAttributes=members", headers=OKTA_HEADERS), "list slim")
    assert slim["totalResults"] == 1, slim
    group = slim["Resources"][0]
    assert "members" not in group and group["id"] == group_id and group["displayName"] == "Big", group


def test_delete_group_unlinks_members_and_keeps_users(api, people):
    group_id = push_group(api, "Doomed")
    patch_group(api, group_id, add_op(*people))
    response = api.delete(f"/Groups/{group_id}", headers=OKTA_HEADERS)
    assert response.status_code == 204 and response.get_data() == b"", response.get_data(as_text=True)
    expect_error(api.get(f"/Groups/{group_id}", headers=OKTA_HEADERS), 404, "read after delete")
    assert group_row(group_id) is None
    assert link_rows(group_id) == set()
    for user_id, _ in people:
        assert user_row(user_id) is not None
        user = expect(api.get(f"/Users/{user_id}"), 200, "user after group delete")
        assert not user.get("groups"), user


# 4. Import (docs/idp-behaviour.md#okta-requests-action-by-action):
#    startIndex=1, 1+count, ... while startIndex <= totalResults

def okta_import(api, resource: str, count: int) -> list[dict]:
    pages, start = [], 1
    while start <= (pages[-1]["totalResults"] if pages else 1):
        assert len(pages) < 100, "import does not end"
        response = api.get(f"/{resource}" + query(startIndex=start, count=count), headers=OKTA_HEADERS)
        pages.append(expect_list(response, f"import {resource} startIndex={start}"))
        start += count
    return pages


def assert_pages(pages: list[dict], total: int, count: int) -> list[str]:
    """Every page well-formed and counting everything; returns the ids in the order they came."""
    assert len(pages) == -(-total // count), f"{len(pages)} pages for {total} resources at {count} a page"
    ids = []
    for number, page in enumerate(pages):
        what = f"page {number + 1}"
        assert page["totalResults"] == total, f"{what}: totalResults {page['totalResults']}, not {total}"
        assert page["startIndex"] == 1 + number * count, f"{what}: startIndex {page['startIndex']}"
        expected_items = min(count, total - number * count)
        assert page["itemsPerPage"] == len(page["Resources"]) == expected_items, f"{what}: {page['itemsPerPage']}"
        ids.extend(r["id"] for r in page["Resources"])
    assert len(ids) == len(set(ids)) == total, "a resource came twice or not at all"
    return ids


def test_import_users_walks_every_page_once(api, make_user):
    for n in range(250):
        make_user(f"import.{n:03}@okta.local")
    first_id = api.get("/Users?count=1").json["Resources"][0]["id"]
    set_active(api, first_id, False)  # an import returns deactivated users too

    ids = assert_pages(okta_import(api, "Users", 100), total=250, count=100)
    fresh_session()
    assert set(ids) == set(db.session.scalars(select(User.id)))
    assert assert_pages(okta_import(api, "Users", 100), 250, 100) == ids, "order changed between walks"
    one_page = expect_list(api.get("/Users?startIndex=1&count=250"), "one page")
    assert [r["id"] for r in one_page["Resources"]] == ids, "order depends on count"


def test_import_groups_walks_every_page_once(api, make_group):
    created = [make_group(f"Import Group {n}")["id"] for n in range(3)]
    ids = assert_pages(okta_import(api, "Groups", 2), total=3, count=2)
    assert set(ids) == set(created)
    fresh_session()
    assert set(ids) == set(db.session.scalars(select(Group.id)))
    assert assert_pages(okta_import(api, "Groups", 2), 3, 2) == ids, "order changed between walks"
