"""The load engine: one keep-alive connection per client thread, bounded runs, latencies and error counts.

Standard library only. gunicorn's sync workers close every connection after the answer; http.client then
reconnects by itself on the next request, so the clients keep connections alive whenever the server allows.
"""

import http.client
import json
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# A client thread opens a new connection after this many requests. gunicorn's gthread workers keep a
# connection alive and each accepts as many as come, so 8 long-lived connections can all end up in one worker
# (one process, one core) for a whole scenario; reconnecting lets them spread again. Sync workers close every
# connection after the answer anyway.
RECONNECT_EVERY = 10


# One connection

class Client:
    """One keep-alive connection to the server; every call returns (status, body bytes, seconds)."""

    def __init__(self, base_url: str, token: str, timeout: float = 120):
        parts = urlsplit(base_url)
        self.prefix = parts.path.rstrip("/")
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/scim+json",
            "Content-Type": "application/scim+json; charset=utf-8",
            "User-Agent": "Okta SCIM Client 1.0.0",
        }

    def call(self, method: str, path: str, body=None, token: str | None = None) -> tuple[int, bytes, float]:
        """`token`: this request's credential instead of the client's (another tenant's)."""
        payload = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        headers = self.headers if token is None else {**self.headers, "Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        try:
            self.conn.request(method, self.prefix + path, body=payload, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()  # the next call opens a fresh connection
            raise
        return response.status, data, time.perf_counter() - started

    def json(self, method: str, path: str, body=None, expect: tuple = (200, 201, 204)):
        status, data, _ = self.call(method, path, body)
        if status not in expect:
            raise RuntimeError(f"{method} {path} answered {status}: {data[:300]!r}")
        return json.loads(data) if data else None

    def close(self) -> None:
        self.conn.close()


# Results

def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@dataclass
class Result:
    name: str
    clients: int
    requests: int = 0
    seconds: float = 0.0
    latencies: list = field(default_factory=list, repr=False)
    errors: dict = field(default_factory=dict)
    error_sample: str | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)  # e.g. CPU per request, from a meter

    def add(self, status, seconds: float, body: bytes = b"") -> None:
        self.requests += 1
        self.latencies.append(seconds)
        if not (isinstance(status, int) and 200 <= status < 300):
            self.errors[str(status)] = self.errors.get(str(status), 0) + 1
            if self.error_sample is None:
                self.error_sample = f"{status}: {body[:300].decode(errors='replace')}"

    def summary(self) -> dict:
        ordered = sorted(self.latencies)
        return {
            "scenario": self.name,
            "clients": self.clients,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
            "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2) if ordered else 0.0,
            "errors": sum(self.errors.values()),
            "errors_by_status": dict(self.errors),
            "error_sample": self.error_sample,
            "note": self.note,
            **self.extra,
        }


# Running a scenario

def run_concurrent(name: str, base_url: str, token: str | list[str], make_request, clients: int, seconds: float,
                   max_requests: int, warmup: float = 1.0, meter=None) -> Result:
    """`clients` threads send make_request(rng, n) -> (method, path, body) until the time or count runs out.
    With one token per tenant (a list), make_request says whose: (method, path, body, tenant index).

    A warm-up of `warmup` seconds (not counted) opens connections and fills the server's caches first.
    A meter, when given, is started after the warm-up and its stop(requests) dict joins the result.
    A make_request with a `follow(status, body)` method is shown each answer, in the thread that asked
    (a scenario that follows links from one answer to the next, such as nextCursor, keeps its state there).
    """
    if warmup > 0:
        run_concurrent(name, base_url, token, make_request, clients, warmup, max_requests, warmup=0)
    if meter:
        meter.start()
    result = Result(name, clients)
    lock = threading.Lock()
    claimed = [0]
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def claim() -> int | None:
        with lock:
            if claimed[0] >= max_requests or time.perf_counter() >= deadline[0]:
                return None
            claimed[0] += 1
            return claimed[0]

    def worker(index: int) -> None:
        rng = random.Random(f"{name}-{index}-{time.time_ns()}")
        tokens = token if isinstance(token, list) else [token]
        client = Client(base_url, tokens[0])
        follow = getattr(make_request, "follow", None)
        outcomes = []
        start.wait()
        while (n := claim()) is not None:
            method, path, body, *tenant = make_request(rng, n)
            try:
                status, data, took = client.call(method, path, body, tokens[tenant[0]] if tenant else None)
            except (OSError, http.client.HTTPException) as exc:
                status, data, took = type(exc).__name__, str(exc).encode(), 0.0
            if follow:
                follow(status, data)
            outcomes.append((status, took, data if not (isinstance(status, int) and status < 300) else b""))
            if len(outcomes) % RECONNECT_EVERY == 0:
                client.close()  # the next call connects afresh, to whichever worker accepts it
        client.close()
        with lock:
            for status, took, data in outcomes:
                result.add(status, took, data)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - began
    if meter:
        result.extra.update(meter.stop(result.requests))
    return result


def run_sequence(name: str, client: Client, requests) -> Result:
    """One client sending the given (method, path, body) requests one after another."""
    result = Result(name, 1)
    began = time.perf_counter()
    for method, path, body in requests:
        status, data, took = client.call(method, path, body)
        result.add(status, took, data)
    result.seconds = time.perf_counter() - began
    return result


def print_header(out=sys.stdout) -> None:
    out.write(f"{'scenario':<40}{'clients':>8}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
              f"{'errors':>8}{'CPU ms/req app+db':>19}{'of which db bg':>16}{'blocks read/req':>17}\n")
    out.flush()


def print_row(row: dict, out=sys.stdout, label: str = "") -> None:
    cpu = ""
    if row.get("cpu_ms_workers") is not None:
        cpu = f"{row['cpu_ms_workers']:.2f}" + (f" + {row['cpu_ms_postgres']:.2f}"
                                                if row.get("cpu_ms_postgres") is not None else "")
    out.write(f"{row['scenario'] + label:<40}{row['clients']:>8}{row['requests']:>10}{row['rps']:>10.1f}"
              f"{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['errors']:>8}{cpu:>19}"
              f"{row.get('cpu_ms_postgres_background', ''):>16}{row.get('blocks_read_per_req', ''):>17}\n")
    if row["errors"]:
        out.write(f"    errors by status: {row['errors_by_status']}; first: {row['error_sample']}\n")
    out.flush()
