"""The figures of one run: the tables, the service/floor ratios, the issue's targets met or missed, JSON."""

import json
import os
import sys

from client import print_header, print_row

# Issue 5's targets: (name, how it is computed, the bound, "min" = at least / "max" = under)
RATIO_TARGETS = {"lookup": 0.7, "get_user": 0.7, "create_user": 0.6, "page_first": 0.5}
PATCH_P50_MS = 150
GROUP_GET_P50_MS = 100
DEEP_PAGE_RATIO = 0.9
SCALE_RATIO = 0.9
RSS_MB = 150


def by_name(rows: list[dict]) -> dict:
    return {row["scenario"]: row for row in rows}


def ratios(service: list[dict], floor: list[dict]) -> dict:
    """Service req/s over floor req/s for every operation both answered."""
    ours, theirs = by_name(service), by_name(floor)
    return {name: round(ours[name]["rps"] / theirs[name]["rps"], 3)
            for name in theirs if name in ours and theirs[name]["rps"]}


def cpu_ms(row: dict) -> float | None:
    if row.get("cpu_ms_workers") is None:
        return None
    return row["cpu_ms_workers"] + (row.get("cpu_ms_postgres") or 0)


def cpu_ratios(service: list[dict], floor: list[dict]) -> dict:
    """Floor CPU per request over service CPU per request (workers + PostgreSQL): the same ratio as
    req/s would be on a machine doing nothing else, and steadier than req/s when it is not."""
    ours, theirs = by_name(service), by_name(floor)
    return {name: round(cpu_ms(theirs[name]) / cpu_ms(ours[name]), 3)
            for name in theirs if name in ours and cpu_ms(ours[name]) and cpu_ms(theirs[name]) is not None}


def check(name: str, value, bound, at_least: bool) -> dict:
    met = value is not None and (value >= bound if at_least else value < bound)
    return {"target": name, "value": value, "bound": ("≥ " if at_least else "< ") + str(bound), "met": met}


def targets(service: list[dict], floor_ratios: dict, memory: dict, small_lookup: str) -> list[dict]:
    rows = by_name(service)
    found = [check(f"{name} ÷ floor", floor_ratios.get(name), bound, True) for name, bound in RATIO_TARGETS.items()]
    if "page_deep" in rows and "page_first" in rows and rows["page_first"]["rps"]:
        found.append(check("page_deep ÷ page_first (service)",
                           round(rows["page_deep"]["rps"] / rows["page_first"]["rps"], 3), DEEP_PAGE_RATIO, True))
    for name, row in rows.items():
        if name.startswith("group_patch_"):
            found.append(check(f"{name} p50 ms", row["p50_ms"], PATCH_P50_MS, False))
    if "get_group_5000" in rows:
        found.append(check("get_group_5000 p50 ms", rows["get_group_5000"]["p50_ms"], GROUP_GET_P50_MS, False))
    if small_lookup in rows and "lookup" in rows and rows[small_lookup]["rps"]:
        found.append(check(f"lookup ÷ {small_lookup}", round(rows["lookup"]["rps"] / rows[small_lookup]["rps"], 3),
                           SCALE_RATIO, True))
    peak = max((worker["peak_hwm_mb"] for worker in memory.values()), default=None)
    found.append(check("peak RSS per worker MB", peak, RSS_MB, False))
    return found


def print_report(run: dict, out=sys.stdout) -> None:
    for title, key in (("service", "service"), ("floor (bench/baseline.py)", "floor")):
        out.write(f"\n== {title}\n")
        print_header(out)
        for row in run[key]:
            print_row(row, out)
    out.write(f"\n== service ÷ floor{'':<22}{'req/s':>8}{'CPU':>8}   (CPU: floor's CPU ms/request ÷ service's)\n")
    for name, ratio in run["ratios"].items():
        cpu = run["cpu_ratios"].get(name)
        out.write(f"{name:<40}{ratio:>8.3f}{cpu if cpu is not None else '-':>8}\n")
    out.write("\n== memory per worker (MB): peak (VmHWM), largest VmRSS sampled, VmRSS when first seen\n")
    for who in ("service_memory", "floor_memory"):
        for pid, sizes in run[who].items():
            out.write(f"{who.split('_')[0]:<10}pid {pid:<10}{sizes['peak_hwm_mb']:>8.1f}{sizes['max_rss_mb']:>8.1f}"
                      f"{sizes['first_rss_mb']:>8.1f}\n")
    out.write("\n== issue 5 targets\n")
    for target in run["targets"]:
        mark = "met   " if target["met"] else "MISSED"
        out.write(f"{mark} {target['target']:<46}{str(target['value']):>10}  (target {target['bound']})\n")
    out.flush()


def write_json(run: dict, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as out:
        json.dump(run, out, indent=2, default=str)
