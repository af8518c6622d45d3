"""/Users: create, read, replace, patch and delete, with the rows they leave in the database."""

import pytest
from sqlalchemy import func, select

from models import DEFAULT_TENANT_ID, User, UserEmail, db
from tests.conftest import user_body

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def patch_body(*operations):
    return {"schemas": [PATCH], "Operations": list(operations)}


def row(user_id):
    db.session.expire_all()
    return db.session.get(User, user_id)


def count_users():
    return db.session.scalar(select(func.count()).select_from(User))


def test_create_returns_201_location_and_the_full_user(api):
    response = api.post("/Users", json=user_body("bjensen@example.com", externalId="00u1", locale="en-US"))
    assert response.status_code == 201
    body = response.json
    assert response.headers["Location"] == body["meta"]["location"] == f"http://localhost/scim/v2/Users/{body['id']}"
    assert response.headers["Content-Type"] == "application/scim+json"
    assert response.headers["ETag"] == body["meta"]["version"]
    assert body["userName"] == "bjensen@example.com"
    assert body["name"] == {"givenName": "Barbara", "familyName": "Jensen"}
    assert body["emails"] == [{"primary": True, "value": "bjensen@example.com", "type": "work"}]
    assert body["active"] is True and body["externalId"] == "00u1" and body["locale"] == "en-US"
    assert body["meta"]["resourceType"] == "User"
    stored = row(body["id"])
    assert (stored.user_name, stored.given_name, stored.family_name, stored.external_id) == (
        "bjensen@example.com", "Barbara", "Jensen", "00u1")
    assert len(body["id"]) == 36 and body["id"].count("-") == 4  # a UUID


def test_create_accepts_reserved_email_domains_like_okta_local(api):
    response = api.post("/Users", json=user_body("test.user@okta.local"))
    assert response.status_code == 201
    assert response.json["emails"][0]["value"] == "test.user@okta.local"


def test_duplicate_username_in_any_case_is_409_uniqueness(api, make_user):
    make_user("bjensen@example.com")
    response = api.post("/Users", json=user_body("BJENSEN@Example.COM"))
    assert response.status_code == 409
    assert response.json["scimType"] == "uniqueness"
    assert response.json["status"] == "409"
    assert count_users() == 1


def test_database_refuses_usernames_differing_only_in_case(app):
    # The unique index on lower(user_name) holds even for writes that bypass the API's checks.
    from sqlalchemy.exc import IntegrityError
    db.session.add(User(tenant_id=DEFAULT_TENANT_ID, user_name="Same@Example.com", data={}))
    db.session.commit()
    db.session.add(User(tenant_id=DEFAULT_TENANT_ID, user_name="same@example.COM", data={}))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert count_users() == 1


def test_password_is_stored_hashed_and_never_returned(api):
    response = api.post("/Users", json=user_body("pw@example.com", password="S3cret!pass"))
    assert "password" not in response.json
    stored = row(response.json["id"])
    assert stored.password_hash and "S3cret!pass" not in stored.password_hash
    assert "password" not in stored.data
    assert "password" not in api.get(f"/Users/{response.json['id']}").json


def test_read_only_attributes_in_a_create_body_are_ignored(api):
    body = user_body("ro@example.com", id="my-own-id", groups=[{"value": "g1"}],
                     meta={"resourceType": "User", "created": "2001-01-01T00:00:00Z"})
    response = api.post("/Users", json=body)
    assert response.status_code == 201
    assert response.json["id"] != "my-own-id"
    assert "groups" not in response.json
    assert not response.json["meta"]["created"].startswith("2001")


def test_enterprise_extension_is_stored_and_returned(api):
    body = user_body("ent@example.com", **{ENTERPRISE: {"employeeNumber": "701984", "department": "Tour",
                                                         "manager": {"value": "boss-id"}}})
    body["schemas"].append(ENTERPRISE)
    response = api.post("/Users", json=body)
    assert response.json[ENTERPRISE] == {"employeeNumber": "701984", "department": "Tour", "manager": {
        "value": "boss-id", "$ref": "http://localhost/scim/v2/Users/boss-id"}}
    assert ENTERPRISE in response.json["schemas"]


@pytest.mark.parametrize("body, detail", [
    ({"name": {"givenName": "x"}}, "userName is required"),
    ({"userName": ""}, "userName is required"),
    ({"userName": 42}, "userName must be a string"),
    ({"userName": "x@example.com", "active": "maybe"}, "active must be a boolean"),
    ({"userName": "x@example.com", "emails": {"value": "x"}}, "emails must be an array"),
    ({"userName": "x@example.com", "name": "Barbara"}, "name must be an object"),
])
def test_invalid_create_body_is_400_and_creates_nothing(api, body, detail):
    response = api.post("/Users", json=body)
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidValue"
    assert detail in response.json["detail"]
    assert count_users() == 0


def test_entra_boolean_strings_are_accepted(api):
    response = api.post("/Users", json=user_body("entra@example.com", active="False"))
    assert response.status_code == 201 and response.json["active"] is False
    assert row(response.json["id"]).active is False


def test_get_unknown_user_is_404_scim_error(api):
    response = api.get("/Users/010101001010101011001010101011")
    assert response.status_code == 404
    assert response.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert response.json["status"] == "404" and response.json["detail"]


def test_put_replaces_the_user_and_ignores_read_only_attributes(api, make_user):
    user = make_user("put@example.com", title="Engineer", nickName="Babs")
    body = dict(user)
    body.update(id="another-id", groups=[{"value": "x"}], meta={"version": 'W/"99"'}, title=None)
    body.pop("nickName")
    body["name"] = {"givenName": "Barb", "familyName": "Jensen"}
    response = api.put(f"/Users/{user['id']}", json=body)
    assert response.status_code == 200
    assert response.json["id"] == user["id"]
    assert response.json["name"]["givenName"] == "Barb"
    assert "title" not in response.json and "nickName" not in response.json  # omitted: cleared
    assert response.json["meta"]["version"] == 'W/"2"'
    stored = row(user["id"])
    assert stored.given_name == "Barb" and "title" not in stored.data


def test_put_keeps_the_password_when_the_body_has_none(api):
    created = api.post("/Users", json=user_body("keep@example.com", password="first-pass")).json
    before = row(created["id"]).password_hash
    api.put(f"/Users/{created['id']}", json=user_body("keep@example.com", given="Other"))
    assert row(created["id"]).password_hash == before


def test_put_without_active_keeps_the_account_state(api, make_user):
    user = make_user("off@example.com", active=False)
    body = user_body("off@example.com")
    body.pop("active")
    assert api.put(f"/Users/{user['id']}", json=body).json["active"] is False
    assert row(user["id"]).active is False


def test_put_with_active_false_deactivates(api, make_user):
    user = make_user("aiw@example.com")
    response = api.put(f"/Users/{user['id']}", json=user_body("aiw@example.com", active=False))
    assert response.json["active"] is False
    assert row(user["id"]).active is False


def test_put_to_an_existing_username_is_409(api, make_user):
    make_user("one@example.com")
    two = make_user("two@example.com")
    response = api.put(f"/Users/{two['id']}", json=user_body("ONE@example.com"))
    assert response.status_code == 409
    assert row(two["id"]).user_name == "two@example.com"


@pytest.mark.parametrize("active", [False, True])
def test_okta_pathless_patch_sets_active(api, make_user, active):
    user = make_user("okta@example.com", active=not active)
    response = api.patch(f"/Users/{user['id']}",
                         json=patch_body({"op": "replace", "value": {"active": active}}))
    assert response.status_code == 200
    assert response.json["active"] is active
    assert row(user["id"]).active is active


def test_okta_password_patch_changes_the_hash_only(api):
    created = api.post("/Users", json=user_body("sync@example.com", password="old-pass")).json
    before = row(created["id"]).password_hash
    response = api.patch(f"/Users/{created['id']}",
                         json=patch_body({"op": "replace", "value": {"password": "new-pass"}}))
    assert response.status_code == 200 and "password" not in response.json
    after = row(created["id"])
    assert after.password_hash != before and "new-pass" not in after.password_hash


@pytest.mark.parametrize("operation, attribute, expected", [
    ({"op": "replace", "path": "title", "value": "Boss"}, "title", "Boss"),
    ({"op": "add", "path": "nickName", "value": "Babs"}, "nickName", "Babs"),
    ({"op": "remove", "path": "displayName"}, "displayName", None),
    ({"op": "Replace", "path": "active", "value": "False"}, "active", False),
    ({"op": "replace", "path": "name.givenName", "value": "Barb"}, "name",
     {"givenName": "Barb", "familyName": "Jensen"}),
    ({"op": "remove", "path": "name.familyName"}, "name", {"givenName": "Barbara"}),
])
def test_patch_simple_attributes_by_path(api, make_user, operation, attribute, expected):
    user = make_user("path@example.com")
    response = api.patch(f"/Users/{user['id']}", json=patch_body(operation))
    assert response.status_code == 200, response.json
    assert response.json.get(attribute) == expected
    assert api.get(f"/Users/{user['id']}").json.get(attribute) == expected


def test_patch_work_email_by_value_filter(api, make_user):
    user = make_user("mail@example.com")
    response = api.patch(f"/Users/{user['id']}", json=patch_body(
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@example.com"}))
    assert response.json["emails"] == [{"primary": True, "value": "new@example.com", "type": "work"}]
    found = api.get('/Users?filter=emails.value eq "new@example.com"').json
    assert found["totalResults"] == 1
    assert db.session.scalars(select(UserEmail.value).where(UserEmail.user_id == user["id"])).all() == [
        "new@example.com"]


@pytest.mark.parametrize("operation, status, scim_type", [
    ({"op": "remove"}, 400, "noTarget"),
    ({"op": "replace", "path": "noSuchAttribute", "value": "x"}, 400, "invalidPath"),
    ({"op": "replace", "path": "id", "value": "x"}, 400, "mutability"),
    ({"op": "jump", "path": "title", "value": "x"}, 400, "invalidSyntax"),
    ({"op": "replace", "path": "active", "value": "perhaps"}, 400, "invalidValue"),
    ({"op": "remove", "path": "userName"}, 400, "invalidValue"),
    ({"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "x"}}, 400, "noTarget"),
])
def test_bad_patch_is_a_scim_error_and_changes_nothing(api, make_user, operation, status, scim_type):
    user = make_user("bad@example.com", title="Same")
    response = api.patch(f"/Users/{user['id']}", json=patch_body(
        {"op": "replace", "path": "title", "value": "Changed"}, operation))
    assert response.status_code == status
    assert response.json["scimType"] == scim_type
    stored = row(user["id"])
    assert stored.data["title"] == "Same" and stored.version == 1


def test_patch_without_operations_is_400(api, make_user):
    user = make_user("empty@example.com")
    response = api.patch(f"/Users/{user['id']}", json={"schemas": [PATCH], "Operations": []})
    assert response.status_code == 400 and response.json["scimType"] == "invalidSyntax"


def test_deactivated_user_stays_readable_and_filterable(api, make_user):
    user = make_user("gone@example.com")
    api.patch(f"/Users/{user['id']}", json=patch_body({"op": "replace", "value": {"active": False}}))
    assert api.get(f"/Users/{user['id']}").json["active"] is False
    listed = api.get('/Users?filter=userName eq "gone@example.com"').json
    assert listed["totalResults"] == 1 and listed["Resources"][0]["active"] is False


def test_delete_is_204_then_404_for_every_operation(api, make_user):
    user = make_user("del@example.com")
    assert api.delete(f"/Users/{user['id']}").status_code == 204
    assert row(user["id"]) is None
    assert db.session.scalar(select(func.count()).select_from(UserEmail)) == 0
    path = f"/Users/{user['id']}"
    assert api.get(path).status_code == 404
    assert api.put(path, json=user_body("del@example.com")).status_code == 404
    assert api.patch(path, json=patch_body({"op": "replace", "value": {"active": False}})).status_code == 404
    assert api.delete(path).status_code == 404


def emails_of(user_id):
    db.session.expire_all()
    return db.session.execute(select(UserEmail.value, UserEmail.type, UserEmail.is_primary)
                              .where(UserEmail.user_id == user_id).order_by(UserEmail.id)).all()


def test_put_with_other_emails_rewrites_them_and_filters_find_the_new_ones(api, make_user):
    user = make_user("moving@example.com")
    body = user_body("moving@example.com", emails=[{"value": "new@example.com", "type": "home", "primary": True}])
    response = api.put(f"/Users/{user['id']}", json=body)
    assert response.status_code == 200 and response.json["meta"]["version"] == 'W/"2"'
    assert emails_of(user["id"]) == [("new@example.com", "home", True)]
    found = api.get('/Users?filter=emails.value eq "new@example.com"').json["Resources"]
    assert [u["id"] for u in found] == [user["id"]]
    assert api.get('/Users?filter=emails.value eq "moving@example.com"').json["totalResults"] == 0


@pytest.mark.parametrize("body", [
    user_body("same@example.com", given="Other"),  # the same emails: one UPDATE, the emails table untouched
    user_body("same@example.com", emails=[{"value": "same@example.com", "type": "home"}]),  # other emails
])
def test_put_keeps_the_emails_table_equal_to_the_emails(api, make_user, body):
    user = make_user("same@example.com")
    assert api.put(f"/Users/{user['id']}", json=body).status_code == 200
    assert emails_of(user["id"]) == [(e["value"], e["type"], bool(e.get("primary"))) for e in body["emails"]]


@pytest.mark.parametrize("method, body", [
    ("put", {"userName": ""}),
    ("put", user_body("x" * 300 + "@example.com")),  # refused by the size check of the data layer
    ("patch", {"Operations": []}),
    ("patch", patch_body({"op": "replace", "path": "active", "value": "maybe"})),
])
@pytest.mark.parametrize("missing, status", [(True, 404), (False, 412)])
def test_a_missing_user_or_a_stale_if_match_is_answered_before_a_bad_body(api, make_user, method, body, missing,
                                                                         status):
    user = make_user("first@example.com")
    if missing:
        api.delete(f"/Users/{user['id']}")
    response = getattr(api, method)(f"/Users/{user['id']}", json=body, headers={"If-Match": 'W/"7"'})
    assert response.status_code == status


@pytest.mark.parametrize("operations, active", [
    ([{"op": "replace", "value": {"active": False}}], False),  # Okta
    ([{"op": "Replace", "path": "active", "value": "False"}], False),  # Entra ID
    ([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:active", "value": False}], False),
    ([{"op": "remove", "path": "active"}], False),  # unassigned: not active
    ([{"op": "replace", "path": "active", "value": None}], False),
    ([{"op": "replace", "value": {"active": False}}, {"op": "replace", "path": "active", "value": "true"}], True),
])
def test_a_deactivation_changes_active_and_the_version_only(api, make_user, operations, active):
    user = make_user("deactivated@example.com", active=not active, title="Engineer")
    response = api.patch(f"/Users/{user['id']}", json=patch_body(*operations))
    assert response.status_code == 200
    assert response.json == {**user, "active": active, "meta": {
        **user["meta"], "version": 'W/"2"', "lastModified": response.json["meta"]["lastModified"]}}
    assert response.json["meta"]["lastModified"] > user["meta"]["lastModified"]
    stored = row(user["id"])
    assert (stored.active, stored.version, stored.data) == (active, 2, {k: v for k, v in user.items() if k not in (
        "id", "meta", "schemas", "active")})


# The writes Okta and Entra ID send most take a fixed number of statements (BEGIN and COMMIT not counted):
# on PostgreSQL the write itself (which also asks for the durable commit, and reads the row it replaces for
# the events) and the audit row with the events; behind PgBouncer first the transaction's session state; on
# SQLite BEGIN IMMEDIATE, the user as it was (not for a create), the write, the user's groups (or the
# emails), the events and the audit row.
DEACTIVATE_OKTA = patch_body({"op": "replace", "value": {"active": False}})
DEACTIVATE_ENTRA = patch_body({"op": "Replace", "path": "active", "value": "False"})
STATEMENTS = {"postgresql": 2, "pgbouncer": 3, "sqlite": 6}


@pytest.mark.parametrize("method, body", [
    ("post", user_body("fresh@example.com", externalId="00u2", locale="en-US")),
    ("put", user_body("counted@example.com", given="Changed", externalId="00u1")),
    ("patch", DEACTIVATE_OKTA),
    ("patch", DEACTIVATE_ENTRA),
])
@pytest.mark.parametrize("if_match", [None, 'W/"1"'])
def test_the_writes_idps_send_most_take_a_fixed_number_of_statements(api, make_user, count_statements, method,
                                                                     body, if_match):
    from tests.conftest import BACKEND
    user = make_user("counted@example.com", externalId="00u1")
    path = "/Users" if method == "post" else f"/Users/{user['id']}"
    with count_statements() as counted:
        response = getattr(api, method)(path, json=body, headers={"If-Match": if_match} if if_match else {})
    assert response.status_code in (200, 201), response.json
    assert counted.count == STATEMENTS[BACKEND] - (method == "post" and BACKEND == "sqlite")
