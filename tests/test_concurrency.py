"""Races between gunicorn workers: the database, not a check in Python, keeps userName unique.

The server runs on 127.0.0.1 only; each test sends a bounded number of requests and stops the server.
"""

import contextlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time

from sqlalchemy import func, select

from models import User, db
from tests.conftest import TOKEN, user_body
from tests.pg import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def gunicorn(database_url: str, workers: int = 2):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SCIM_BEARER_TOKEN": TOKEN}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "app:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if request(port, "GET", "/scim/v2/Users?count=0")[0] == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not start: " + server.stderr.read1().decode())
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stderr.close()


def request(port, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}
    connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = connection.getresponse()
    result = response.status, json.loads(response.read() or b"null")
    connection.close()
    return result


def test_same_username_from_20_clients_at_once_gives_one_201_and_19_409(app, migrated):
    variants = ["race@example.com", "RACE@example.com", "Race@Example.com", "race@EXAMPLE.COM"]
    statuses = []
    with gunicorn(migrated) as port:
        start = threading.Barrier(20)

        def create(i):
            start.wait()
            status, body = request(port, "POST", "/scim/v2/Users", user_body(variants[i % len(variants)]))
            statuses.append((status, body.get("scimType")))

        threads = [threading.Thread(target=create, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert sorted(statuses, key=str) == [(201, None)] + [(409, "uniqueness")] * 19
    db.session.expire_all()
    count = db.session.scalar(select(func.count()).select_from(User).where(
        func.lower(User.user_name) == "race@example.com"))
    assert count == 1
