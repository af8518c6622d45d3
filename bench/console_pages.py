"""The admin console's pages against a directory of 100,000 users and 1,000,000 audit rows.

    .venv/bin/python bench/console_pages.py [--users N] [--audit-rows R] [--tenants T] [--repeats K]

A throwaway PostgreSQL (as for `make bench`), seeded with bench/seed.py's users, groups (two of 10,000
members) and tenants, and R audit rows spread over the last 30 days in the order of their ids, as requests
are written (one in 20 a 404, one in 50 a 409), by one INSERT ... SELECT. The service runs under gunicorn
with the console on (2 sync workers); one client logs in and asks each page K times after one untimed
request, one at a time on loopback, so the time measured is the server's time plus a loopback round trip.
Prints p50 and p95 in milliseconds per page against the 300 ms target, and writes bench/results/console.json.
"""

import argparse
import contextlib
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlencode

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(1, REPO)

from sqlalchemy import select, text  # noqa: E402

import seed  # noqa: E402
import servers  # noqa: E402
from app import create_app  # noqa: E402
from console.accounts import create_admin  # noqa: E402
from models import AuditEntry, Group, Link, User, db  # noqa: E402
from tests.pg import free_port, throwaway_postgres  # noqa: E402

TARGET_MS = 300
PASSWORD = "bench console passphrase"
AUDIT = """
INSERT INTO audit (at, tenant_id, token_name, client_ip, user_agent, method, path, resource_type, resource_id,
                   operation, status, scim_type, detail, duration_ms)
SELECT now() - make_interval(secs => (:rows - g) * :spread), u.tenant_id, 'bench-token', '192.0.2.10',
       'Okta SCIM Client 1.0.0', 'GET', '/scim/v2/Users/' || u.id, 'Users', u.id, 'read',
       CASE WHEN g % 20 = 0 THEN 404 WHEN g % 50 = 0 THEN 409 ELSE 200 END,
       CASE WHEN g % 50 = 0 AND g % 20 <> 0 THEN 'uniqueness' END,
       CASE WHEN g % 20 = 0 THEN 'no such user' WHEN g % 50 = 0 THEN 'userName exists' END, 1.5
FROM generate_series(1, :rows) AS g
JOIN (SELECT id, tenant_id, row_number() OVER (ORDER BY created) - 1 AS n FROM users) AS u
  ON u.n = g % :users
"""


def options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--audit-rows", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--output", default=os.path.join(BENCH, "results", "console.json"))
    return parser.parse_args(argv)


def seed_all(args) -> dict:
    plan = seed.GroupPlan(args.users, 1000, mid=min(5000, args.users // 4), big=min(10000, args.users // 2),
                          batch=1000, tenants=args.tenants)
    seed.seed_tenants(plan)
    seed.seed_ordinary_groups(plan)
    seed.seed_users(plan, 0, args.users)
    seed.link_ordinary(plan, 0, args.users)
    special = seed.seed_special_groups(plan)
    db.session.execute(text("SET LOCAL statement_timeout = 0"))  # one statement of a million rows
    db.session.execute(text(AUDIT), {"rows": args.audit_rows, "users": args.users,
                                     "spread": 30 * 86400 / args.audit_rows})
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    create_admin("bench@example.com", PASSWORD)
    middle = seed.user_id(args.users // 2 + 7)
    default_users = db.session.scalar(select(db.func.count()).select_from(User).where(User.tenant_id == 1))
    deep_name = db.session.scalar(select(User.user_name).where(User.tenant_id == 1).order_by(User.user_name)
                                  .offset(min(5000, default_users // 2)).limit(1))
    big = special["get-10000"]
    deep_member = db.session.scalar(select(User.user_name).join(Link, Link.user_id == User.id)
                                    .where(Link.group_id == big).order_by(User.user_name)
                                    .offset(plan.big * 9 // 10).limit(1))
    entry = db.session.scalar(select(AuditEntry.id).where(AuditEntry.status == 409).order_by(AuditEntry.id.desc())
                              .limit(1))
    groups = db.session.scalar(select(db.func.count()).select_from(Group))
    return {"external_id": seed.user_body(2600)["externalId"], "user": middle, "deep_name": deep_name.lower(),
            "group": big, "deep_member": deep_member.lower(), "entry": entry, "groups": groups}


class Browser:
    """One console session over http.client: the cookie, and the CSRF token of the last page."""

    def __init__(self, port: int):
        self.port, self.cookie = port, ""

    def get(self, path: str) -> tuple[int, str]:
        return self.send("GET", path)

    def send(self, method, path, form=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Cookie": self.cookie} if self.cookie else {}
        body = None
        if form is not None:
            body, headers["Content-Type"] = urlencode(form), "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            page = response.read().decode()
            cookie = response.getheader("Set-Cookie")
            if cookie:
                self.cookie = cookie.split(";", 1)[0]
            return response.status, page
        finally:
            connection.close()

    def log_in(self) -> None:
        _, page = self.get("/admin/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        status, _ = self.send("POST", "/admin/login", {"email": "bench@example.com", "password": PASSWORD,
                                                       "csrf_token": token})
        if status != 302:
            raise SystemExit(f"login failed: {status}")


def pages(facts: dict) -> dict[str, str]:
    return {
        "overview (10 tenants, 24 h chart)": "/admin/",
        "users, first page": "/admin/users",
        "users, a page 5,000 in": "/admin/users?" + urlencode({"after": facts["deep_name"]}),
        "users, search by name": "/admin/users?q=ada.hop",
        "users, search by externalId": "/admin/users?" + urlencode({"q": facts["external_id"]}),
        "user page (its audit rows, events)": f"/admin/users/{facts['user']}",
        "groups, first page": "/admin/groups",
        "group of 10,000, first members": f"/admin/groups/{facts['group']}",
        "group of 10,000, members 9,000 in": f"/admin/groups/{facts['group']}?" + urlencode(
            {"after": facts["deep_member"]}),
        "requests, newest": "/admin/requests",
        "requests, failed": "/admin/requests?status=failed",
        "requests, a tenant's 5xx (none)": "/admin/requests?tenant=1&status=5xx",
        "requests, last hour": "/admin/requests?since=1h",
        "request page": f"/admin/requests/{facts['entry']}",
        "tokens": "/admin/tokens",
        "tenants": "/admin/tenants",
        "webhooks": "/admin/webhooks",
    }


def measure(browser: Browser, path: str, repeats: int) -> dict:
    status, _ = browser.get(path)
    if status != 200:
        raise SystemExit(f"{path}: {status}")
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        browser.get(path)
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1)}


def main(argv=None) -> None:
    args = options(argv)
    workdir = tempfile.mkdtemp(prefix="scim-console-bench-")
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(throwaway_postgres("scim_console_bench", shared_buffers="1GB"))
        servers_env = {"DATABASE_URL": url, "SCIM_CONSOLE": "1", "SCIM_CONSOLE_SECRET_KEY": "b" * 40,
                       "SCIM_CONSOLE_SECURE_COOKIE": "0", "SCIM_ACCESS_LOG": "0", "SCIM_BEARER_TOKEN": "c" * 40}
        subprocess.run([sys.executable, "manage.py", "db", "upgrade"], cwd=REPO, check=True, capture_output=True,
                       env={**os.environ, "DATABASE_URL": url})
        app = create_app({"SQLALCHEMY_DATABASE_URI": url})
        stack.enter_context(app.app_context())
        stack.callback(db.engine.dispose)
        print(f"seeding {args.users} users and {args.audit_rows} audit rows ...", flush=True)
        facts = seed_all(args)
        print(f"seeded in {time.monotonic() - began:.0f} s", flush=True)
        port = free_port()
        stack.enter_context(servers.gunicorn("app:create_app()", port, servers.Serving("sync", 2), servers_env,
                                             os.path.join(workdir, "console.log")))
        browser = Browser(port)
        browser.log_in()
        results = {}
        print(f"{'page':40} {'p50 ms':>8} {'p95 ms':>8}  target < {TARGET_MS} ms")
        for name, path in pages(facts).items():
            results[name] = {"path": path, **measure(browser, path, args.repeats)}
            met = "met" if results[name]["p95_ms"] < TARGET_MS else "MISSED"
            print(f"{name:40} {results[name]['p50_ms']:8.1f} {results[name]['p95_ms']:8.1f}  {met}", flush=True)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as out:
        json.dump({"options": vars(args), "pages": results, "minutes": round((time.monotonic() - began) / 60, 1)},
                  out, indent=2)
    print(f"written: {os.path.relpath(args.output, REPO)}")


if __name__ == "__main__":
    main()
