"""The load generator: SCIM traffic shaped like Okta's and Entra ID's, against a running server.

    python bench/load.py --base-url http://127.0.0.1:8000/scim/v2 --token "$TOKEN" [--scenarios lookup,groups]

Each scenario runs C concurrent keep-alive clients (default 8) until its time (--seconds) or its request
count (--max-requests) runs out, and reports requests/s, p50 and p99 latency and errors (any non-2xx) by
status. Group scenarios use one client and --reps repetitions. Pointed at a server this way, it samples
existing users through the API, creates the groups it needs through the API, and deletes those groups and
the users it created at the end. `bench/run.py` (make bench) seeds a database instead and also measures the
floor and the server's memory.
"""

import argparse
import json
import time

from client import Client, print_header, print_row
from scenarios import USER_SCENARIOS, delete_created, discover, measure_groups, measure_users


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000/scim/v2")
    parser.add_argument("--token", required=True, help="the bearer token")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--max-requests", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=10, help="repetitions of each group scenario")
    parser.add_argument("--scenarios", default=",".join(USER_SCENARIOS) + ",groups",
                        help="comma-separated; 'groups' is every group scenario")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(wanted) - set(USER_SCENARIOS) - {"groups"}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    client = Client(args.base_url, args.token)
    data = discover(client, want_group=10000 if "groups" in wanted else 0, batch=1000)
    rows = []
    try:
        def show(result):
            rows.append(result.summary())
            print_row(rows[-1])

        print_header()
        measure_users(args.base_url, [args.token], data, [n for n in wanted if n != "groups"], args.clients,
                      args.seconds, args.max_requests, tag=str(int(time.time())), on_result=show)
        if "groups" in wanted:
            measure_groups(args.base_url, args.token, data, args.reps, on_result=show)
    finally:
        delete_created(client, data)
        client.close()
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"base_url": args.base_url, "clients": args.clients, "results": rows}, out, indent=2)


if __name__ == "__main__":
    main()
