"""A new operator's database mistakes each get a clear answer: the database is not migrated, it does not
exist, or it does not answer. Only the last is worth retrying (Retry-After); the others name the fix."""

import logging
import os
import subprocess
import sys

import pytest
from flask_migrate import upgrade
from sqlalchemy import make_url, text

from dbcheck import head_revisions
from models import db
from tests.conftest import BACKEND, DATABASE_ENVIRONMENT, ON_POSTGRESQL
from tests.pg import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIGRATIONS = os.path.join(ROOT, "migrations")
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
BOOTSTRAP = "failures-bootstrap-token-0123456789"
UPGRADE = "run python manage.py db upgrade"
HEAD = head_revisions()[0]  # the newest committed migration
REQUESTS = [
    ("GET", "/scim/v2/Users", {"Authorization": f"Bearer {BOOTSTRAP}"}),
    ("POST", "/scim/v2/Users", {"Authorization": f"Bearer {BOOTSTRAP}"}),
    ("GET", "/scim/v2/Groups/abc", {"Authorization": f"Bearer {BOOTSTRAP}"}),
    ("GET", "/scim/v2/Users", {"Authorization": "Bearer a-token-the-store-would-hold-0123"}),  # auth reads tables
]
postgres_only = pytest.mark.skipif(not ON_POSTGRESQL, reason="a PostgreSQL server's answer")


@pytest.fixture
def missing_database(database_url, tmp_path):
    """PostgreSQL: a database name the server does not have; SQLite: a file in a folder that does not exist."""
    if BACKEND == "sqlite":
        return "sqlite:///" + str(tmp_path / "no-such-folder" / "scim.db"), str(tmp_path / "no-such-folder")
    return make_url(database_url).set(database="nosuch").render_as_string(hide_password=False), "'nosuch'"


@pytest.fixture
def app_on(make_app):
    """An app on another database (conftest's make_app, pointed elsewhere), with a short connect timeout."""
    def make(url):
        return make_app(SQLALCHEMY_DATABASE_URI=url, SCIM_BEARER_TOKEN=BOOTSTRAP, TESTING=True,
                        SCIM_DB_CONNECT_TIMEOUT=2, SCIM_AUDIT_PRUNE_ONE_IN=0)
    return make


def migrate_to(app, revision):
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision=revision)
        db.engine.dispose()


def assert_scim_503(response, *words):
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/scim+json"
    assert response.json["schemas"] == [ERROR] and response.json["status"] == "503"
    for word in words:
        assert word in response.json["detail"]


# Mistake 1: the schema is not migrated.

def test_readyz_on_an_unmigrated_database_says_to_run_the_upgrade(app_on, empty_database):
    response = app_on(empty_database).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "detail": "the database schema is not migrated "
                             f"(no revision applied, head {HEAD}): {UPGRADE}"}


def test_readyz_names_the_revision_a_database_is_behind_at(app_on, empty_database):
    app = app_on(empty_database)
    migrate_to(app, "0002")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["detail"] == f"the database schema is not migrated (at revision 0002, head {HEAD}): {UPGRADE}"


def test_readyz_names_a_revision_the_migrations_do_not_have(app_on, empty_database):
    app = app_on(empty_database)
    migrate_to(app, "head")
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        db.session.commit()
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert f"at revision 0099, which migrations/versions does not have (head {HEAD})" in response.json["detail"]


def test_readyz_is_ready_once_the_upgrade_ran(app_on, empty_database):
    app = app_on(empty_database)
    migrate_to(app, "head")
    response = app.test_client().get("/readyz")
    assert (response.status_code, response.json) == (200, {"status": "ready"})


@pytest.mark.parametrize("method, path, headers", REQUESTS)
def test_scim_request_on_an_unmigrated_database_is_a_503_with_the_upgrade_hint_and_no_retry_after(
        app_on, empty_database, method, path, headers):
    response = app_on(empty_database).test_client().open(path, method=method, headers=headers,
                                                         json={"userName": "new@example.com"})
    assert_scim_503(response, UPGRADE, f"head {HEAD}")
    assert "Retry-After" not in response.headers


def test_unmigrated_database_is_logged_once_as_a_configuration_error_without_traceback(
        app_on, empty_database, caplog):
    with caplog.at_level(logging.INFO):
        response = app_on(empty_database).test_client().get(
            "/scim/v2/Users", headers={"Authorization": f"Bearer {BOOTSTRAP}"})
    assert response.status_code == 503
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in problems] == [
        f"database configuration error: the database schema is not migrated (no revision applied, head {HEAD}): "
        f"{UPGRADE}"]
    assert problems[0].exc_info is None


# Mistake 2: the database does not exist.

def test_readyz_on_a_missing_database_names_it(app_on, missing_database):
    url, name = missing_database
    response = app_on(url).test_client().get("/readyz")
    assert response.status_code == 503 and response.json["status"] == "unavailable"
    assert name in response.json["detail"] and "does not exist" in response.json["detail"]


@pytest.mark.parametrize("method, path, headers", REQUESTS)
def test_scim_request_on_a_missing_database_is_a_503_naming_it_without_retry_after(
        app_on, missing_database, method, path, headers, caplog):
    url, name = missing_database
    response = app_on(url).test_client().open(path, method=method, headers=headers,
                                              json={"userName": "new@example.com"})
    assert_scim_503(response, name, "does not exist")
    assert "Retry-After" not in response.headers
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.levelno >= logging.WARNING] == [
        "database configuration error"]


@postgres_only
def test_missing_postgresql_database_detail_says_to_create_it(app_on, missing_database):
    response = app_on(missing_database[0]).test_client().get("/readyz")
    assert response.json["detail"] == f"database 'nosuch' does not exist: create it, then {UPGRADE}"


# A real outage is still transient: 503 with Retry-After.

def test_database_that_does_not_answer_is_still_a_503_with_retry_after(app_on):
    app = app_on(f"postgresql+psycopg://scim@127.0.0.1:{free_port()}/scim")
    response = app.test_client().get("/scim/v2/Users", headers={"Authorization": f"Bearer {BOOTSTRAP}"})
    assert_scim_503(response, "retry later")
    assert response.headers["Retry-After"]
    ready = app.test_client().get("/readyz")
    assert (ready.status_code, ready.json["detail"]) == (503, "the database does not answer")


# The CLI: one line naming the problem, a non-zero exit, no traceback.

def manage(url, *args):
    env = {**os.environ, **DATABASE_ENVIRONMENT, "DATABASE_URL": url, "SCIM_BEARER_TOKEN": BOOTSTRAP}
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    lines = (done.stdout + done.stderr).splitlines()
    assert "Traceback" not in done.stdout + done.stderr
    return done.returncode, lines


@pytest.mark.parametrize("command", [["tokens", "list"], ["tokens", "create", "okta"], ["audit"]])
def test_cli_on_an_unmigrated_database_is_one_line_saying_to_upgrade(empty_database, command):
    code, lines = manage(empty_database, *command)
    assert code != 0
    assert lines == [f"Error: the database schema is not migrated (no revision applied, head {HEAD}): {UPGRADE}"]


@pytest.mark.parametrize("command", [["tokens", "list"], ["audit"], ["db", "upgrade"]])
def test_cli_on_a_missing_database_is_one_line_naming_it(missing_database, command):
    url, name = missing_database
    code, lines = manage(url, *command)
    assert code != 0
    assert len(lines) == 1 and name in lines[0] and "DATABASE_URL" in lines[0]


@postgres_only
def test_db_upgrade_on_a_missing_postgresql_database_says_how_to_create_it(missing_database):
    url = make_url(missing_database[0])
    code, lines = manage(missing_database[0], "db", "upgrade")
    assert code != 0
    assert lines == [f"Error: database 'nosuch' does not exist on 127.0.0.1:{url.port} (DATABASE_URL): create it "
                     f"with `createdb -h 127.0.0.1 -p {url.port} -U postgres nosuch`, then {UPGRADE}"]


def test_cli_on_a_database_that_does_not_answer_is_one_line(tmp_path):
    code, lines = manage(f"postgresql://scim@127.0.0.1:{free_port()}/scim", "tokens", "list")
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith("Error: cannot connect to the database: ")
    assert "Connection refused" in lines[0]


def test_cli_db_upgrade_on_an_empty_database_migrates_it(empty_database):
    assert manage(empty_database, "db", "upgrade")[0] == 0
    code, lines = manage(empty_database, "tokens", "list")
    assert (code, lines) == (0, ["NAME  TENANT  KIND  SCOPE  CREATED  LAST USED  EXPIRES  STATE"])
