"""gunicorn under the benchmark: started on a free loopback port, watched for memory, always stopped.

Memory is read from /proc/<pid>/status of the gunicorn master's children (the workers) several times a
second: VmHWM is the kernel's own high-water mark of a process's resident set, so a short peak between two
samples is not missed; VmRSS is the current size.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    # the command may hold spaces and parentheses: the fields after the last ")" are fixed
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def memory_kb(pid: int) -> dict[str, int]:
    sizes = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    sizes[key] = int(value.split()[0])
    except OSError:
        pass
    return sizes


class MemoryWatch:
    """Samples every worker of a gunicorn master until stopped; keeps each worker's peak."""

    def __init__(self, master: int, every: float = 0.2):
        self.master, self.every = master, every
        self.peaks: dict[int, dict[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def sample(self) -> None:
        for pid in children(self.master):
            sizes = memory_kb(pid)
            peak = self.peaks.setdefault(pid, {"VmHWM": 0, "VmRSS": 0, "first": sizes.get("VmRSS", 0)})
            for key, value in sizes.items():
                peak[key] = max(peak[key], value)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()

    def report(self) -> dict:
        """Per worker, in MB: peak VmHWM, the largest VmRSS sampled, and VmRSS when first seen."""
        return {str(pid): {"peak_hwm_mb": round(p["VmHWM"] / 1024, 1), "max_rss_mb": round(p["VmRSS"] / 1024, 1),
                           "first_rss_mb": round(p["first"] / 1024, 1)}
                for pid, p in sorted(self.peaks.items())}


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


# PostgreSQL's own processes, by the title each gives itself ("postgres: checkpointer"); every other child of
# the postmaster is a backend serving a connection ("postgres: USER DATABASE 127.0.0.1(PORT) ...")
BACKGROUND = ("checkpointer", "background writer", "walwriter", "autovacuum", "logical replication", "archiver",
              "stats collector")


def is_background(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            title = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return title.startswith("postgres: ") and title[len("postgres: "):].startswith(BACKGROUND)


class CpuMeter:
    """CPU milliseconds per request spent by the server's workers and by PostgreSQL's processes.

    Unlike requests/s this hardly moves when other work shares the machine, so it is the steadier measure
    of what a request costs. `parents` names the processes whose children are counted: the gunicorn master
    ("workers") and the postmaster ("postgres"; left out when the database is not on this machine).
    """

    def __init__(self, parents: dict[str, int | None], blocks_read=None):
        self.parents = {name: pid for name, pid in parents.items() if pid}
        self.before: dict[str, dict[int, int]] = {}
        # () -> blocks PostgreSQL read from outside its shared buffers so far (None: not counted)
        self.blocks_read, self.blocks_before = blocks_read, 0

    def _snapshot(self) -> dict[str, dict[int, int]]:
        return {name: {pid: cpu_ticks(pid) for pid in children(parent)} for name, parent in self.parents.items()}

    def start(self) -> None:
        self.before = self._snapshot()
        if self.blocks_read:
            self.blocks_before = self.blocks_read()

    def stop(self, requests: int) -> dict:
        """CPU ms per request of each group, and the busiest worker's share of the workers' CPU: near 1 when
        one process did the work of all (a gthread worker can take every keep-alive connection)."""
        after, tick = self._snapshot(), os.sysconf("SC_CLK_TCK")
        each = {name: [t - self.before.get(name, {}).get(pid, 0) for pid, t in pids.items()]
                for name, pids in after.items()}
        found = {f"cpu_ms_{name}": round(sum(ticks) * 1000 / tick / requests, 2) if requests else None
                 for name, ticks in each.items()}
        if "postgres" in after and requests:
            # the checkpointer, autovacuum and the writers: work of no request in particular (a checkpoint
            # after the seeding is not a lookup's cost), already counted in cpu_ms_postgres
            background = [t - self.before.get("postgres", {}).get(pid, 0)
                          for pid, t in after["postgres"].items() if is_background(pid)]
            found["cpu_ms_postgres_background"] = round(sum(background) * 1000 / tick / requests, 2)
        workers = each.get("workers", [])
        found["busiest_worker_share"] = round(max(workers) / sum(workers), 2) if sum(workers) else None
        if self.blocks_read and requests:
            # a block not in shared_buffers costs a copy from the kernel's cache (or a disk read)
            found["blocks_read_per_req"] = round((self.blocks_read() - self.blocks_before) / requests, 3)
        return found


def postmaster_of(backend_pid: int) -> int | None:
    """The postmaster of a local PostgreSQL backend (its parent), or None when it is not on this machine."""
    try:
        with open(f"/proc/{backend_pid}/comm") as comm, open(f"/proc/{backend_pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1]) if comm.read().strip() == "postgres" else None
    except (OSError, IndexError, ValueError):
        return None


def wait_until_ready(url: str, process: subprocess.Popen, log_path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; log:\n{tail(log_path)}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer (401, 404) means a worker is up
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer {url} within {timeout} s; log:\n{tail(log_path)}")


def tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as log:
            return "".join(log.readlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class Serving:
    """How gunicorn serves both apps: `workers` processes of `worker_class`, each with `threads` threads
    (1 for sync: one request at a time per process)."""
    worker_class: str
    workers: int
    threads: int = 1

    def __str__(self) -> str:
        if self.worker_class == "sync":
            return f"{self.workers} sync workers"
        return f"{self.workers} {self.worker_class} workers x {self.threads} threads"


def gunicorn_command(app: str, port: int, serving: Serving, config: str, extra: tuple = ()) -> list[str]:
    """Every setting explicit, from an empty config file: a gunicorn.conf.py in the working folder (which
    gunicorn would otherwise read) must not change what is measured, e.g. recycle workers mid-run. No
    control socket: its default path is shared by every gunicorn of the user, test servers included.
    --threads is given for sync workers too: with more than 1, gunicorn would switch them to gthread."""
    return [sys.executable, "-m", "gunicorn", "--config", config, "--workers", str(serving.workers),
            "--worker-class", serving.worker_class, "--threads", str(serving.threads),
            "--bind", f"127.0.0.1:{port}", "--timeout", "60", "--no-control-socket", *extra, app]


@contextlib.contextmanager
def gunicorn(app: str, port: int, serving: Serving, env: dict, log_path: str, extra: tuple = ()):
    """Serve `app` on 127.0.0.1:port as `serving` says; yields the master's Popen."""
    config = os.path.join(os.path.dirname(log_path), "gunicorn.conf.py")
    with open(config, "w") as empty:
        empty.write("# bench/servers.py passes every setting on the command line\n")
    command = gunicorn_command(app, port, serving, config, extra)
    with open(log_path, "ab") as log:
        log.write((" ".join(command) + "\n").encode())
        process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/scim/v2/Users/ready-check", process, log_path)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (gunicorn's graceful stop), then SIGKILL to the whole session it leads if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # workers left behind, if any (the group is ours)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
