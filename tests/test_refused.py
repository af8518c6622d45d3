"""A request refused for its credential or its size costs nothing to read, and still gets its audit row and
counts for the lockout; checked in the app and against a real gunicorn server on 127.0.0.1."""

import http.client
import json
import socket

import pytest
from sqlalchemy import func, select

from models import AuditEntry, User, db
from tests.conftest import AUTH, TOKEN, user_body
from tests.servers import gunicorn

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
WRONG = {"Authorization": "Bearer wrong-token-but-long-enough-0000"}


def audit_rows() -> list[AuditEntry]:
    db.session.expire_all()
    return db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()


def test_body_of_a_refused_request_is_not_parsed_and_only_its_size_is_kept(client, monkeypatch):
    parsed = []
    monkeypatch.setattr("scim.audit.parse_json", lambda raw: parsed.append(raw) or {})
    body = json.dumps({"userName": "x@example.com", "title": "t" * 1_000_000})
    response = client.post("/scim/v2/Users", data=body, headers={**WRONG, "Content-Type": "application/scim+json"})
    assert response.status_code == 401 and response.json["status"] == "401"
    assert parsed == []
    assert [row.request_body for row in audit_rows()] == [f"[not read: {len(body)} bytes]"]


def test_body_over_the_size_limit_is_413_with_its_row_and_no_traceback(app, client, capsys):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    capsys.readouterr()
    body = json.dumps(user_body("big@example.com", title="t" * 2000))
    response = client.post("/scim/v2/Users", data=body, headers={**AUTH, "Content-Type": "application/scim+json"})
    assert response.status_code == 413 and response.json["status"] == "413"
    assert [(row.status, row.request_body) for row in audit_rows()] == [(413, f"[not read: {len(body)} bytes]")]
    logged = capsys.readouterr()
    assert "Traceback" not in logged.out + logged.err
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


@pytest.fixture(scope="module")
def server(migrated):
    with gunicorn(migrated, workers=2, SCIM_AUTH_FAILURE_LIMIT=3, SCIM_BULK_MAX_PAYLOAD=10_000) as (port, _):
        yield port


def raw_request(port: int, head: str) -> tuple[int, dict]:
    """Headers only, then read the answer: the body they announce is never sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head.encode())
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(body)


def test_announced_oversized_body_with_a_refused_credential_is_audited_and_locked_out(app, server):
    head = ("POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer guess-guess-guess-guess\r\n"
            "Content-Type: application/scim+json\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n")
    answers = [raw_request(server, head) for _ in range(4)]
    assert [status for status, _ in answers] == [401, 401, 401, 429]
    assert all(body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] for _, body in answers)
    rows = audit_rows()
    assert [row.status for row in rows] == [401, 401, 401, 429]
    assert {row.request_body for row in rows} == {"[not read: 100000000 bytes]"}


def test_chunked_bulk_body_over_max_payload_is_413(app, server):
    operations = [{"method": "POST", "path": "/Users", "bulkId": f"c{i}", "data": user_body(f"c{i}@example.com")}
                  for i in range(60)]
    body = json.dumps({"schemas": [BULK], "Operations": operations}).encode()
    assert len(body) > 10_000
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
    try:
        connection.request("POST", "/scim/v2/Bulk", body=iter([body[:5000], body[5000:]]), encode_chunked=True,
                           headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"})
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 413 and answer["status"] == "413" and "maxPayloadSize" in answer["detail"]
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert [row.status for row in audit_rows()] == [413]
