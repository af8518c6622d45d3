"""Schema extensions: the enterprise User extension and custom ones declared in configuration."""

import pytest
from sqlalchemy import select

from models import User, db
from tests.conftest import user_body

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CUSTOM = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def patch(api, user_id, *operations):
    response = api.patch(f"/Users/{user_id}", json={"schemas": [PATCH], "Operations": list(operations)})
    assert response.status_code == 200, response.json
    return response.json


def test_enterprise_manager_comes_back_with_a_reference(api, make_user):
    boss = make_user("boss@example.com")
    user = make_user("report@example.com", **{ENTERPRISE: {"manager": {"value": boss["id"]}}})
    manager = api.get(f"/Users/{user['id']}").json[ENTERPRISE]["manager"]
    assert manager == {"value": boss["id"], "$ref": f"http://localhost/scim/v2/Users/{boss['id']}"}
    stored = db.session.scalar(select(User.data).where(User.id == user["id"]))
    assert stored[ENTERPRISE]["manager"] == {"value": boss["id"]}  # the reference is derived, not stored


def test_enterprise_attributes_by_urn_path(api, make_user):
    user = make_user("ent@example.com")
    body = patch(api, user["id"],
                 {"op": "add", "path": f"{ENTERPRISE}:employeeNumber", "value": "42"},
                 {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": "someone"}})
    assert body[ENTERPRISE]["employeeNumber"] == "42" and ENTERPRISE in body["schemas"]
    body = patch(api, user["id"], {"op": "remove", "path": f"{ENTERPRISE}:employeeNumber"})
    assert "employeeNumber" not in body[ENTERPRISE]


def test_undeclared_custom_extension_is_not_stored(api):
    created = api.post("/Users", json=user_body("plain@example.com", **{CUSTOM: {"costCode": "7"}})).json
    assert CUSTOM not in created and created["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]


@pytest.fixture
def acme(app):
    app.config["SCIM_USER_EXTENSIONS"] = (CUSTOM,)


def test_declared_custom_extension_is_stored_and_returned_as_sent(api, acme):
    extension = {"costCode": "7", "badge": {"color": "blue"}, "tags": ["a", "b"], "remote": True}
    body = user_body("okta@example.com", **{CUSTOM: extension})
    body["schemas"].append(CUSTOM)
    created = api.post("/Users", json=body).json
    assert created[CUSTOM] == extension and CUSTOM in created["schemas"]
    assert api.get(f"/Users/{created['id']}").json[CUSTOM] == extension


def test_custom_extension_patch_filter_and_discovery(api, acme):
    user = api.post("/Users", json=user_body("p@example.com", **{CUSTOM: {"costCode": "7"}})).json
    body = patch(api, user["id"], {"op": "replace", "path": f"{CUSTOM}:costCode", "value": "8"},
                 {"op": "replace", "value": {f"{CUSTOM}:floor": "3"}})
    assert body[CUSTOM] == {"costCode": "8", "floor": "3"}
    found = api.get(f'/Users?filter={CUSTOM}:costCode eq "8"').json
    assert found["totalResults"] == 1
    extensions = api.get("/ResourceTypes/User").json["schemaExtensions"]
    assert {"schema": CUSTOM, "required": False} in extensions


def test_group_names_are_unique_regardless_of_case(api, make_group):
    make_group("Sales")
    response = api.post("/Groups", json={"displayName": "SALES"})
    assert response.status_code == 409 and response.json["scimType"] == "uniqueness"
    other = make_group("Support")
    renamed = api.patch(f"/Groups/{other['id']}", json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "displayName", "value": "sales"}]})
    assert renamed.status_code == 409


def test_declared_custom_extension_is_listed_in_schemas(api, acme):
    schema = api.get(f"/Schemas/{CUSTOM}")
    assert schema.status_code == 200
    assert schema.json["id"] == CUSTOM and schema.json["attributes"] == []
    assert CUSTOM in [s["id"] for s in api.get("/Schemas").json["Resources"]]
