"""`make bench`: the service and the floor, measured in one go against the same PostgreSQL.

    .venv/bin/python bench/run.py [--quick] [--users N] [--clients C] [--seconds S] [--workers W]

1. A throwaway PostgreSQL (tests/pg.py), or the empty database DATABASE_URL names; migrations applied.
2. The first 10,000 users seeded (bench/seed.py); the service started under gunicorn (W sync workers on a
   free loopback port); lookups measured at 10,000 users.
3. The rest of the users and the groups seeded; VACUUM ANALYZE; the API checked to return a seeded user as
   seeded; the floor (bench/baseline.py) started the same way and checked the same way.
4. Each operation both answer measured on the service, then at once on the floor: pairs back to back, so
   that other work on the machine weighs on both alike. Then the scenarios only the service answers.
   Throughout, each worker's memory is sampled and each scenario's CPU per request is metered.
5. The tables, the service/floor ratios and issue 5's targets printed; everything written to
   bench/results/latest.json. Servers are stopped and the throwaway database removed on any exit.
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
from models import db  # noqa: E402
from scenarios import FLOOR_SCENARIOS, USER_SCENARIOS, Dataset, lookup, measure_groups, measure_users  # noqa: E402
from tests.pg import free_port, throwaway_postgres  # noqa: E402

PUT_SAMPLE = 20000  # users whose stored document the PUT scenario sends back


def options(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="SCIM load benchmark: the service against its floor")
    parser.add_argument("--users", type=int, help="users to seed (default 100000; --quick: 5000)")
    parser.add_argument("--groups", type=int, default=100, help="ordinary groups; every user is in one")
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients")
    parser.add_argument("--seconds", type=float, help="time budget per scenario (default 10; --quick: 3)")
    parser.add_argument("--max-requests", type=int, help="request budget per scenario (default 20000)")
    parser.add_argument("--reps", type=int, help="repetitions of each group scenario (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers, for both servers")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few users, short scenarios")
    parser.add_argument("--output", default=os.path.join(BENCH, "results", "latest.json"))
    args = parser.parse_args(argv)
    args.users = args.users or (5000 if args.quick else 100000)
    args.seconds = args.seconds or (3 if args.quick else 10)
    args.max_requests = args.max_requests or (5000 if args.quick else 20000)
    args.reps = args.reps or (3 if args.quick else 10)
    return args


def machine() -> dict:
    with open("/proc/meminfo") as meminfo:
        total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    import gunicorn
    return {"nproc": os.cpu_count(), "cpu": model, "memory_gb": round(total_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version(), "gunicorn": gunicorn.__version__,
            "postgresql": db.session.scalar(text("SHOW server_version"))}


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
    data = Dataset(names, ids, {ids[i]: seed.stored_user(i)[0] for i in put_sample}, plan.users,
                   groups, {role: len(members) for role, members in plan.special().items()},
                   addable_ids=ids[:len(one_group)], batch=plan.batch, lookup_names=names[:len(one_group)])
    return data


def verify(base: str, token: str, plan: seed.GroupPlan, groups: dict | None) -> None:
    """The API answers a seeded user as seeded: found by a differently cased userName, with its stored
    document. For the service (groups given) also its group, the user total and a group's members."""
    i = len(plan.one_group_users()) // 3
    client = Client(base, token)
    expected, active = seed.stored_user(i)
    found = client.json("GET", "/Users?filter=" + quote(f'userName eq "{seed.user_name(i).upper()}"', safe=""))
    got = found["Resources"][0] if found.get("Resources") else {}
    problems = [key for key, value in expected.items() if got.get(key) != value]
    problems += ["id"] * (got.get("id") != seed.user_id(i)) + ["active"] * (got.get("active") is not active)
    if groups is not None:
        got = client.json("GET", f"/Users/{seed.user_id(i)}")
        problems += ["groups"] * ([g["value"] for g in got.get("groups", [])] != [seed.group_id(i % plan.ordinary)])
        problems += ["totalResults"] * (client.json("GET", "/Users?count=0")["totalResults"] != plan.users)
        members = client.json("GET", f"/Groups/{groups['get-5000']}").get("members", [])
        problems += ["members"] * (len(members) != plan.mid)
    client.close()
    if problems:
        raise SystemExit(f"the seeded data does not come back through {base}: {problems}\n{got}")


class Server:
    """One gunicorn-served app under measurement: where it answers, its memory watch and CPU meter."""

    def __init__(self, stack: contextlib.ExitStack, who: str, app: str, env: dict, args, workdir: str,
                 postmaster: int | None, extra: tuple = ()):
        port = free_port()
        self.who, self.base, self.token = who, f"http://127.0.0.1:{port}/scim/v2", env.get("SCIM_BEARER_TOKEN", "-")
        serving = servers.Serving("sync", args.workers)
        master = stack.enter_context(servers.gunicorn(app, port, serving, env,
                                                      os.path.join(workdir, f"{who}.log"), extra))
        self.memory = stack.enter_context(servers.MemoryWatch(master.pid))
        self.meter = servers.CpuMeter({"workers": master.pid, "postgres": postmaster})
        print(f"{who}: {app} under gunicorn, {serving}, {self.base}", flush=True)


def seed_rest(plan: seed.GroupPlan, small: int, log: dict) -> dict:
    print(f"seeding users {small}..{plan.users} and the groups", flush=True)
    timed(log, f"users {small}..{plan.users}", seed.seed_users, small, plan.users)
    timed(log, f"memberships {small}..{plan.users}", seed.link_ordinary, plan, small, plan.users)
    groups = timed(log, "special groups", seed.seed_special_groups, plan)
    timed(log, "VACUUM ANALYZE", seed.vacuum_analyze)
    log["counts"] = seed.counts()
    return groups


def measure(args, plan: seed.GroupPlan, url: str, workdir: str, run: dict, stack: contextlib.ExitStack) -> None:
    """Lookups at 10,000 users; the rest seeded; then each shared scenario on the service and at once on the
    floor (pairs measured back to back, so that other work on the machine weighs on both alike); then the
    scenarios only the service answers."""
    postmaster = servers.postmaster_of(db.session.scalar(text("SELECT pg_backend_pid()")))
    token = secrets.token_urlsafe(32)
    env = {"DATABASE_URL": url, "SCIM_BEARER_TOKEN": token, "SCIM_ACCESS_LOG": "0"}
    service = Server(stack, "service", "app:create_app()", env, args, workdir, postmaster)
    small = min(10000, plan.users // 10)
    budget = (args.clients, args.seconds, args.max_requests)

    def keep(server: Server, into: list):
        def record(result):
            into.append({**result.summary(), **neighbours()})
            print_row(into[-1], label=f" ({server.who})")
        return record

    print_header()
    names = [seed.user_name(i) for i in range(small)]
    keep(service, run["service"])(run_concurrent(f"lookup_at_{small}", service.base, token, lookup(names), *budget,
                                                 meter=service.meter))
    groups = seed_rest(plan, small, run["seeding"])
    verify(service.base, token, plan, groups)
    floor = Server(stack, "floor", "baseline:app", {"DATABASE_URL": url}, args, workdir, postmaster,
                   extra=("--pythonpath", BENCH))
    verify(floor.base, "-", plan, None)
    data = dataset(plan, groups)
    print_header()
    for name in FLOOR_SCENARIOS:
        for server, into in ((service, run["service"]), (floor, run["floor"])):
            measure_users(server.base, server.token, data, [name], *budget, tag=server.who,
                          on_result=keep(server, into), meter=server.meter)
    rest = [name for name in USER_SCENARIOS if name not in FLOOR_SCENARIOS]
    measure_users(service.base, token, data, rest, *budget, tag="service", on_result=keep(service, run["service"]),
                  meter=service.meter)
    measure_groups(service.base, token, data, args.reps, on_result=keep(service, run["service"]))
    run["memory"] = {"service": service.memory, "floor": floor.memory}


def main(argv=None) -> None:
    args = options(argv)
    plan = seed.GroupPlan(args.users, args.groups, mid=min(5000, args.users // 4), big=min(10000, args.users // 2),
                          batch=min(1000, args.users // 10))
    small = min(10000, args.users // 10)
    run = {"command": " ".join(["bench/run.py"] + (argv if argv is not None else sys.argv[1:])),
           "options": vars(args), "service": [], "floor": [], "seeding": {}, "started": time.strftime("%FT%T%z")}
    workdir = tempfile.mkdtemp(prefix="scim-bench-")
    with contextlib.ExitStack() as stack:
        url = os.environ.get("DATABASE_URL") or stack.enter_context(throwaway_postgres("scim_bench"))
        migrate(url)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url})
        stack.enter_context(app.app_context())
        stack.callback(db.engine.dispose)
        if seed.counts()["users"]:
            raise SystemExit("the database already holds users: point DATABASE_URL at an empty database")
        run["machine"], run["source"], run["neighbours_at_start"] = machine(), source_state(), neighbours()
        print(f"seeding users 0..{small} (of {args.users}); logs in {workdir}", flush=True)
        log = run["seeding"]
        timed(log, "ordinary groups", seed.seed_ordinary_groups, plan)
        timed(log, f"users 0..{small}", seed.seed_users, 0, small)
        timed(log, f"memberships 0..{small}", seed.link_ordinary, plan, 0, small)
        seed.vacuum_analyze()
        measure(args, plan, url, workdir, run, stack)
    run["service_memory"] = run["memory"]["service"].report()
    run["floor_memory"] = run.pop("memory")["floor"].report()
    run["neighbours_at_end"] = neighbours()
    run["ratios"] = report.ratios(run["service"], run["floor"])
    run["cpu_ratios"] = report.cpu_ratios(run["service"], run["floor"])
    run["targets"] = report.targets(run["service"], run["ratios"], run["service_memory"], f"lookup_at_{small}")
    report.print_report(run)
    report.write_json(run, args.output)
    print(f"\nwritten: {os.path.relpath(args.output, REPO)}")


if __name__ == "__main__":
    main()
