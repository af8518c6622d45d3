"""Real servers for the concurrency and fault tests: gunicorn on 127.0.0.1, several workers, bounded waits."""

import contextlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from tests.conftest import DATABASE_ENVIRONMENT, TOKEN
from tests.pg import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def request(port, method, path, body=None, headers=None, timeout=30):
    """One request on a fresh connection: (status, JSON body or None, headers)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    all_headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json", **(headers or {})}
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=all_headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None), dict(response.getheaders())
    finally:
        connection.close()


@contextlib.contextmanager
def gunicorn(database_url: str, workers: int = 2, **settings):
    """A gunicorn server for the app on a free loopback port; yields (port, process)."""
    port = free_port()
    env = {**os.environ, **DATABASE_ENVIRONMENT, "DATABASE_URL": database_url, "SCIM_BEARER_TOKEN": TOKEN,
           "SCIM_ACCESS_LOG": "0", **{key: str(value) for key, value in settings.items()}}
    # The server's log goes to a file: a pipe nobody reads would fill up and block the workers.
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", os.path.join(ROOT, "gunicorn.conf.py"), "-w", str(workers),
             "-b", f"127.0.0.1:{port}", "app:create_app()"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_until_ready(port, server, log)
            yield port, server
        finally:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


def wait_until_ready(port, server, log, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if request(port, "GET", "/readyz", timeout=5)[0] == 200:
                return
        if server.poll() is not None:
            break
        time.sleep(0.1)
    log.seek(0)
    raise RuntimeError("gunicorn did not start: " + log.read()[-4000:].decode(errors="replace"))


def at_once(count, action):
    """Run action(i) for i in range(count) in threads released together; returns their results in order."""
    results = [None] * count
    start = threading.Barrier(count)

    def run(i):
        start.wait()
        results[i] = action(i)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results
