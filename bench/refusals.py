"""Requests that ask for too much, against a real server: each must get a quick SCIM error and an audit row.

    .venv/bin/python bench/refusals.py

A throwaway PostgreSQL and gunicorn with 2 workers on 127.0.0.1. One request per case (a body announced at
100 MB or 7.7 MiB with a refused credential, 220,000 attribute names, 20,000 member operations, 8,000 email
operations, a filter of 100,000 comparisons, a 1,000-operation Bulk, a chunked 1.2 MiB Bulk, an
out-of-range date, NaN), printed with its status, scimType, time and the audit rows it added; then a Bulk
of 100 creations with passwords, the most the defaults allow. Bounded: 14 requests.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sqlalchemy import create_engine, text  # noqa: E402

from tests.conftest import TOKEN  # noqa: E402
from tests.pg import throwaway_postgres  # noqa: E402
from tests.servers import gunicorn  # noqa: E402

WRONG = "Bearer wrong-token-wrong-token-0000"
JSON = "application/scim+json"


def send(port: int, method: str, path: str, body, auth: str = f"Bearer {TOKEN}", chunked: bool = False):
    """(status, JSON body or {}); a body refused unread may end in a reset connection: (status, {})."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    if chunked:
        data = iter([data[i:i + 65536] for i in range(0, len(data), 65536)])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request(method, path, body=data, encode_chunked=chunked,
                           headers={"Authorization": auth, "Content-Type": JSON})
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw.startswith(b"{") else {}
    except (BrokenPipeError, ConnectionResetError):
        return announced(port, method, path, len(body) if isinstance(body, bytes) else 0, auth)
    finally:
        connection.close()


def announced(port: int, method: str, path: str, length: int, auth: str = WRONG):
    """Headers announcing `length` bytes, no body: what the server answers before reading any of it."""
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\nContent-Type: {JSON}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head.encode())
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    body = reply.partition(b"\r\n\r\n")[2]
    return int(reply.split()[1]), json.loads(body) if body.startswith(b"{") else {}


def cases(port: int, user: str, group: str) -> list:
    def members(count):
        return [{"op": "add" if i % 2 == 0 else "remove", "path": "members", "value": [{"value": user}]}
                for i in range(count)]

    def users(count, prefix, **extra):
        return {"Operations": [{"method": "POST", "path": "/Users", "bulkId": f"{prefix}{i}",
                                "data": {"userName": f"{prefix}{i}@example.com", **extra}} for i in range(count)]}
    ors = " or ".join(f'userName eq "u{i}"' for i in range(100_000))
    password = {"Operations": [{"op": "replace", "value": {
        "urn:ietf:params:scim:schemas:core:2.0:User:password": "Plain-Secret-1"}}]}
    emails = {"Operations": [{"op": "add", "path": "emails", "value": [{"value": f"e{i}@example.com"}]}
                             for i in range(8_000)]}
    return [
        ("PATCH setting the password by a URN-qualified key", lambda: send(port, "PATCH", f"/scim/v2/Users/{user}",
                                                                             password)),
        ("Content-Length 100000000, refused credential", lambda: announced(port, "POST", "/scim/v2/Users", 10**8)),
        ("7.7 MiB body, refused credential", lambda: send(port, "POST", "/scim/v2/Users", json.dumps(
            {"userName": "x", "title": "t" * 7_700_000}).encode(), auth=WRONG)),
        (".search with 220,000 attributes", lambda: send(port, "POST", "/scim/v2/.search",
                                                         {"attributes": [f"a{i}" for i in range(220_000)]})),
        ("group PATCH of 20,000 alternating member operations", lambda: send(
            port, "PATCH", f"/scim/v2/Groups/{group}", {"Operations": members(20_000)})),
        ("group PATCH of 10,000 alternating member operations", lambda: send(
            port, "PATCH", f"/scim/v2/Groups/{group}", {"Operations": members(10_000)})),
        ("PATCH of 8,000 add emails", lambda: send(port, "PATCH", f"/scim/v2/Users/{user}", emails)),
        ("filter of 100,000 comparisons", lambda: send(port, "POST", "/scim/v2/Users/.search", {"filter": ors})),
        ("Bulk of 1,000 creations with passwords", lambda: send(port, "POST", "/scim/v2/Bulk",
                                                                users(1000, "b", password="Pa55-word-long"))),
        ("Bulk of 1.2 MiB sent chunked", lambda: send(port, "POST", "/scim/v2/Bulk",
                                                      users(100, "c", title="t" * 12_000), chunked=True)),
        ('filter meta.created gt "0001-01-01T00:00:00+05:00"', lambda: send(
            port, "POST", "/scim/v2/Users/.search", {"filter": 'meta.created gt "0001-01-01T00:00:00+05:00"'})),
        ("NaN in a body", lambda: send(port, "PUT", f"/scim/v2/Users/{user}", b'{"userName": "r", "title": NaN}')),
        ("within limits: Bulk of 100 creations with passwords", lambda: send(
            port, "POST", "/scim/v2/Bulk", users(100, "d", password="Pa55-word-long"))),
    ]


def count(engine, sql: str) -> int:
    with engine.connect() as connection:
        return connection.execute(text(sql)).scalar()


def main() -> None:
    with throwaway_postgres("scim_refusals") as url:
        subprocess.run([sys.executable, "manage.py", "db", "upgrade"], cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, "DATABASE_URL": url})
        engine = create_engine(url)
        with gunicorn(url, workers=2) as (port, _):
            user = send(port, "POST", "/scim/v2/Users", {"userName": "r@example.com"})[1]["id"]
            group = send(port, "POST", "/scim/v2/Groups", {"displayName": "R"})[1]["id"]
            for name, run in cases(port, user, group):
                before, started = count(engine, "SELECT count(*) FROM audit"), time.monotonic()
                status, body = run()
                took = (time.monotonic() - started) * 1000
                added = count(engine, "SELECT count(*) FROM audit") - before
                print(f"{name:55} {status} {body.get('scimType') or '':14} {took:7.0f} ms  audit +{added}", flush=True)
            leaked = count(engine, "SELECT count(*) FROM audit WHERE request_body LIKE '%Plain-Secret-1%'")
            print(f"audit rows holding the password: {leaked}; users: {count(engine, 'SELECT count(*) FROM users')}")
        engine.dispose()


if __name__ == "__main__":
    main()
