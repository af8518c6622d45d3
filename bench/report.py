"""The figures of one run: for each worker class the tables, the service/floor ratios by req/s and by CPU per
request, and memory; then issue 5's targets, met or missed, with each class's figure side by side; JSON."""

import json
import os
import sys

from client import print_header, print_row

# Issue 5's targets hold for 100,000 users, 2 workers and PostgreSQL, as ratios to the floor measured in the
# same run with the same worker class, for both worker classes.
TARGET_USERS, TARGET_WORKERS = 100000, 2
PATCH_P50_MS, GROUP_GET_P50_MS, RSS_MB = 150, 100, 150


def by_name(rows: list[dict]) -> dict:
    return {row["scenario"]: row for row in rows}


def cpu_ms(row: dict | None) -> float | None:
    """Workers' plus PostgreSQL's CPU milliseconds per request."""
    if not row or row.get("cpu_ms_workers") is None:
        return None
    return row["cpu_ms_workers"] + (row.get("cpu_ms_postgres") or 0)


def quotient(a, b) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def ratios(service: list[dict], floor: list[dict]) -> dict:
    """Service req/s over floor req/s for every operation both answered."""
    ours, theirs = by_name(service), by_name(floor)
    return {name: quotient(ours[name]["rps"], theirs[name]["rps"]) for name in theirs if name in ours}


def cpu_ratios(service: list[dict], floor: list[dict]) -> dict:
    """Floor CPU per request over service CPU per request (workers + PostgreSQL): the same ratio as
    req/s would be on a machine doing nothing else, and steadier than req/s when it is not."""
    ours, theirs = by_name(service), by_name(floor)
    return {name: quotient(cpu_ms(theirs[name]), cpu_ms(ours[name])) for name in theirs if name in ours}


def check(name: str, value, bound, at_least: bool, cpu=None, note: str = "") -> dict:
    """One target: met is None when nothing was measured."""
    met = None if value is None else value >= bound if at_least else value < bound
    return {"target": name, "value": value, "bound": ("≥ " if at_least else "< ") + str(bound), "met": met,
            "cpu_ratio": cpu, "note": note}


def targets(found: dict, small_lookup: str, users: int) -> list[dict]:
    """Issue 5's targets for one worker class; `found` holds its service and floor rows and memory."""
    ours, floor = by_name(found["service"]), by_name(found["floor"])
    rps = lambda rows, name: rows[name]["rps"] if name in rows else None  # noqa: E731

    def to_floor(label: str, name: str, bound: float, floor_name: str | None = None) -> dict:
        theirs = floor.get(floor_name or name)
        return check(label, quotient(rps(ours, name), theirs and theirs["rps"]), bound, True,
                     cpu=quotient(cpu_ms(theirs), cpu_ms(ours.get(name))))

    def within(label: str, name: str, of: str, bound: float, note: str = "") -> dict:
        return check(label, quotient(rps(ours, name), rps(ours, of)), bound, True,
                     cpu=quotient(cpu_ms(ours.get(of)), cpu_ms(ours.get(name))), note=note)

    patches = {name: row["p50_ms"] for name, row in ours.items() if name.startswith("group_patch_")}
    slowest = max(patches, key=patches.get, default=None)
    peak = max((worker["peak_hwm_mb"] for worker in found["service_memory"].values()), default=None)
    group_get = ours.get("get_group_5000")
    return [
        to_floor("Okta lookup ÷ floor", "lookup", 0.7),
        to_floor("GET /Users/{id} ÷ floor", "get_user", 0.7),
        to_floor("POST /Users ÷ floor", "create_user", 0.6),
        to_floor("PUT /Users/{id} ÷ floor's POST", "replace_user", 0.5, "create_user"),
        to_floor("PATCH deactivate ÷ floor's POST", "deactivate_user", 0.5, "create_user"),
        to_floor("first page of 100 ÷ floor", "page_first", 0.6),
        within("deep page (startIndex) ÷ first page", "page_deep", "page_first", 0.9),
        within("cursor page ÷ first page", "page_cursor", "page_first", 0.95,
               note="" if "page_cursor" in ours else found.get("cursor", "")),
        within(f"lookup at {users:,} ÷ at {small_lookup.rsplit('_', 1)[1]} users", "lookup", small_lookup, 0.9,
               note=f"the floor's own: {quotient(rps(floor, 'lookup'), rps(floor, small_lookup))}"),
        check("group PATCH ±1,000 members p50 ms (slowest)", patches.get(slowest), PATCH_P50_MS, False,
              note=slowest or ""),
        check("GET group of 5,000, 1 client, p50 ms", group_get and group_get["p50_ms"], GROUP_GET_P50_MS, False),
        check("peak RSS per worker MB (service)", peak, RSS_MB, False),
    ]


def print_ratios(found: dict, out) -> None:
    """req/s and CPU ms per request (workers + PostgreSQL) side by side; each ratio says how close the service
    comes to the floor (req/s: service's ÷ floor's; CPU: floor's ÷ service's). Last, the busiest worker's
    share of the workers' CPU, service and floor (0.5: even over 2 workers; 1: one worker did it all)."""
    ours, theirs = by_name(found["service"]), by_name(found["floor"])
    figure = lambda value, spec: f"{'-' if value is None else format(value, spec)}"  # noqa: E731
    out.write(f"{'scenario':<28}{'req/s service':>14}{'floor':>9}{'ratio':>8}"
              f"{'CPU ms/req service':>20}{'floor':>9}{'ratio':>8}{'busiest worker':>16}{'floor':>7}\n")
    for name in (name for name in theirs if name in ours):
        mine, floor = ours[name], theirs[name]
        out.write(f"{name:<28}{mine['rps']:>14.1f}{floor['rps']:>9.1f}{figure(found['ratios'].get(name), '.3f'):>8}"
                  f"{figure(cpu_ms(mine), '.2f'):>20}{figure(cpu_ms(floor), '.2f'):>9}"
                  f"{figure(found['cpu_ratios'].get(name), '.3f'):>8}"
                  f"{figure(mine.get('busiest_worker_share'), '.2f'):>16}"
                  f"{figure(floor.get('busiest_worker_share'), '.2f'):>7}\n")


def print_class(worker_class: str, found: dict, out) -> None:
    out.write(f"\n=== {worker_class}: {found['serving']['described']}\n")
    for title, key in (("service", "service"), ("floor (bench/baseline.py)", "floor")):
        out.write(f"\n== {worker_class}: {title}\n")
        print_header(out)
        for row in found[key]:
            print_row(row, out)
    if found.get("cursor", "measured") != "measured":
        out.write(f"page_cursor: not measured: {found['cursor']}\n")
    out.write(f"\n== {worker_class}: service ÷ floor (CPU: workers + PostgreSQL, its ratio floor's ÷ service's;"
              " busiest worker: its share of the workers' CPU)\n")
    print_ratios(found, out)
    out.write(f"\n== {worker_class}: memory per worker (MB): peak (VmHWM), largest VmRSS sampled, VmRSS when"
              " first seen\n")
    for who in ("service", "floor"):
        for pid, sizes in found[f"{who}_memory"].items():
            out.write(f"{who:<10}pid {pid:<10}{sizes['peak_hwm_mb']:>8.1f}{sizes['max_rss_mb']:>8.1f}"
                      f"{sizes['first_rss_mb']:>8.1f}\n")


def cell(target: dict) -> str:
    if target["met"] is None:
        return "not measured"
    ratio = target["bound"].startswith("≥")
    text = f"{'met' if target['met'] else 'MISSED'} {format(target['value'], '.3f') if ratio else target['value']}"
    return text + (f" (CPU {target['cpu_ratio']:.3f})" if target.get("cpu_ratio") is not None else "")


def print_targets(run: dict, out) -> None:
    classes = run["worker_classes"]
    options = run["options"]
    tenants = options.get("tenants", 1)
    out.write(f"\n== issue 5 targets: {TARGET_USERS:,} users, {TARGET_WORKERS} workers, PostgreSQL; ratios to the"
              " floor of the same run and worker class (CPU: the same ratio by CPU per request)\n")
    out.write(f"   users spread over {tenants} tenant{'s' * (tenants > 1)}, each request with its tenant's token\n")
    if (options["users"], options["workers"]) != (TARGET_USERS, TARGET_WORKERS):
        out.write(f"   this run: {options['users']:,} users, {options['workers']} workers: the figures show the"
                  " shape, they do not test the targets\n")
    out.write(f"{'target':<46}{'bound':<8}" + "".join(f"{name:<30}" for name in classes).rstrip() + "\n")
    for lines in zip(*(found["targets"] for found in classes.values()), strict=True):
        line = f"{lines[0]['target']:<46}{lines[0]['bound']:<8}" + "".join(f"{cell(t):<30}" for t in lines)
        notes = {name: t["note"] for name, t in zip(classes, lines, strict=True) if t["note"]}
        if len(set(notes.values())) > 1:
            line += "; ".join(f"{name}: {note}" for name, note in notes.items())
        elif notes:
            line += next(iter(notes.values()))
        out.write(line.rstrip() + "\n")


def print_report(run: dict, out=sys.stdout) -> None:
    for worker_class, found in run["worker_classes"].items():
        print_class(worker_class, found, out)
    print_targets(run, out)
    out.flush()


def write_json(run: dict, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as out:
        json.dump(run, out, indent=2, default=str)
