"""A throwaway PostgreSQL server (initdb + pg_ctl) and a throwaway PgBouncer in front of it, each on a free
loopback port and removed afterwards.

PostgreSQL and PgBouncer refuse to run as root, so as root they run as the `postgres` user, from folders it
owns outside root-only folders (pytest's tmp_path is one). The fault tests stop and start PostgreSQL mid-run.
"""

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def server_binaries() -> str:
    for candidate in [os.environ.get("PG_BIN", "")] + sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if candidate and os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    raise RuntimeError("PostgreSQL server binaries not found: install Debian's postgresql package or set PG_BIN")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--"] + command if os.geteuid() == 0 else command


def _server_folder(prefix: str) -> str:
    root = tempfile.mkdtemp(prefix=prefix)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    return root


class ThrowawayPostgres:
    def __init__(self, database: str = "scim", **settings: str):
        self.bindir = server_binaries()
        self.root = _server_folder("scim-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        self.database = database
        self.settings = settings  # more server settings (-c name=value), e.g. the bench's shared_buffers
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        subprocess.run(_as_server_user([f"{self.bindir}/{command[0]}", *command[1:]]), check=True,
                       capture_output=True)

    def create(self) -> "ThrowawayPostgres":
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database)
        return self

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
                   + "".join(f" -c {name}={value}" for name, value in self.settings.items()))
        self._run("pg_ctl", "-D", self.data, "-o", options, "-l", os.path.join(self.root, "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def remove(self) -> None:
        subprocess.run(_as_server_user([f"{self.bindir}/pg_ctl", "-D", self.data, "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres(database: str = "scim", **settings: str):
    """Start a private PostgreSQL, yield its SQLAlchemy URL, then stop it and delete its files."""
    server = ThrowawayPostgres(database, **settings)
    try:
        server.create()
        yield server.url
    finally:
        server.remove()


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(found):
        raise RuntimeError("pgbouncer not found: install Debian's pgbouncer package")
    return found


# The suite opens hundreds of client connections (an app per test, gunicorn workers, pools of 5 + 10), but
# has far fewer transactions in flight: 150 server connections in all, below the throwaway server's
# max_connections=200. The waits are those docs/database.md#behind-pgbouncer recommends.
PGBOUNCER_SETTINGS = {
    "pool_mode": "transaction",
    "auth_type": "trust",
    "max_client_conn": "1000",
    "default_pool_size": "150",
    "max_user_connections": "150",  # every database (test_failures makes some) as the one user postgres
    "query_wait_timeout": "5",
    "server_login_retry": "1",
}


class ThrowawayPgBouncer:
    """PgBouncer in transaction pooling mode on a free loopback port, forwarding every database name to the
    PostgreSQL server at `postgres_port` (as user postgres, no password). `settings` override the
    [pgbouncer] section's."""

    def __init__(self, postgres_port: int, **settings: str):
        self.binary = pgbouncer_binary()
        self.root = _server_folder("scim-pgbouncer-")
        self.port = free_port()
        self.postgres_port = postgres_port
        self.settings = {**PGBOUNCER_SETTINGS, **settings}
        self.config = os.path.join(self.root, "pgbouncer.ini")
        self.pidfile = os.path.join(self.root, "pgbouncer.pid")
        self.logfile = os.path.join(self.root, "pgbouncer.log")

    def url(self, database: str = "scim") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _write(self, path: str, text: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    def start(self) -> "ThrowawayPgBouncer":
        userlist = os.path.join(self.root, "userlist.txt")
        self._write(userlist, '"postgres" ""\n')  # trust asks for no password, but for a listed user
        settings = {"listen_addr": "127.0.0.1", "listen_port": str(self.port), "unix_socket_dir": "",
                    "auth_file": userlist, "logfile": self.logfile, "pidfile": self.pidfile, **self.settings}
        self._write(self.config, "[databases]\n"
                    f"* = host=127.0.0.1 port={self.postgres_port} user=postgres\n\n[pgbouncer]\n"
                    + "".join(f"{key} = {value}\n" for key, value in settings.items()))
        done = subprocess.run(_as_server_user([self.binary, "-d", "-q", self.config]), capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pgbouncer did not start: {done.stderr}{self.log()}")
        self._wait_until_listening()
        return self

    def _wait_until_listening(self, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError("pgbouncer does not listen: " + self.log())

    def log(self) -> str:
        with contextlib.suppress(OSError), open(self.logfile, encoding="utf-8", errors="replace") as f:
            return f.read()[-4000:]
        return ""

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            with open(self.pidfile, encoding="ascii") as f:
                pid = int(f.read().strip())
            os.kill(pid, signal.SIGTERM)  # immediate shutdown
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                os.kill(pid, 0)  # OSError once it is gone
                time.sleep(0.05)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_pgbouncer(database: str = "scim"):
    """A private PostgreSQL behind a private PgBouncer in transaction pooling mode: yields (the URL through
    PgBouncer, the URL straight to PostgreSQL), then stops both and deletes their files."""
    postgres = ThrowawayPostgres(database)
    bouncer = None
    try:
        postgres.create()
        bouncer = ThrowawayPgBouncer(postgres.port).start()
        yield bouncer.url(database), postgres.url
    finally:
        if bouncer is not None:
            bouncer.remove()
        postgres.remove()
