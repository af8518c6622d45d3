"""A throwaway PostgreSQL server for the test session: initdb + pg_ctl on a free loopback port.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user, from a data folder it
owns outside root-only folders (pytest's tmp_path is one).
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


@contextlib.contextmanager
def throwaway_postgres(database: str = "scim"):
    """Start a private PostgreSQL, yield its SQLAlchemy URL, then stop it and delete its files."""
    bindir = server_binaries()
    root = tempfile.mkdtemp(prefix="scim-pg-")
    data = os.path.join(root, "data")
    port = free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    run = lambda *cmd: subprocess.run(_as_server_user(list(cmd)), check=True, capture_output=True)  # noqa: E731
    try:
        run(f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        run(f"{bindir}/pg_ctl", "-D", data, "-o", options, "-l", os.path.join(root, "log"), "-w", "start")
        run(f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run(_as_server_user([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
