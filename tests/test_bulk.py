"""POST /Bulk (RFC 7644 §3.7): bulkId references, per-operation results, failOnErrors and the limits."""

import json

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Group, Link, User, db
from tests.conftest import user_body

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def bulk(api, *operations, **extra):
    response = api.post("/Bulk", json={"schemas": [BULK], "Operations": list(operations), **extra})
    assert response.status_code == 200, response.json
    assert response.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"]
    return response.json["Operations"]


def count(model):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def test_create_user_and_group_referring_to_it_by_bulk_id(api):
    results = bulk(
        api,
        {"method": "POST", "path": "/Groups", "bulkId": "team",
         "data": {"displayName": "Tour Guides", "members": [{"value": "bulkId:alice"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "alice", "data": user_body("alice@example.com")},
    )
    assert [r["status"] for r in results] == ["201", "201"]
    group_id = results[0]["location"].rsplit("/", 1)[1]
    user_id = results[1]["location"].rsplit("/", 1)[1]
    assert results[0]["bulkId"] == "team" and results[0]["version"] == 'W/"1"'
    assert db.session.scalar(select(Link.user_id).where(Link.group_id == group_id)) == user_id


def test_every_method_with_per_operation_status(api, make_user):
    user = make_user("edit@example.com")
    doomed = make_user("doomed@example.com")
    results = bulk(
        api,
        {"method": "PUT", "path": f"/Users/{user['id']}", "data": user_body("edit@example.com", title="Chief")},
        {"method": "PATCH", "path": f"/Users/{user['id']}",
         "data": {"Operations": [{"op": "replace", "value": {"active": False}}]}},
        {"method": "DELETE", "path": f"/Users/{doomed['id']}"},
    )
    assert [r["status"] for r in results] == ["200", "200", "204"]
    assert results[1]["version"] == 'W/"3"'
    stored = db.session.get(User, user["id"])
    assert stored.data["title"] == "Chief" and stored.active is False
    assert db.session.get(User, doomed["id"]) is None


def test_a_failed_operation_leaves_the_others_applied(api, make_user):
    make_user("taken@example.com")
    results = bulk(
        api,
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": user_body("TAKEN@example.com")},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": user_body("free@example.com")},
        {"method": "DELETE", "path": "/Users/no-such-id"},
    )
    assert [r["status"] for r in results] == ["409", "201", "404"]
    assert results[0]["response"]["scimType"] == "uniqueness"
    assert count(User) == 2


def test_fail_on_errors_stops_processing(api):
    results = bulk(
        api,
        {"method": "DELETE", "path": "/Users/missing-1"},
        {"method": "DELETE", "path": "/Users/missing-2"},
        {"method": "POST", "path": "/Users", "bulkId": "never", "data": user_body("never@example.com")},
        failOnErrors=2,
    )
    assert [r["status"] for r in results] == ["404", "404"]
    assert count(User) == 0


def test_stale_version_in_an_operation_is_412(api, make_user):
    user = make_user("v@example.com")
    results = bulk(api, {"method": "PUT", "path": f"/Users/{user['id']}", "version": 'W/"9"',
                         "data": user_body("v@example.com", title="x")})
    assert results[0]["status"] == "412"


def test_circular_references_are_409_invalid_value(api):
    results = bulk(
        api,
        {"method": "POST", "path": "/Groups", "bulkId": "g1",
         "data": {"displayName": "One", "members": [{"value": "bulkId:g2"}]}},
        {"method": "POST", "path": "/Groups", "bulkId": "g2",
         "data": {"displayName": "Two", "members": [{"value": "bulkId:g1"}]}},
    )
    assert [(r["status"], r["response"]["scimType"]) for r in results] == [("409", "invalidValue")] * 2
    assert count(Group) == 0


@pytest.mark.parametrize("operation", [
    {"method": "GET", "path": "/Users"},
    {"method": "POST", "path": "/Users", "data": {"userName": "no-bulk-id@example.com"}},
    {"method": "POST", "path": "/Users/abc", "bulkId": "x", "data": {}},
    {"method": "DELETE", "path": "/Users"},
    {"method": "PUT", "path": "/Bulk"},
    {"method": "DELETE", "path": "/../Users/x"},
])
def test_malformed_operations_are_400_each(api, operation):
    results = bulk(api, operation)
    assert results[0]["status"] == "400" and results[0]["response"]["scimType"] == "invalidSyntax"


def test_too_many_operations_is_413(app, api):
    app.config["SCIM_BULK_MAX_OPERATIONS"] = 2
    operations = [{"method": "DELETE", "path": f"/Users/{i}"} for i in range(3)]
    response = api.post("/Bulk", json={"schemas": [BULK], "Operations": operations})
    assert response.status_code == 413 and response.json["status"] == "413"


def test_payload_over_max_size_is_413(app, api):
    app.config["SCIM_BULK_MAX_PAYLOAD"] = 200
    operation = {"method": "POST", "path": "/Users", "bulkId": "big", "data": user_body("big@example.com")}
    assert len(json.dumps(operation)) > 200
    response = api.post("/Bulk", json={"schemas": [BULK], "Operations": [operation]})
    assert response.status_code == 413 and count(User) == 0


@pytest.mark.parametrize("body", [{"schemas": ["urn:wrong"], "Operations": []}, {"Operations": "x"},
                                  {"Operations": [], "failOnErrors": 0}])
def test_malformed_bulk_request_is_400(api, body):
    response = api.post("/Bulk", json=body)
    assert response.status_code == 400


def test_each_operation_leaves_its_own_audit_row(api):
    bulk(api, {"method": "POST", "path": "/Users", "bulkId": "u",
               "data": user_body("audited@example.com", password="never-logged")})
    db.session.expire_all()
    rows = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(r.method, r.path, r.status) for r in rows] == [("POST", "/scim/v2/Users", 201),
                                                          ("POST", "/scim/v2/Bulk", 200)]
    assert all("never-logged" not in (r.request_body or "") for r in rows)
