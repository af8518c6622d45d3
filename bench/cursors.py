"""Cursor paging (RFC 9865): pages that follow `nextCursor` from deep in the set, when the server offers it.

RFC 9865 adds the `cursor` query parameter (empty for the first page), `nextCursor` in a list response and,
in /ServiceProviderConfig, a `pagination` object whose `cursor` is true when the server pages that way. A
cursor is opaque: the only way deep into the set is to follow it there, so the scenario first walks the
pages from the start (one client, the same query it then measures) until 90 % of the users are behind, and
keeps the cursors of the next few pages. Then each client starts at one of those and follows `nextCursor`
page after page; at the last page (no `nextCursor`) it starts again at another. A server that does not
advertise cursor paging is not measured.
"""

import http.client
import json
import re
import threading
import time
from urllib.parse import quote

from client import Client, Result, run_concurrent

NEXT_CURSOR = re.compile(rb'"nextCursor"\s*:\s*("(?:[^"\\]|\\.)*")')
STARTS = 8  # cursors kept from the walk: where the clients' chains begin


def advertised(client: Client) -> bool:
    """Whether /ServiceProviderConfig says `"pagination": {"cursor": true, ...}` (RFC 9865 §4)."""
    status, body, _ = client.call("GET", "/ServiceProviderConfig")
    if status != 200:
        return False
    pagination = json.loads(body).get("pagination")
    return isinstance(pagination, dict) and pagination.get("cursor") is True


def next_cursor(body: bytes) -> str | None:
    """The nextCursor of a list response, found without parsing the page (the client's CPU is the server's
    machine's too); None on the last page."""
    match = NEXT_CURSOR.search(body)
    return json.loads(match.group(1)) if match else None


def page_path(cursor: str, count: int) -> str:
    return f"/Users?cursor={quote(cursor, safe='')}&count={count}"


def walk_deep(client: Client, total: int, count: int, seconds: float) -> tuple[list[str], int]:
    """Follows nextCursor from the first page until 90 % of `total` users are behind (or `seconds` run out);
    returns the cursors of the next STARTS pages (or of the last ones walked) and the position of the first."""
    deep, position, cursor = int(total * 0.9), 0, ""
    walked: list[tuple[int, str]] = []  # (position of the page's first user, its cursor)
    deadline = time.monotonic() + seconds
    while cursor is not None and time.monotonic() < deadline:
        status, body, _ = client.call("GET", page_path(cursor, count))
        if status != 200:
            raise RuntimeError(f"cursor page at {position} answered {status}: {body[:300]!r}")
        if cursor:  # the first page's cursor is empty: it starts no chain
            walked.append((position, cursor))
        if position >= deep + (STARTS - 1) * count:  # STARTS pages at or past `deep` walked
            break
        position, cursor = position + count, next_cursor(body)
    starts = [page for page in walked if page[0] >= deep][:STARTS] or walked[-STARTS:]
    return [c for _, c in starts], starts[0][0] if starts else 0


class Chains:
    """make_request for run_concurrent: each client thread follows nextCursor from one of `starts`."""

    def __init__(self, starts: list[str], count: int):
        self.starts, self.count, self.local = starts, count, threading.local()

    def __call__(self, rng, n):
        cursor = getattr(self.local, "cursor", None) or rng.choice(self.starts)
        return "GET", page_path(cursor, self.count), None

    def follow(self, status, body: bytes) -> None:
        self.local.cursor = next_cursor(body) if status == 200 else None


def measure_cursor(base_url: str, token: str, total: int, clients: int, seconds: float, max_requests: int,
                   meter=None, count: int = 100, walk_seconds: float = 60) -> Result | str:
    """The `page_cursor` scenario, or why it was not measured (a string)."""
    client = Client(base_url, token)
    try:
        if not advertised(client):
            return "/ServiceProviderConfig does not advertise cursor paging (RFC 9865)"
        began = time.perf_counter()
        starts, position = walk_deep(client, total, count, walk_seconds)
        walk = time.perf_counter() - began
    except (RuntimeError, OSError, ValueError, http.client.HTTPException) as exc:
        # a cursor paging still being built must not end the whole run
        return f"the walk to deep pages failed: {exc}"
    finally:
        client.close()
    if not starts:
        return "the cursor walk found no page to start from"
    result = run_concurrent("page_cursor", base_url, token, Chains(starts, count), clients, seconds, max_requests,
                            meter=meter)
    result.note = f"nextCursor followed from position {position} (walked there in {walk:.1f} s)"
    return result
