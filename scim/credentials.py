"""The stored credentials each worker keeps in memory, so that no request queries the token table.

A credential found once is kept for SCIM_TOKEN_CACHE_SECONDS (1 s by default): that is the bound within which a
revocation, or any other change to the table, takes effect in every worker of every machine, whatever the
database. On PostgreSQL a change also sends a notification (NOTIFY scim_credentials) in its own transaction,
and a listening thread in each worker empties the cache when it arrives, so a revocation takes effect at once;
the bound still holds where notifications cannot arrive (behind a transaction-pooling PgBouncer, or while the
listener reconnects). Unknown secrets are never kept: each is looked up, refused and counted for the lockout.
Expiry is computed on every request from the kept expiry date, so it takes effect to the second.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime

log = logging.getLogger(__name__)
CHANNEL = "scim_credentials"


@dataclass(frozen=True)
class Credential:
    """What the credential check needs of a stored token: never its hash, never its secret."""

    id: int
    name: str
    kind: str
    expires: datetime | None
    revoked: datetime | None
    last_used: datetime | None
    tenant_id: int
    tenant_disabled: bool  # its tenant's credentials are all refused (tenants disable)
    scope: str = "scim"  # what it may call (models.SCOPES)


class CredentialCache:
    """secret hash -> (Credential, when it was read). Safe for the threads of a gthread worker: every step is
    one dict operation."""

    def __init__(self, max_age: float):
        self.max_age = max_age
        self._entries: dict[str, tuple[Credential, float]] = {}
        self.generation = 0  # bumped by every clear(): a read begun before a change is not kept after it
        self.listening_pid = None  # the process whose listener empties this cache (PostgreSQL)

    def get(self, hashed: str) -> Credential | None:
        entry = self._entries.get(hashed)
        if entry is None or time.monotonic() - entry[1] > self.max_age:
            return None
        return entry[0]

    def put(self, hashed: str, credential: Credential, generation: int) -> None:
        """Keep what was read, unless the cache was emptied since the read began (`generation` then)."""
        if generation == self.generation:
            self._entries[hashed] = (credential, time.monotonic())

    def used(self, hashed: str, credential: Credential, when: datetime) -> None:
        """Note a last_used the worker just wrote, keeping the entry's age."""
        entry = self._entries.get(hashed)
        if entry is not None:
            self._entries[hashed] = (replace(credential, last_used=when), entry[1])

    def clear(self) -> None:
        self.generation += 1
        self._entries = {}


class Listener:
    """One thread per process and database that LISTENs for credential changes and empties the caches of the
    apps that use that database. Started on first use in each process (gunicorn forks workers after the
    app is made, and a thread does not survive a fork)."""

    RECONNECT_SECONDS = 1.0

    def __init__(self, url: str):
        self.url = url
        self.caches: list[CredentialCache] = []
        self.pid = None

    def attach(self, cache: CredentialCache) -> None:
        if cache not in self.caches:
            self.caches.append(cache)
        if self.pid != os.getpid():
            self.pid = os.getpid()
            threading.Thread(target=self._run, name="scim-credentials-listener", daemon=True).start()

    def _clear(self) -> None:
        for cache in self.caches:
            cache.clear()

    def _run(self) -> None:
        import psycopg

        pid = os.getpid()
        while self.pid == pid:
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._clear()  # whatever changed while no one listened is read afresh
                    self._listen(connection)
            except Exception as exc:  # the database restarting, unreachable: the 1 s bound holds meanwhile
                log.debug("credential listener: %s", exc)
            time.sleep(self.RECONNECT_SECONDS)

    def _listen(self, connection) -> None:
        while self.pid == os.getpid():
            changed = False
            for _ in connection.notifies(timeout=30, stop_after=1):
                changed = True
            if changed:
                self._clear()
            else:
                connection.execute("SELECT 1")  # a connection the database dropped is found within 30 s


_listeners: dict[str, Listener] = {}
_listeners_lock = threading.Lock()


def listen(url: str, cache: CredentialCache) -> None:
    """Have the process's listener for this PostgreSQL database empty `cache` on every credential change."""
    with _listeners_lock:
        listener = _listeners.setdefault(url, Listener(url))
        listener.attach(cache)
