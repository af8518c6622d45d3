"""A revoked credential is refused by every worker process within the stated bound: SCIM_TOKEN_CACHE_SECONDS
(1 s) everywhere, and at once on PostgreSQL, where the revocation notifies every worker.

Each test runs a real gunicorn with two workers on 127.0.0.1, warms both workers' caches with the token, revokes
it with the operator's command, and sends a bounded number of requests on fresh connections.
"""

import time

import pytest

from tests.conftest import BACKEND
from tests.servers import gunicorn, request
from tests.test_tokens import cli, new_token

REQUESTS = 20  # fresh connections per check: both workers answer some of them


def statuses(port, secret) -> list[int]:
    return [request(port, "GET", "/scim/v2/Users?count=1", headers={"Authorization": f"Bearer {secret}"})[0]
            for _ in range(REQUESTS)]


def seconds_until_refused(port, secret, limit: float) -> float:
    """Seconds from now until every request is refused (checked for up to `limit` seconds)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if statuses(port, secret) == [401] * REQUESTS:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"the revoked token was still accepted after {limit} s")


def test_revocation_reaches_every_worker_within_the_cache_bound(app, migrated):
    secret = new_token(app, "okta-old")
    with gunicorn(migrated, workers=2, SCIM_TOKEN_CACHE_SECONDS=1, SCIM_AUTH_FAILURE_LIMIT=0) as (port, _):
        assert statuses(port, secret) == [200] * REQUESTS
        cli(app, "tokens", "revoke", "okta-old")
        revoked = time.monotonic()
        # Every request sent once the 1 s bound has passed is refused, however long the machine takes to
        # answer each (a loaded machine stretches the requests, not the bound).
        time.sleep(1.05)
        late = []
        while len(late) < 2 * REQUESTS:
            sent = time.monotonic()
            late.append((round(sent - revoked, 2), request(port, "GET", "/scim/v2/Users?count=1",
                                                          headers={"Authorization": f"Bearer {secret}"})[0]))
        assert [status for _, status in late] == [401] * len(late), late


@pytest.mark.skipif(BACKEND != "postgresql",
                    reason="notifications are PostgreSQL's, and do not pass through PgBouncer's transaction pooling")
def test_on_postgresql_a_revocation_is_seen_at_once_by_every_worker(app, migrated):
    secret = new_token(app, "okta-old")
    # A cache bound far longer than the test: only the notification can make the workers forget the token.
    with gunicorn(migrated, workers=2, SCIM_TOKEN_CACHE_SECONDS=600, SCIM_AUTH_FAILURE_LIMIT=0) as (port, _):
        assert statuses(port, secret) == [200] * REQUESTS
        time.sleep(0.5)  # each worker's listener is connected once its first request has been answered
        cli(app, "tokens", "revoke", "okta-old")
        seconds_until_refused(port, secret, limit=1.0)
