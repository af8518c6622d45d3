"""The audit trail, the JSON request log, and the hardening around them."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from models import AuditEntry, db, utcnow
from tests.conftest import AUTH, user_body

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def entries():
    db.session.expire_all()
    return db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()


def last_entry():
    return entries()[-1]


def test_successful_create_is_recorded_with_the_password_redacted(api):
    created = api.post("/Users", json=user_body("audit@example.com", password="Hunter2-secret"),
                       headers={"User-Agent": "Okta SCIM Client 1.0.0"}).json
    entry = last_entry()
    assert (entry.method, entry.path, entry.status, entry.operation) == ("POST", "/scim/v2/Users", 201, "create")
    assert (entry.resource_type, entry.resource_id) == ("Users", created["id"])
    assert entry.token_name == "SCIM_BEARER_TOKEN" and entry.client_ip == "127.0.0.1"
    assert entry.user_agent == "Okta SCIM Client 1.0.0" and entry.duration_ms >= 0
    body = json.loads(entry.request_body)
    assert body["password"] == "[redacted]" and body["userName"] == "audit@example.com"
    assert "Hunter2-secret" not in entry.request_body


@pytest.mark.parametrize("operation", [
    {"op": "replace", "value": {"password": "Hunter2-secret"}},      # Okta's password sync
    {"op": "replace", "path": "password", "value": "Hunter2-secret"},
])
def test_patch_passwords_are_redacted(api, make_user, operation):
    user = make_user("sync@example.com")
    api.patch(f"/Users/{user['id']}", json={"schemas": [PATCH], "Operations": [operation]})
    entry = last_entry()
    assert entry.operation == "patch" and entry.resource_id == user["id"] and entry.status == 200
    assert "Hunter2-secret" not in entry.request_body and "[redacted]" in entry.request_body


def test_failed_request_is_recorded_with_its_scim_type(api, make_user):
    make_user("dup@example.com")
    api.post("/Users", json=user_body("DUP@example.com"))
    entry = last_entry()
    assert (entry.status, entry.scim_type, entry.operation) == (409, "uniqueness", "create")


@pytest.mark.parametrize("headers, token_name", [
    ({}, "anonymous"),
    ({"Authorization": "Bearer not-the-token"}, "refused: unknown token"),
    ({"Authorization": "non-token"}, "refused: malformed header"),
])
def test_refused_requests_are_recorded_with_the_reason(client, headers, token_name):
    client.get("/scim/v2/Users?filter=userName%20eq%20%22x%22", headers=headers)
    entry = last_entry()
    assert (entry.status, entry.token_name) == (401, token_name)
    assert entry.path == '/scim/v2/Users?filter=userName%20eq%20%22x%22'


def test_reads_are_recorded_with_their_resource(api, make_user):
    user = make_user("read@example.com")
    api.get(f"/Users/{user['id']}")
    api.get("/Users?count=1")
    read, listed = entries()[-2:]
    assert (read.operation, read.resource_id) == ("read", user["id"])
    assert (listed.operation, listed.resource_id, listed.request_body) == ("list", None, None)


def test_secret_query_parameters_are_redacted(client):
    client.get("/scim/v2/Users?access_token=leaked-secret-value", headers=AUTH)
    assert "leaked-secret-value" not in last_entry().path


def test_no_secret_reaches_the_database_or_the_log(app, api, capsys):
    from tests.test_tokens import new_token
    secret = new_token(app, "idp")
    capsys.readouterr()
    response = api.post("/Users", json=user_body("leak@example.com", password="Pa55-word-never"),
                        headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 201
    api.patch(f"/Users/{response.json['id']}", headers={"Authorization": f"Bearer {secret}"},
              json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "password", "value": "Pa55-two"}]})
    api.get("/Users", headers={"Authorization": "Bearer wrong-" + secret})
    logged = capsys.readouterr()
    tables = ["users", "groups", "link", "user_emails", "tokens", "audit"]
    everything = "\n".join(str(r) for t in tables for r in db.session.execute(text(f"SELECT * FROM {t}")))
    for leaked in (secret, "Pa55-word-never", "Pa55-two"):
        assert leaked not in everything
        assert leaked not in logged.out + logged.err


def test_one_json_log_line_per_request_without_bodies(api, capsys):
    capsys.readouterr()
    api.post("/Users", json=user_body("log@example.com", title="Body-only-value"))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "scim_request" and line["status"] == 201 and line["method"] == "POST"
    assert line["token_name"] == "SCIM_BEARER_TOKEN" and "Body-only-value" not in json.dumps(line)


def test_audit_failure_never_fails_the_request(api, monkeypatch):
    import scim.audit

    def broken(**_kw):
        raise RuntimeError("audit storage is down")
    monkeypatch.setattr(scim.audit, "AuditEntry", broken)
    response = api.post("/Users", json=user_body("resilient@example.com"))
    assert response.status_code == 201
    assert api.get(f"/Users/{response.json['id']}").status_code == 200


def test_retention_prunes_old_rows(app, api):
    api.get("/Users")
    old = AuditEntry(at=utcnow() - timedelta(days=120), token_name="x", method="GET", path="/old", status=200,
                     duration_ms=1)
    db.session.add(old)
    db.session.commit()
    output = app.test_cli_runner().invoke(args=["audit", "prune", "--days", "90"]).output
    assert "1 audit rows deleted" in output
    assert [e.path for e in entries()] == ["/scim/v2/Users"]


def test_audit_command_shows_a_filtered_table(app, api, make_user):
    user = make_user("shown@example.com")
    api.post("/Users", json=user_body("SHOWN@example.com"))
    api.get("/Users/missing-id")
    runner = app.test_cli_runner()
    everything = runner.invoke(args=["audit"]).output
    assert everything.splitlines()[0].split()[:3] == ["TIME", "(UTC)", "TOKEN"]
    assert len(everything.splitlines()) == 4
    failed = runner.invoke(args=["audit", "--failed"]).output.splitlines()
    assert len(failed) == 3 and "409" in failed[1] and "uniqueness" in failed[1] and "404" in failed[2]
    by_name = runner.invoke(args=["audit", "--user", "shown@example.com"]).output.splitlines()
    by_id = runner.invoke(args=["audit", "--user", user["id"]]).output.splitlines()
    assert len(by_name) == 3 and len(by_id) == 2  # the 409 names the user only in its body
    assert runner.invoke(args=["audit", "--since", "2999-01-01"]).output.count("\n") == 1


def test_audit_follow_prints_new_rows(app, api):
    api.get("/Users")
    result = app.test_cli_runner().invoke(args=["audit", "--follow", "--polls", "1"])
    assert result.exit_code == 0 and "/scim/v2/Users" in result.output


def test_responses_carry_no_store_and_nosniff(api, client):
    for response in (api.get("/Users"), client.get("/scim/v2/Users")):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_absurdly_deep_json_is_400_invalid_syntax(api):
    deep = user_body("deep@example.com")
    nested = {}
    for _ in range(40):
        nested = {"x": nested}
    deep["nickName"] = nested
    response = api.post("/Users", json=deep)
    assert response.status_code == 400 and response.json["scimType"] == "invalidSyntax"
    assert api.get("/Users").json["totalResults"] == 0


def test_repeated_failures_from_one_address_get_429_but_others_still_work(app, client):
    app.config.update(SCIM_AUTH_FAILURE_LIMIT=3, SCIM_AUTH_FAILURE_WINDOW=120)
    attacker = {"REMOTE_ADDR": "127.0.0.9"}
    statuses = [get(client, "Bearer guess", attacker).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    refused = get(client, "Bearer guess", attacker)
    assert refused.headers["Retry-After"] == "120" and refused.json["status"] == "429"
    assert get(client, AUTH["Authorization"], {"REMOTE_ADDR": "127.0.0.10"}).status_code == 200
    assert get(client, AUTH["Authorization"], attacker).status_code == 200
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.status == 429)) == 3


def get(client, authorization, environ):
    return client.get("/scim/v2/Users", headers={"Authorization": authorization}, environ_base=environ)


def test_audit_follow_with_limit_zero_prints_only_new_rows(app, api):
    api.get("/Users?old=1")
    result = app.test_cli_runner().invoke(args=["audit", "--follow", "--polls", "1", "--limit", "0"])
    assert result.exit_code == 0 and "old=1" not in result.output
