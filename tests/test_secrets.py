"""No password or token a client sends, in any form the service accepts, reaches a table or a log in clear."""

import json
import logging

import pytest
from sqlalchemy import select, text
from werkzeug.security import check_password_hash

from app import create_app
from models import AuditEntry, User, db
from scim.audit import RedactQueryStrings
from tests.conftest import AUTH, DATABASE_SETTINGS, TOKEN, user_body

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
CORE_PASSWORD = "urn:ietf:params:scim:schemas:core:2.0:User:password"
SECRET = "Plain-Secret-1"


def everything_stored() -> str:
    """Every row of every table, as text."""
    db.session.expire_all()
    return "\n".join(str(row) for table in db.metadata.sorted_tables
                     for row in db.session.execute(text(f"SELECT * FROM {table.name}")))


def assert_nowhere(secret: str, capsys) -> None:
    logged = capsys.readouterr()
    assert secret not in everything_stored()
    assert secret not in logged.out + logged.err


def password_is(user_id: str, password: str) -> bool:
    db.session.expire_all()
    return check_password_hash(db.session.get(User, user_id).password_hash, password)


# The forms that set the password through PATCH: the service trims paths and keys, resolves URN-qualified
# names, reads keys without case and takes the last of duplicate keys.
PATCH_FORMS = {
    "path with a leading space": {"op": "replace", "path": " password", "value": SECRET},
    "path with a trailing space": {"op": "replace", "path": "password ", "value": SECRET},
    "URN-qualified path": {"op": "replace", "path": CORE_PASSWORD, "value": SECRET},
    "value key with a trailing space": {"op": "replace", "value": {"password ": SECRET}},
    "URN-qualified value key": {"op": "replace", "value": {CORE_PASSWORD: SECRET}},
    "path and Path both given": {"op": "replace", "path": "title", "Path": "password", "value": SECRET},
    "capitalised keys": {"Op": "Replace", "Path": "PASSWORD", "Value": SECRET},
}


@pytest.mark.parametrize("operation", PATCH_FORMS.values(), ids=PATCH_FORMS.keys())
def test_patch_setting_the_password_in_any_form_stores_it_nowhere_in_clear(api, make_user, operation, capsys):
    user = make_user("forms@example.com")
    response = api.patch(f"/Users/{user['id']}", json={"schemas": [PATCH], "Operations": [operation]})
    assert response.status_code == 200, response.json
    assert password_is(user["id"], SECRET)  # the form really sets the password...
    assert_nowhere(SECRET, capsys)  # ...and the audit row holds it redacted
    assert "[redacted]" in db.session.scalars(select(AuditEntry.request_body)
                                              .where(AuditEntry.method == "PATCH")).one()


BODY_FORMS = {
    "password": {"password": SECRET},
    "Password": {"Password": SECRET},
    "key with spaces": {" password ": SECRET},
    "URN-qualified key": {CORE_PASSWORD: SECRET},
    "in an extension": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"password": SECRET}},
}


@pytest.mark.parametrize("form", BODY_FORMS.values(), ids=BODY_FORMS.keys())
def test_create_and_replace_store_no_password_in_clear(api, form, capsys):
    created = api.post("/Users", json={**user_body("body@example.com"), **form})
    assert created.status_code == 201
    replaced = api.put(f"/Users/{created.json['id']}", json={**user_body("body@example.com"), **form})
    assert replaced.status_code == 200
    assert_nowhere(SECRET, capsys)


def test_a_refused_patch_stores_no_password_either(api, make_user, capsys):
    user = make_user("refused@example.com")
    operations = [{"op": "replace", "path": " password", "value": SECRET}, {"op": "explode", "path": "title"}]
    response = api.patch(f"/Users/{user['id']}", json={"schemas": [PATCH], "Operations": operations})
    assert response.status_code == 400
    assert_nowhere(SECRET, capsys)


@pytest.mark.parametrize("operation", PATCH_FORMS.values(), ids=PATCH_FORMS.keys())
def test_bulk_stores_no_password_in_clear(api, operation, capsys):
    operations = [
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_body("bulk@example.com", password=SECRET)},
        {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {"schemas": [PATCH], "Operations": [operation]}},
    ]
    response = api.post("/Bulk", json={"schemas": [BULK], "Operations": operations})
    assert [op["status"] for op in response.json["Operations"]] == ["201", "200"]
    assert_nowhere(SECRET, capsys)


def test_a_secret_applied_in_an_unforeseen_form_is_still_scrubbed(api, make_user, monkeypatch, capsys):
    # The second wall: even if redaction missed a form, the value the service applied is scrubbed.
    monkeypatch.setattr("scim.audit.is_secret_name", lambda name: False)
    user = make_user("scrubbed@example.com")
    response = api.patch(f"/Users/{user['id']}", json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "password", "value": SECRET}]})
    assert response.status_code == 200 and password_is(user["id"], SECRET)
    assert_nowhere(SECRET, capsys)


@pytest.mark.parametrize("parameter", ["access_token", "apikey", "token", "api_key", "key", "client_secret"])
def test_a_token_in_the_query_string_is_redacted_from_the_audit_and_the_log(client, parameter, capsys):
    capsys.readouterr()
    response = client.get(f"/scim/v2/Users?count=1&{parameter}=Query-Secret-77", headers=AUTH)
    assert response.status_code == 200
    path = db.session.scalars(select(AuditEntry.path)).one()
    assert "Query-Secret-77" not in path and f"{parameter}=%5Bredacted%5D" in path and "count=1" in path
    assert_nowhere("Query-Secret-77", capsys)


def test_the_development_server_log_redacts_query_tokens():
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s %s',
                               ("GET /scim/v2/Users?access_token=Dev-Secret-9&count=1 HTTP/1.1", "200", "-"), None)
    RedactQueryStrings().filter(record)
    line = record.getMessage()
    assert "Dev-Secret-9" not in line and "count=1" in line and "GET /scim/v2/Users?" in line


@pytest.mark.parametrize("token", ["a", "x" * 19])
def test_a_bootstrap_token_shorter_than_20_characters_is_refused_at_start(migrated, token):
    with pytest.raises(RuntimeError, match="SCIM_BEARER_TOKEN must be at least 20 characters"):
        create_app({"SQLALCHEMY_DATABASE_URI": migrated, "SCIM_BEARER_TOKEN": token})


def test_a_bootstrap_token_of_20_characters_starts(migrated):
    assert len(TOKEN) >= 20
    app = create_app({"SQLALCHEMY_DATABASE_URI": migrated, "SCIM_BEARER_TOKEN": "y" * 20, **DATABASE_SETTINGS})
    with app.app_context():
        response = app.test_client().get("/scim/v2/Users", headers={"Authorization": "Bearer " + "y" * 20})
        assert response.status_code == 200 and json.loads(response.data)["totalResults"] == 0
        db.engine.dispose()
