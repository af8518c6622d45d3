"""The audit rows of the hot path's reads, written in batches off the request path.

A read's row is handed to this process's batch and written, with the others, in one transaction by a thread
of the worker at least every SCIM_AUDIT_FLUSH_SECONDS (0.2 s), sooner when many are waiting, and when the
process exits normally: gunicorn's graceful stop (SIGTERM), its reload (SIGHUP) and the replacement of a
worker after GUNICORN_MAX_REQUESTS all end in a normal exit, so no row is lost then. A worker killed outright
(SIGKILL, the kernel's OOM killer, gunicorn's GUNICORN_TIMEOUT) loses the rows of at most its last
SCIM_AUDIT_FLUSH_SECONDS of reads. Writes, refusals and errors never wait here: their rows are written with
the request. While the database cannot take them, rows wait (up to MAX_WAITING, then the oldest are dropped,
and the number said in the log).
"""

import atexit
import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)
MAX_WAITING = 100_000  # rows kept while the database is away: a few tens of MB at most
WAKE_AT = 500  # rows waiting that wake the writer before its time


class AuditBatch:
    def __init__(self, write: Callable[[list[dict]], None], seconds: float):
        self.write, self.seconds = write, seconds
        self.rows: list[dict] = []
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.pid = None

    def add(self, row: dict) -> None:
        if self.pid != os.getpid():  # the first row of this process (gunicorn forks its workers)
            self._start()
        with self.lock:
            self.rows.append(row)
            waiting = len(self.rows)
        if waiting >= WAKE_AT:
            self.wake.set()

    def _start(self) -> None:
        with self.lock:
            if self.pid == os.getpid():
                return
            self.pid = os.getpid()
            self.rows = []  # a parent's rows are the parent's to write
        threading.Thread(target=self._run, name="scim-audit-batch", daemon=True).start()
        atexit.register(self.flush)

    def _run(self) -> None:
        pid = os.getpid()
        while self.pid == pid:
            self.wake.wait(self.seconds)
            self.wake.clear()
            self.flush()

    def flush(self) -> None:
        """Write every row waiting, in one transaction; on failure they wait for the next attempt."""
        with self.lock:
            rows, self.rows = self.rows, []
        if not rows:
            return
        try:
            self.write(rows)
        except Exception as exc:
            with self.lock:
                self.rows = rows + self.rows
                dropped = max(len(self.rows) - MAX_WAITING, 0)
                del self.rows[:dropped]
            log.warning("could not write %d audit rows (they wait): %s", len(rows), exc)
            if dropped:
                log.error("dropped the %d oldest audit rows waiting: the database has been away too long", dropped)
