"""`make bench`: the service and the floor, under each of gunicorn's worker classes, against one PostgreSQL.

    .venv/bin/python bench/run.py [--quick] [--worker-class sync|gthread|both] [--threads T] [--workers W]
                                  [--users N] [--clients C] [--seconds S] [--max-requests R] [--reps K]
                                  [--shared-buffers SIZE]

1. A throwaway PostgreSQL (tests/pg.py, with shared_buffers=1GB: the tables, their indexes and the run's
   audit rows stay in its cache, as a production database is sized), or the empty database DATABASE_URL
   names; migrations applied.
2. The first 10,000 users seeded (bench/seed.py). For each worker class in turn (sync: W workers; gthread:
   W workers x T threads) the service is started under gunicorn on a free loopback port, lookups are
   measured at 10,000 users, and it is stopped.
3. The rest of the users and the groups seeded, once for the whole run; VACUUM ANALYZE.
4. For each worker class in turn, the service and the floor (bench/baseline.py) started with that class
   (the first class also checks that each returns a seeded user as seeded). First the reads: each one both
   answer measured on the service, then at once on the floor (pairs back to back, so that other work on
   the machine weighs on both alike); then the reads only the service answers, cursor pages (bench/
   cursors.py; "not measured" unless /ServiceProviderConfig advertises them). Then the writes, the same
   way: POST on both, then PUT and PATCH on the service; last the group scenarios. Reads come before
   writes so that every page compared with the first page reads the same table. Both servers stopped, and
   the users the POST scenarios created deleted, so that the next class meets the same tables.
   Throughout, each worker's memory is sampled and each scenario's CPU per request (workers' and
   PostgreSQL's utime + stime) and PostgreSQL's blocks read from outside its buffers are metered.
5. For each class the tables, the service/floor ratios by req/s and by CPU per request, memory; then issue
   5's targets with each class's figure, met or missed; everything written to bench/results/latest.json
   under "worker_classes". Servers are stopped and the throwaway database removed on any exit.

Default budgets: each scenario runs C = 8 clients for 1 s of warm-up, then 10 s or 20,000 requests,
whichever ends first (--quick: 2 s, 5,000); each group scenario 10 repetitions after an untimed one
(--quick: 3); the cursor walk to 90 % of the users at most 60 s. With the defaults both classes come to
about 8 minutes on 2 cores (30 timed scenarios of 11 s, groups, seeding, server starts), plus the cursor
walks once the service pages by cursor; --quick takes 2 to 3.
"""

import argparse
import contextlib
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from urllib.parse import quote

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(1, REPO)  # app, models, scim, tests.pg; bench/ itself is sys.path[0]

from sqlalchemy import text  # noqa: E402

import report  # noqa: E402
import seed  # noqa: E402
import servers  # noqa: E402
from app import create_app  # noqa: E402
from client import Client, print_header, print_row, run_concurrent  # noqa: E402
from cursors import measure_cursor  # noqa: E402
from models import db  # noqa: E402
from scenarios import (  # noqa: E402
    FLOOR_SCENARIOS,
    NEW_USER_PREFIX,
    USER_SCENARIOS,
    WRITE_SCENARIOS,
    Dataset,
    lookup,
    measure_groups,
    measure_users,
)
from scim.tokens import create_token  # noqa: E402
from tests.pg import free_port, throwaway_postgres  # noqa: E402

PUT_SAMPLE = 20000  # users whose stored document the PUT scenario sends back


def options(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="SCIM load benchmark: the service against its floor")
    parser.add_argument("--worker-class", choices=("sync", "gthread", "both"), default="both",
                        help="gunicorn worker class of both servers; both: sync, then gthread (default)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers, for both servers")
    parser.add_argument("--users", type=int, help="users to seed (default 100000; --quick: 5000)")
    parser.add_argument("--groups", type=int, default=100, help="ordinary groups; every user is in one")
    parser.add_argument("--tenants", type=int, default=10,
                        help="tenants the users are spread over, each with its own token (default 10; 1: every "
                             "user in the default tenant)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients, for each class")
    parser.add_argument("--seconds", type=float, help="time budget per scenario (default 10; --quick: 2)")
    parser.add_argument("--max-requests", type=int, help="request budget per scenario (default 20000)")
    parser.add_argument("--reps", type=int, help="repetitions of each group scenario (default 10)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few users, short scenarios")
    parser.add_argument("--shared-buffers", default="1GB",
                        help="the throwaway PostgreSQL's shared_buffers (default 1GB: the seeded tables, their "
                             "indexes and the run's audit rows fit; PostgreSQL's own default is 128MB)")
    parser.add_argument("--output", default=os.path.join(BENCH, "results", "latest.json"))
    args = parser.parse_args(argv)
    args.users = args.users or (5000 if args.quick else 100000)
    args.seconds = args.seconds or (2 if args.quick else 10)
    args.max_requests = args.max_requests or (5000 if args.quick else 20000)
    args.reps = args.reps or (3 if args.quick else 10)
    args.worker_classes = ["sync", "gthread"] if args.worker_class == "both" else [args.worker_class]
    if args.tenants < 1 or args.groups % args.tenants:
        parser.error("--groups must be a multiple of --tenants (each tenant has as many ordinary groups)")
    return args


def serving(args, worker_class: str) -> servers.Serving:
    return servers.Serving(worker_class, args.workers, args.threads if worker_class == "gthread" else 1)


def machine() -> dict:
    with open("/proc/meminfo") as meminfo:
        total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    import gunicorn
    return {"nproc": os.cpu_count(), "cpu": model, "memory_gb": round(total_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version(), "gunicorn": gunicorn.__version__,
            "postgresql": db.session.scalar(text("SHOW server_version")),
            "shared_buffers": db.session.scalar(text("SHOW shared_buffers"))}


def neighbours() -> dict:
    """What else is running: the load average and any pytest process (other developers' test runs)."""
    pytests = 0
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                pytests += b"pytest" in cmdline.read()
    return {"loadavg_1m": os.getloadavg()[0], "pytest_processes": pytests}


def source_state() -> dict:
    """The commit measured, and the files that differed from it (the working tree is what gunicorn serves)."""
    git = lambda *a: subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()  # noqa: E731
    return {"commit": git("rev-parse", "HEAD"), "changed": git("status", "--porcelain").splitlines()}


def migrate(url: str) -> None:
    subprocess.run([sys.executable, "manage.py", "db", "upgrade"], cwd=REPO, check=True, capture_output=True,
                   env={**os.environ, "DATABASE_URL": url})


def timed(log: dict, what: str, step, *args):
    """step(*args), its duration printed and kept in `log` under `what`."""
    started = time.perf_counter()
    result = step(*args)
    log[what] = round(time.perf_counter() - started, 1)
    print(f"  {what}: {log[what]} s", flush=True)
    return result


def dataset(plan: seed.GroupPlan, groups: dict) -> Dataset:
    ids = [seed.user_id(i) for i in range(plan.users)]
    names = [seed.user_name(i) for i in range(plan.users)]
    one_group = plan.one_group_users()
    put_sample = one_group[::max(1, len(one_group) // PUT_SAMPLE)]
    tenants = [plan.tenant_of(i) for i in range(plan.users)]
    # The group PATCHes add users of the special groups' tenant (the default one) that are in none of them.
    addable = [ids[i] for i in one_group if tenants[i] == 0]
    data = Dataset(names, ids, {ids[i]: seed.stored_user(i)[0] for i in put_sample}, plan.users,
                   groups, {role: len(members) for role, members in plan.special().items()},
                   addable_ids=addable, batch=min(plan.batch, len(addable) // 2),
                   lookup_names=[names[i] for i in one_group], lookup_tenants=[tenants[i] for i in one_group],
                   tenants=tenants, tenant_sizes=plan.tenant_sizes())
    return data


def verify(base: str, tokens: list[str], plan: seed.GroupPlan, groups: dict | None) -> None:
    """The API answers a seeded user as seeded, with its tenant's token: found by a differently cased
    userName, with its stored document. For the service (groups given) also its group, its tenant's user
    total and a group's members (with the default tenant's token)."""
    one_group = plan.one_group_users()
    i = one_group[len(one_group) // 3]
    tenant = plan.tenant_of(i)
    client = Client(base, tokens[tenant])
    expected, active = seed.stored_user(i)
    found = client.json("GET", "/Users?filter=" + quote(f'userName eq "{seed.user_name(i).upper()}"', safe=""))
    got = found["Resources"][0] if found.get("Resources") else {}
    problems = [key for key, value in expected.items() if got.get(key) != value]
    problems += ["id"] * (got.get("id") != seed.user_id(i)) + ["active"] * (got.get("active") is not active)
    if groups is not None:
        got = client.json("GET", f"/Users/{seed.user_id(i)}")
        in_groups = [g["value"] for g in got.get("groups", [])]
        problems += ["groups"] * (in_groups != [seed.group_id(plan.ordinary_group(i))])
        total = client.json("GET", "/Users?count=0")["totalResults"]
        problems += ["totalResults"] * (total != plan.tenant_sizes()[tenant])
        client.close()
        client = Client(base, tokens[0])
        members = client.json("GET", f"/Groups/{groups['get-5000']}").get("members", [])
        problems += ["members"] * (len(members) != plan.mid)
    client.close()
    if problems:
        raise SystemExit(f"the seeded data does not come back through {base}: {problems}\n{got}")


def blocks_read() -> int:
    """Blocks the bench database has read from outside shared_buffers since it started (the statistics a
    backend reports at most a second late: a scenario runs ten)."""
    db.session.execute(text("SELECT pg_stat_clear_snapshot()"))
    found = db.session.scalar(text("SELECT blks_read FROM pg_stat_database WHERE datname = current_database()"))
    db.session.rollback()
    return int(found or 0)


class Server:
    """One gunicorn-served app under measurement: where it answers, its tokens (one per tenant), its memory
    watch and CPU meter."""

    def __init__(self, stack: contextlib.ExitStack, who: str, app: str, env: dict, how: servers.Serving,
                 workdir: str, postmaster: int | None, tokens: list[str], extra: tuple = ()):
        port = free_port()
        self.who, self.base, self.tokens = who, f"http://127.0.0.1:{port}/scim/v2", tokens
        log = os.path.join(workdir, f"{who}-{how.worker_class}.log")
        master = stack.enter_context(servers.gunicorn(app, port, how, env, log, extra))
        self.memory = stack.enter_context(servers.MemoryWatch(master.pid))
        self.meter = servers.CpuMeter({"workers": master.pid, "postgres": postmaster}, blocks_read)
        print(f"{who}: {app} under gunicorn, {how}, {self.base}", flush=True)

    def keep(self, into: list):
        """on_result for the scenarios: the row, with what else ran on the machine, kept and printed."""
        def record(result):
            into.append({**result.summary(), **neighbours()})
            print_row(into[-1], label=f" ({self.who})")
        return record


class Bench:
    """What every worker class is measured with: the database, the token, the budgets."""

    def __init__(self, args, plan: seed.GroupPlan, url: str, workdir: str):
        self.args, self.plan, self.workdir = args, plan, workdir
        # A stored token per tenant, as each customer's IdP is given (`manage.py tokens create --tenant`), not
        # the bootstrap token. The floor takes the tenant's id as its token (bench/baseline.py).
        self.tokens = [create_token(f"bench-{secrets.token_hex(4)}", tenant_id=tenant_id)[1]
                       for tenant_id in plan.tenant_ids]
        self.floor_tokens = [str(tenant_id) for tenant_id in plan.tenant_ids]
        self.postmaster = servers.postmaster_of(db.session.scalar(text("SELECT pg_backend_pid()")))
        self.env = {"DATABASE_URL": url, "SCIM_ACCESS_LOG": "0"}
        self.budget = (args.clients, args.seconds, args.max_requests)

    def service(self, stack: contextlib.ExitStack, how: servers.Serving) -> Server:
        return Server(stack, "service", "app:create_app()", self.env, how, self.workdir, self.postmaster,
                      self.tokens)

    def floor(self, stack: contextlib.ExitStack, how: servers.Serving) -> Server:
        return Server(stack, "floor", "baseline:app", {"DATABASE_URL": self.env["DATABASE_URL"]}, how,
                      self.workdir, self.postmaster, self.floor_tokens, extra=("--pythonpath", BENCH))

    def lookups(self, how: servers.Serving, users: range) -> tuple[dict, dict]:
        """Lookups while the database holds only the first users, on a service and a floor started for them:
        the floor's own change from these to the lookups at every user tells how much of the service's is
        the machine's (the two are measured minutes apart)."""
        rows, floor_rows = [], []
        names, tenants = [seed.user_name(i) for i in users], [self.plan.tenant_of(i) for i in users]
        name = f"lookup_at_{len(names)}"
        with contextlib.ExitStack() as stack:
            service, floor = self.service(stack, how), self.floor(stack, how)
            print_header()
            service.keep(rows)(run_concurrent(name, service.base, self.tokens, lookup(names, tenants),
                                              *self.budget, meter=service.meter))
            floor.keep(floor_rows)(run_concurrent(name, floor.base, self.floor_tokens, lookup(names, tenants),
                                                  *self.budget, meter=floor.meter))
        return rows[0], floor_rows[0]

    def measure(self, how: servers.Serving, data: Dataset, groups: dict, check: bool) -> dict:
        """Every scenario with this worker class: each shared one on the service and at once on the floor,
        then those only the service answers. `check`: first verify that both return the seeded data."""
        found = {"serving": {**vars(how), "described": str(how)}, "service": [], "floor": []}
        tag = how.worker_class
        with contextlib.ExitStack() as stack:
            service, floor = self.service(stack, how), self.floor(stack, how)
            if check:
                verify(service.base, self.tokens, self.plan, groups)
                verify(floor.base, self.floor_tokens, self.plan, None)
            print_header()

            def both(names):
                for name in names:
                    for server in (service, floor):
                        measure_users(server.base, server.tokens, data, [name], *self.budget,
                                      tag=f"{server.who}-{tag}", on_result=server.keep(found[server.who]),
                                      meter=server.meter)

            def service_only(names):
                measure_users(service.base, self.tokens, data, names, *self.budget, tag=f"service-{tag}",
                              on_result=service.keep(found["service"]), meter=service.meter)
            # Every read before any write, so that the pages compared with the first page read the same table
            # (the writes add users and leave row versions behind that each page's count then visits).
            reads = [name for name in FLOOR_SCENARIOS if name not in WRITE_SCENARIOS]
            both(reads)
            service_only([name for name in USER_SCENARIOS if name not in FLOOR_SCENARIOS + WRITE_SCENARIOS])
            # Cursor pages and the group scenarios: the largest tenant's (the default one, index 0).
            cursor = measure_cursor(service.base, self.tokens[0], data.tenant_sizes[0], *self.budget,
                                    meter=service.meter)
            if isinstance(cursor, str):
                print(f"page_cursor: not measured: {cursor}", flush=True)
            else:
                service.keep(found["service"])(cursor)
            found["cursor"] = cursor if isinstance(cursor, str) else "measured"
            both([name for name in FLOOR_SCENARIOS if name not in reads])
            service_only([name for name in USER_SCENARIOS if name not in FLOOR_SCENARIOS and name in WRITE_SCENARIOS])
            measure_groups(service.base, self.tokens[0], data, self.args.reps, on_result=service.keep(found["service"]))
        found["service_memory"], found["floor_memory"] = service.memory.report(), floor.memory.report()
        return found


def seed_rest(plan: seed.GroupPlan, small: int, log: dict) -> dict:
    print(f"seeding users {small}..{plan.users} and the groups", flush=True)
    timed(log, f"users {small}..{plan.users}", seed.seed_users, plan, small, plan.users)
    timed(log, f"memberships {small}..{plan.users}", seed.link_ordinary, plan, small, plan.users)
    groups = timed(log, "special groups", seed.seed_special_groups, plan)
    timed(log, "VACUUM ANALYZE", seed.vacuum_analyze)
    log["counts"] = seed.counts()
    return groups


def measure(args, plan: seed.GroupPlan, url: str, workdir: str, run: dict) -> None:
    """Lookups at 10,000 users for each worker class; the rest seeded; then each class measured in full, and
    the users its POST scenarios created deleted before the next."""
    bench = Bench(args, plan, url, workdir)
    small = min(10000, plan.users // 10)
    at_small = {name: bench.lookups(serving(args, name), range(small))
                for name in args.worker_classes}
    groups = seed_rest(plan, small, run["seeding"])
    data = dataset(plan, groups)
    for number, name in enumerate(args.worker_classes):
        print(f"\n=== worker class {name}", flush=True)
        found = run["worker_classes"][name] = bench.measure(serving(args, name), data, groups, check=number == 0)
        found["service"].insert(0, at_small[name][0])
        found["floor"].insert(0, at_small[name][1])
        found["created_users_deleted"] = seed.delete_users_named(NEW_USER_PREFIX)
        seed.vacuum_analyze()
        found["ratios"] = report.ratios(found["service"], found["floor"])
        found["cpu_ratios"] = report.cpu_ratios(found["service"], found["floor"])
        found["targets"] = report.targets(found, f"lookup_at_{small}", plan.users)


def main(argv=None) -> None:
    args = options(argv)
    plan = seed.GroupPlan(args.users, args.groups, mid=min(5000, args.users // 4), big=min(10000, args.users // 2),
                          batch=min(1000, args.users // 10), tenants=args.tenants)
    small = min(10000, args.users // 10)
    run = {"command": " ".join(["bench/run.py"] + (argv if argv is not None else sys.argv[1:])),
           "options": vars(args), "seeding": {}, "worker_classes": {}, "started": time.strftime("%FT%T%z")}
    workdir = tempfile.mkdtemp(prefix="scim-bench-")
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        url = os.environ.get("DATABASE_URL") or stack.enter_context(
            throwaway_postgres("scim_bench", shared_buffers=args.shared_buffers))
        migrate(url)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url})
        stack.enter_context(app.app_context())
        stack.callback(db.engine.dispose)
        if seed.counts()["users"]:
            raise SystemExit("the database already holds users: point DATABASE_URL at an empty database")
        run["machine"], run["source"], run["neighbours_at_start"] = machine(), source_state(), neighbours()
        print(f"seeding users 0..{small} (of {args.users}); logs in {workdir}", flush=True)
        log = run["seeding"]
        timed(log, "tenants", seed.seed_tenants, plan)
        timed(log, "ordinary groups", seed.seed_ordinary_groups, plan)
        timed(log, f"users 0..{small}", seed.seed_users, plan, 0, small)
        timed(log, f"memberships 0..{small}", seed.link_ordinary, plan, 0, small)
        seed.vacuum_analyze()
        measure(args, plan, url, workdir, run)
    run["neighbours_at_end"] = neighbours()
    run["minutes"] = round((time.monotonic() - began) / 60, 1)
    report.print_report(run)
    report.write_json(run, args.output)
    print(f"\nwritten: {os.path.relpath(args.output, REPO)} ({run['minutes']} minutes)")


if __name__ == "__main__":
    main()
