"""A throwaway PostgreSQL server: initdb + pg_ctl on a free loopback port, removed afterwards.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user, from a data folder it
owns outside root-only folders (pytest's tmp_path is one). The fault tests stop and start it mid-run.
"""

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile


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


class ThrowawayPostgres:
    def __init__(self, database: str = "scim"):
        self.bindir = server_binaries()
        self.root = tempfile.mkdtemp(prefix="scim-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        self.database = database
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

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
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", self.data, "-o", options, "-l", os.path.join(self.root, "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def remove(self) -> None:
        subprocess.run(_as_server_user([f"{self.bindir}/pg_ctl", "-D", self.data, "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres(database: str = "scim"):
    """Start a private PostgreSQL, yield its SQLAlchemy URL, then stop it and delete its files."""
    server = ThrowawayPostgres(database)
    try:
        server.create()
        yield server.url
    finally:
        server.remove()
