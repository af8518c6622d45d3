"""The floor: a bare Flask app on the service's own tables, one SQL statement per request through psycopg 3.

    DATABASE_URL=postgresql://... gunicorn -w 2 -k sync -b 127.0.0.1:8001 --pythonpath bench baseline:app
    DATABASE_URL=postgresql://... gunicorn -w 2 -k gthread --threads 4 -b 127.0.0.1:8001 --pythonpath bench baseline:app

It answers only what the benchmark compares: Okta's lookup (`filter=userName eq "x"`, that one form), a user
by id, a page of users (startIndex/count, with totalResults), and POST /Users (one INSERT of the user and
its emails; a password is hashed with the same werkzeug function the service uses), each within one
tenant's rows as the service's are: the tenant's id is the request's whole credential (`Authorization:
Bearer <tenant id>`, the default tenant's without one). No token check, no audit, no validation beyond what
keeps it correct. One connection per worker thread (a sync worker has one
thread, a gthread worker several, which must not queue on a shared connection), opened on first use (after
gunicorn forks), in autocommit mode: every statement is its own transaction.
"""

import json
import os
import re
import threading
import uuid

import psycopg
from flask import Flask, Response, request
from werkzeug.security import generate_password_hash

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
COLUMNS = "id, data, active, created, last_modified, version"
LOOKUP = re.compile(r'^\s*userName\s+eq\s+"(.*)"\s*$', re.IGNORECASE)
INSERT = """
WITH u AS (
    INSERT INTO users (id, tenant_id, external_id, created, last_modified, version, data, user_name,
                       display_name, given_name, family_name, active, password_hash)
    VALUES (%(id)s, %(tenant)s, %(external_id)s, now(), now(), 1, %(data)s, %(user_name)s, %(display_name)s,
            %(given_name)s, %(family_name)s, %(active)s, %(password_hash)s)
    RETURNING id, data, active, created, last_modified, version),
e AS (
    INSERT INTO user_emails (user_id, value, type, is_primary)
    SELECT u.id, x.value, x.type, coalesce(x."primary", false)
    FROM u, json_to_recordset(%(emails)s::json) AS x(value text, type text, "primary" boolean))
SELECT * FROM u
"""

app = Flask(__name__)
_local = threading.local()


def connection() -> psycopg.Connection:
    conn = getattr(_local, "connection", None)
    if conn is None or conn.closed:
        url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        conn = _local.connection = psycopg.connect(url, autocommit=True)
    return conn


def query(sql: str, params) -> list[tuple]:
    with connection().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def tenant() -> int:
    token = request.headers.get("Authorization", "").rpartition(" ")[2]
    return int(token) if token.isdigit() else 1


def user_json(row, base: str) -> dict:
    user_id, data, active, created, last_modified, version = row[:6]
    return {"schemas": [USER_SCHEMA], "id": user_id, **data, "active": active,
            "meta": {"resourceType": "User", "created": created.isoformat(),
                     "lastModified": last_modified.isoformat(), "location": f"{base}/Users/{user_id}",
                     "version": f'W/"{version}"'}}


def answer(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/scim+json")


def list_answer(rows, total: int, start: int) -> Response:
    base = request.url_root + "scim/v2"
    return answer({"schemas": [LIST_SCHEMA], "totalResults": total, "startIndex": start,
                   "itemsPerPage": len(rows), "Resources": [user_json(row, base) for row in rows]})


@app.get("/scim/v2/Users")
def list_users():
    match = LOOKUP.match(request.args.get("filter", ""))
    if match:
        rows = query(f"SELECT {COLUMNS} FROM users WHERE tenant_id = %s AND lower(user_name) = lower(%s)",
                     (tenant(), match.group(1)))
        return list_answer(rows, len(rows), 1)
    start = max(int(request.args.get("startIndex", 1)), 1)
    count = min(max(int(request.args.get("count", 100)), 0), 1000)
    mine = tenant()
    rows = query(f"SELECT {COLUMNS}, (SELECT count(*) FROM users WHERE tenant_id = %s) FROM users "
                 "WHERE tenant_id = %s ORDER BY created, id OFFSET %s LIMIT %s", (mine, mine, start - 1, count))
    total = rows[0][6] if rows else query("SELECT count(*) FROM users WHERE tenant_id = %s", (mine,))[0][0]
    return list_answer(rows, total, start)


@app.get("/scim/v2/Users/<user_id>")
def get_user(user_id):
    rows = query(f"SELECT {COLUMNS} FROM users WHERE id = %s AND tenant_id = %s", (user_id, tenant()))
    if not rows:
        return answer({"status": "404", "detail": "not found"}, 404)
    return answer(user_json(rows[0], request.url_root + "scim/v2"))


@app.post("/scim/v2/Users")
def create_user():
    body = request.get_json(force=True)
    password = body.pop("password", None)
    active = body.pop("active", True)
    data = {k: v for k, v in body.items() if k not in ("schemas", "groups", "id", "meta")}
    name = data.get("name") or {}
    params = {"id": str(uuid.uuid4()), "tenant": tenant(), "external_id": data.get("externalId"),
              "data": json.dumps(data), "user_name": data["userName"], "display_name": data.get("displayName"),
              "given_name": name.get("givenName"), "family_name": name.get("familyName"), "active": active,
              "password_hash": generate_password_hash(password) if password else None,
              "emails": json.dumps(data.get("emails", []))}
    try:
        rows = query(INSERT, params)
    except psycopg.errors.UniqueViolation:
        return answer({"status": "409", "scimType": "uniqueness", "detail": "userName taken"}, 409)
    return answer(user_json(rows[0], request.url_root + "scim/v2"), 201)
