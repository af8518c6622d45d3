"""The docs' commands, run verbatim against a real server, so the docs cannot go stale.

For each page (the README's "try it", docs/walkthrough.md, docs/tokens.md, docs/operations.md, docs/console.md,
docs/tenants.md and docs/events.md; the other pages hold only blocks for a person's terminal), the fenced
blocks are taken in order:

- ```bash blocks run, unchanged, in one bash process per page (`set -eo pipefail`), so variables and shell
  functions carry over from block to block as they do in a person's terminal. A command that fails, or an
  `expect STATUS curl ...` whose answer has another status, fails the test with the block and its output.
- The setup block, whose lines only export BASE, SCIM and TOKEN (the server's address and token), is
  replaced by the same exports pointing at the test's own server. `manage.py` in the blocks reads the
  server's database (DATABASE_URL), as in the two terminals of `make run`.
- ```console blocks are for a person's terminal only and are not run: starting the server, ngrok, psql.
  One that ends in `make run` makes the test (re)start its own server the way `make run` does
  (`python manage.py db upgrade`, then `python app.py`), with the settings written before `make run`
  (for example SCIM_USER_EXTENSIONS=...); `$TOKEN` stands for the test's token.
- ```text, ```sql and other blocks are shown output or other languages, and are not run.

The server is `python app.py` on a free port of 127.0.0.1, on the session's test database (SQLite, the
throwaway PostgreSQL, or PgBouncer in front of it; emptied first by the `app` fixture), so the pages are
checked on every backend. The shell's environment has no proxy settings, and the runnable blocks name no
host of their own: every request goes to $BASE or $SCIM, or to a receiver the block itself starts on
127.0.0.1. Waits are bounded, and the server is stopped at the end.
"""

import os
import re
import secrets
import select
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager, suppress

import pytest

from tests.conftest import DATABASE_ENVIRONMENT
from tests.pg import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md", "docs/walkthrough.md", "docs/tokens.md", "docs/operations.md", "docs/tenants.md",
         "docs/console.md", "docs/events.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
SETUP = re.compile(r"^export (BASE|SCIM|TOKEN)=")
START = re.compile(r"^((?:[A-Z_]+=\S+\s+)*)make run$")
BLOCK_SECONDS = 30
LEAVES_LOOPBACK = re.compile(r"https?://(?!127\.0\.0\.1:)")
PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}


def blocks(page):
    """(language, text, line number) for each fenced block of the page, in order."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        source = f.read()
    for match in FENCE.finditer(source):
        yield match.group(1), match.group(2), source.count("\n", 0, match.start()) + 1


def is_setup(text):
    lines = text.strip().splitlines()
    return bool(lines) and all(SETUP.match(line) for line in lines)


def start_settings(text, token):
    """The settings of a console block that starts the server, or None when it does not."""
    lines = text.strip().splitlines()
    match = START.match(lines[-1].strip()) if lines else None
    if match is None:
        return None
    settings = dict(word.split("=", 1) for word in match.group(1).split())
    return {name: token if value == "$TOKEN" else value for name, value in settings.items()}


class Server:
    """`python app.py` the way `make run` starts it, on a free loopback port."""

    def __init__(self, database_url, token, folder):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**clean_environment(), "DATABASE_URL": database_url, "SCIM_BEARER_TOKEN": token,
                    "HOST": "127.0.0.1", "PORT": str(self.port)}
        self.log_path = os.path.join(folder, "server.log")
        self.process = None

    def start(self, **settings):
        env = {**self.env, **settings}
        subprocess.run([sys.executable, "manage.py", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=60)
        with open(self.log_path, "ab") as log:  # a file, not a pipe nobody reads
            self.process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with suppress(OSError):
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("the server did not start:\n" + self.log()[-4000:])

    def stop(self):
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()


def clean_environment():
    """The test's environment without proxies (traffic stays on 127.0.0.1) and without the service's settings
    but those the pass's database needs (behind PgBouncer, the pooler's)."""
    env = {name: value for name, value in os.environ.items()
           if name not in PROXY_VARIABLES and not name.startswith("SCIM_") and name != "DATABASE_URL"}
    env.update(DATABASE_ENVIRONMENT)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    # `python` and `python3` in the blocks are the interpreter running the tests (the project's venv).
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


class Shell:
    """One bash process fed block by block, as a person pastes them into a terminal."""

    def __init__(self, env):
        self.process = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=ROOT, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.run("set -eo pipefail")

    def run(self, text):
        """Runs the text; returns its output, or raises AssertionError when bash stopped or took too long."""
        marker = "--- block done " + secrets.token_hex(8) + " ---"
        self.process.stdin.write(f"{text}\nprintf '\\n%s\\n' '{marker}'\n".encode())
        self.process.stdin.flush()
        output = b""
        deadline = time.monotonic() + BLOCK_SECONDS
        while marker.encode() not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no answer within {BLOCK_SECONDS} s; output so far:\n{output.decode()}")
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    self.process.wait(timeout=5)
                    raise AssertionError(f"bash stopped (exit {self.process.returncode}):\n{output.decode()}")
                output += chunk
        return output.decode().split(marker)[0]

    def close(self):
        with suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process.stdout.close()


@contextmanager
def server_and_shell(database_url, token):
    with tempfile.TemporaryDirectory(prefix="scim-docs-") as folder:
        server = Server(database_url, token, folder)
        shell = None
        try:
            # The second terminal's manage.py reads the same database as the server, as with make run.
            shell = Shell({**clean_environment(), "DATABASE_URL": database_url})
            yield server, shell
        except AssertionError as failure:
            log = server.log()[-3000:] if os.path.exists(server.log_path) else ""
            raise AssertionError(f"{failure}\n--- server log (end) ---\n{log}") from None
        finally:
            if shell is not None:
                shell.close()
            server.stop()


@pytest.mark.parametrize("page", PAGES)
def test_every_command_of_the_page_runs_and_answers_what_it_says(page, app, migrated):
    token = secrets.token_urlsafe(32)
    page_blocks = list(blocks(page))
    assert sum(language == "bash" and is_setup(text) for language, text, _ in page_blocks) <= 1, (
        f"{page} has more than one bash block that only exports BASE, SCIM and TOKEN")
    ran = 0
    with server_and_shell(migrated, token) as (server, shell):
        for language, text, line in page_blocks:
            if language == "console":
                settings = start_settings(text, token)
                if settings is not None:
                    server.stop()
                    server.start(**settings)
                continue
            if language != "bash":
                continue
            if is_setup(text):
                text = (f"export BASE={server.base}\nexport SCIM={server.base}/scim/v2\n"
                        f"export TOKEN={token}")
            else:
                assert not LEAVES_LOOPBACK.search(text), (
                    f"{page}:{line}: a runnable block must reach the server through $BASE or $SCIM, and name no "
                    "host but 127.0.0.1 (a receiver it starts itself)")
            assert server.process is not None, f"{page}:{line}: a command before the server was started"
            try:
                shell.run(text)
            except AssertionError as failure:
                raise AssertionError(f"{page}:{line}: the block failed\n{text}\n--- output ---\n{failure}") from None
            ran += 1
    assert ran > 1, f"{page}: no commands ran"
