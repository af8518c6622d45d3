"""Slow clients against gunicorn: do two connections that send their body a byte a second stall the service?

    .venv/bin/python bench/slow_clients.py [--seconds 10]

For each worker class (sync, then gthread with 4 threads), 2 workers serve a throwaway PostgreSQL (or SQLite
with --sqlite) on a free loopback port; two slow clients announce a 1,000-byte body and send one byte a second
for `--seconds` seconds, while a normal client sends GET /scim/v2/Users once every 0.2 s with a 2 s timeout.
It prints how many of the normal requests were answered while the slow clients held their connections, and
the longest wait. Traffic goes only to 127.0.0.1; every loop is bounded in time.
"""

import argparse
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import servers  # noqa: E402  (bench/servers.py, beside this file)
from tests.pg import throwaway_postgres  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def slow_client(port: int, token: str, seconds: float) -> None:
    head = (f"POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/scim+json\r\nContent-Length: 1000\r\n\r\n")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=seconds + 5) as connection:
            connection.sendall(head.encode())
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                connection.sendall(b" ")
                time.sleep(1)
    except OSError:
        pass  # the server may close the connection: that is an answer too


def normal_client(port: int, token: str, seconds: float) -> list[float | None]:
    """Latency of each GET, or None when it timed out."""
    waits, deadline = [], time.monotonic() + seconds
    request = urllib.request.Request(f"http://127.0.0.1:{port}/scim/v2/Users?count=1",
                                     headers={"Authorization": f"Bearer {token}"})
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            urllib.request.urlopen(request, timeout=2).read()
            waits.append(time.monotonic() - started)
        except OSError:
            waits.append(None)
        time.sleep(0.2)
    return waits


def measure(worker_class: str, seconds: float, workdir: str, url: str) -> dict:
    port, token = free_port(), secrets.token_urlsafe(32)
    env = {"DATABASE_URL": url, "SCIM_BEARER_TOKEN": token, "SCIM_ACCESS_LOG": "0"}
    subprocess.run([sys.executable, "manage.py", "db", "upgrade"], cwd=servers.REPO, check=True,
                   capture_output=True, env={**os.environ, **env})
    serving = servers.Serving(worker_class, 2, 4 if worker_class == "gthread" else 1)
    log = os.path.join(workdir, f"{worker_class}.log")
    with servers.gunicorn("app:create_app()", port, serving, env, log):
        slow = [threading.Thread(target=slow_client, args=(port, token, seconds)) for _ in range(2)]
        for thread in slow:
            thread.start()
        time.sleep(0.5)  # both slow clients hold a connection before the normal one starts
        waits = normal_client(port, token, seconds - 1)
        for thread in slow:
            thread.join(seconds + 10)
    answered = [w for w in waits if w is not None]
    return {"worker_class": worker_class, "sent": len(waits), "answered": len(answered),
            "longest_ms": round(max(answered) * 1000) if answered else None}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="how long the slow clients trickle")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of a throwaway PostgreSQL")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir, contextlib.ExitStack() as stack:
        url = ("sqlite:///" + os.path.join(workdir, "slow.db") if args.sqlite
               else stack.enter_context(throwaway_postgres("scim_slow")))
        for worker_class in ("sync", "gthread"):
            result = measure(worker_class, args.seconds, workdir, url)
            print(f"{result['worker_class']:8} normal requests answered {result['answered']}/{result['sent']}"
                  f" while 2 slow clients were sending; longest wait {result['longest_ms']} ms", flush=True)


if __name__ == "__main__":
    main()
