"""Settings (config.py): each variable's type and default, the errors that name it, an app built from a dict
that ignores the environment, and docs/configuration.md's tables, which must list the same variables with
the same defaults."""

import os
import re
import runpy
from dataclasses import fields

import pytest

from app import create_app
from config import GUNICORN_GROUPS, PARSERS, SERVICE_GROUPS, GunicornSettings, SettingError, Settings, parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs", "configuration.md")
ALL = [(group, spec) for group in SERVICE_GROUPS + GUNICORN_GROUPS for spec in fields(group)]
IDS = [spec.metadata["env"] for _group, spec in ALL]
# A text for each type, and the value it gives.
SAMPLES = {int: ("42", 42), float: ("2.5", 2.5), bool: ("yes", True), str: ("some text", "some text"),
           str | None: ("some text", "some text"), int | None: ("3", 3),
           tuple[str, ...]: ("urn:a, urn:b urn:c", ("urn:a", "urn:b", "urn:c"))}
# The app.config keys the rest of the code reads (Flask's and Flask-SQLAlchemy's names where they have one).
CONFIG_KEYS = {
    "SQLALCHEMY_DATABASE_URI", "SCIM_BEARER_TOKEN", "SCIM_TOKEN_PEPPER", "SCIM_ACCEPT_BARE_TOKEN",
    "SCIM_AUTH_FAILURE_LIMIT", "SCIM_AUTH_FAILURE_WINDOW", "SCIM_TOKEN_CACHE_SECONDS", "TRUST_PROXY",
    "MAX_CONTENT_LENGTH", "SCIM_MAX_JSON_DEPTH", "SCIM_DEFAULT_PAGE_SIZE", "SCIM_MAX_PAGE_SIZE", "SCIM_CURSOR_TIMEOUT",
    "SCIM_BULK_MAX_OPERATIONS", "SCIM_BULK_MAX_PAYLOAD", "SCIM_BULK_TIME_BUDGET", "SCIM_MAX_PATCH_OPERATIONS",
    "SCIM_MAX_VALUES",
    "SCIM_MAX_FILTER_LENGTH", "SCIM_MAX_ATTRIBUTE_NAMES", "SCIM_USER_EXTENSIONS", "SCIM_GROUP_EXTENSIONS",
    "SCIM_AUDIT_RETENTION_DAYS", "SCIM_AUDIT_PRUNE_ONE_IN", "SCIM_EVENT_RETENTION_DAYS",
    "SCIM_WEBHOOK_ALLOWED_HOSTS", "SCIM_WEBHOOK_TIMEOUT", "SCIM_WEBHOOK_RETRY_SECONDS", "SCIM_WEBHOOK_BACKOFF_SECONDS",
    "SCIM_WEBHOOK_BACKOFF_MAX_SECONDS", "SCIM_WEBHOOK_POLL_SECONDS", "SCIM_AUDIT_FLUSH_SECONDS", "SCIM_ACCESS_LOG",
    "SCIM_METRICS_TOKEN", "SCIM_CONSOLE", "SCIM_CONSOLE_SECRET_KEY", "SCIM_CONSOLE_SECURE_COOKIE",
    "SCIM_CONSOLE_IDLE_MINUTES", "SCIM_CONSOLE_LOGIN_LIMIT",
    "SCIM_DB_CONNECT_TIMEOUT",
    "SCIM_DB_STATEMENT_TIMEOUT_MS", "SCIM_DB_POOL_SIZE", "SCIM_DB_POOL_TIMEOUT", "SCIM_DB_PRE_PING",
    "SCIM_DB_TRANSACTION_POOLING", "SCIM_DB_PREPARE_THRESHOLD",
}


def env_name(spec):
    return spec.metadata["env"]


def of_type(spec):
    return [(group, s) for group, s in ALL if s.type is spec or s.type == spec]


@pytest.mark.parametrize(("group", "spec"), ALL, ids=IDS)
def test_every_setting_has_a_parsable_type_a_default_of_that_type_and_a_one_line_description(group, spec):
    assert spec.type in PARSERS
    default = spec.default
    if spec.type == tuple[str, ...]:
        assert isinstance(default, tuple) and all(isinstance(word, str) for word in default)
    else:
        assert isinstance(default, spec.type)
    description = spec.metadata["description"]
    assert description and "\n" not in description


@pytest.mark.parametrize(("group", "spec"), ALL, ids=IDS)
def test_every_setting_is_read_from_its_variable_as_its_type(group, spec):
    text, value = SAMPLES[spec.type]
    read = group.from_env({env_name(spec): text})
    assert getattr(read, spec.name) == value
    assert {s.name: getattr(read, s.name) for s in fields(group) if s is not spec} == \
           {s.name: s.default for s in fields(group) if s is not spec}


@pytest.mark.parametrize("group", SERVICE_GROUPS + GUNICORN_GROUPS)
def test_an_empty_environment_gives_the_defaults(group):
    assert group.from_env({}) == group()


def test_variable_names_are_unique():
    assert len(IDS) == len(set(IDS))


def test_the_app_config_keys_keep_their_names():
    assert set(Settings().to_config("/srv/instance")) == CONFIG_KEYS


@pytest.mark.parametrize(("group", "spec"), of_type(int) + of_type(int | None), ids=lambda v: getattr(v, "name", ""))
@pytest.mark.parametrize("text", ["abc", "1.5", "10k"])
def test_a_bad_integer_names_the_variable(group, spec, text):
    with pytest.raises(SettingError, match=re.escape(f"{env_name(spec)} must be an integer, got {text!r}")):
        group.from_env({env_name(spec): text})


@pytest.mark.parametrize(("group", "spec"), of_type(float), ids=lambda v: getattr(v, "name", ""))
def test_a_bad_number_names_the_variable(group, spec):
    with pytest.raises(SettingError, match=re.escape(f"{env_name(spec)} must be a number, got 'half a minute'")):
        group.from_env({env_name(spec): "half a minute"})


def test_an_empty_number_is_refused_rather_than_taken_as_the_default():
    with pytest.raises(SettingError, match="SCIM_MAX_PAGE_SIZE must be an integer, got ''"):
        Settings.from_env({"SCIM_MAX_PAGE_SIZE": ""})


def test_an_empty_optional_number_is_not_set():
    assert GunicornSettings.from_env({"WEB_CONCURRENCY": ""}).workers is None


@pytest.mark.parametrize(("group", "spec"), of_type(bool), ids=lambda v: getattr(v, "name", ""))
@pytest.mark.parametrize(("text", "on"), [
    ("1", True), ("true", True), ("TRUE", True), ("Yes", True), ("on", True), ("ON", True),
    ("0", False), ("false", False), ("no", False), ("off", False), ("", False), ("2", False), ("enabled", False),
])
def test_a_switch_is_on_only_for_1_true_yes_or_on(group, spec, text, on):
    assert getattr(group.from_env({env_name(spec): text}), spec.name) is on


@pytest.mark.parametrize(("text", "words"), [
    ("", ()), ("urn:a", ("urn:a",)), ("urn:a urn:b", ("urn:a", "urn:b")), ("urn:a,urn:b", ("urn:a", "urn:b")),
    (" urn:a, urn:b,,urn:c\turn:d ", ("urn:a", "urn:b", "urn:c", "urn:d")),
])
def test_extension_lists_are_split_on_spaces_and_commas(text, words):
    assert Settings.from_env({"SCIM_USER_EXTENSIONS": text}).user_extensions == words
    assert Settings.from_env({"SCIM_GROUP_EXTENSIONS": text}).group_extensions == words


def test_an_empty_bootstrap_token_is_not_set():
    assert Settings.from_env({"SCIM_BEARER_TOKEN": ""}).bearer_token is None


@pytest.mark.parametrize(("url", "expected"), [
    (None, "sqlite:////srv/instance/scim.db"),
    ("", "sqlite:////srv/instance/scim.db"),
    ("postgres://u:p@db:5432/scim", "postgresql+psycopg://u:p@db:5432/scim"),
    ("postgresql://u@db/scim", "postgresql+psycopg://u@db/scim"),
    ("postgresql+psycopg://u@db/scim", "postgresql+psycopg://u@db/scim"),
    ("sqlite:////var/lib/scim.db", "sqlite:////var/lib/scim.db"),
])
def test_database_url_defaults_to_sqlite_in_the_instance_folder_and_is_rewritten_for_psycopg(url, expected):
    environ = {} if url is None else {"DATABASE_URL": url}
    assert Settings.from_env(environ).to_config("/srv/instance")["SQLALCHEMY_DATABASE_URI"] == expected


def test_body_size_setting_becomes_flasks_max_content_length():
    assert Settings.from_env({"SCIM_MAX_BODY_BYTES": "1024"}).to_config("/srv")["MAX_CONTENT_LENGTH"] == 1024
    assert Settings().to_config("/srv")["MAX_CONTENT_LENGTH"] == 8 * 1024 * 1024


def test_an_app_built_from_a_dict_ignores_the_environment(monkeypatch):
    monkeypatch.setenv("SCIM_MAX_PAGE_SIZE", "7")
    monkeypatch.setenv("SCIM_ACCESS_LOG", "0")
    monkeypatch.setenv("SCIM_MAX_VALUES", "not a number")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SCIM_DEFAULT_PAGE_SIZE": 3})
    assert app.config["SCIM_MAX_PAGE_SIZE"] == 1000 and app.config["SCIM_ACCESS_LOG"] is True
    assert app.config["SCIM_DEFAULT_PAGE_SIZE"] == 3 and app.config["SCIM_MAX_VALUES"] == 1000
    assert {key: app.config[key] for key in CONFIG_KEYS - {"SQLALCHEMY_DATABASE_URI", "SCIM_DEFAULT_PAGE_SIZE"}} \
        == {key: value for key, value in Settings().to_config(app.instance_path).items()
            if key not in ("SQLALCHEMY_DATABASE_URI", "SCIM_DEFAULT_PAGE_SIZE")}


@pytest.fixture
def clean_environment(monkeypatch):
    """No setting of the developer's shell reaches the app built from the environment."""
    for _group, spec in ALL:
        monkeypatch.delenv(env_name(spec), raising=False)
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    return monkeypatch


def test_an_app_built_without_settings_reads_the_environment(clean_environment):
    clean_environment.setenv("SCIM_MAX_PAGE_SIZE", "7")
    clean_environment.setenv("SCIM_USER_EXTENSIONS", "urn:a,urn:b")
    app = create_app()
    assert app.config["SCIM_MAX_PAGE_SIZE"] == 7 and app.config["SCIM_USER_EXTENSIONS"] == ("urn:a", "urn:b")
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"


def test_an_app_built_from_a_bad_environment_does_not_start(clean_environment):
    clean_environment.setenv("SCIM_MAX_PAGE_SIZE", "abc")
    with pytest.raises(SettingError, match="SCIM_MAX_PAGE_SIZE must be an integer, got 'abc'"):
        create_app()


@pytest.mark.parametrize(("environ", "workers", "threads"), [
    ({"WEB_CONCURRENCY": "3"}, 3, 1),
    ({"GUNICORN_WORKER_CLASS": "gthread"}, os.cpu_count() * 2, 4),
    ({"GUNICORN_WORKER_CLASS": "gthread", "GUNICORN_THREADS": "8"}, os.cpu_count() * 2, 8),
])
def test_gunicorn_conf_reads_its_settings(clean_environment, environ, workers, threads):
    for name, value in environ.items():
        clean_environment.setenv(name, value)
    conf = runpy.run_path(os.path.join(ROOT, "gunicorn.conf.py"))
    assert (conf["workers"], conf["threads"], conf["bind"], conf["timeout"]) == (workers, threads, "127.0.0.1:8000", 60)


# docs/configuration.md: its tables, and the default each row gives

DEFAULT = re.compile(r"^(?:`([^`]*)`|(not set|empty|on|off))(?:\s|$)")


def documented_tables() -> list[dict[str, str]]:
    """{variable: Default cell} for each `| Variable | Default | Meaning |` table of the page, in order."""
    tables, rows = [], None
    with open(DOCS, encoding="utf-8") as f:
        for line in f.read().splitlines():
            if line.startswith("| Variable | Default | Meaning |"):
                rows = {}
                tables.append(rows)
            elif rows is not None and line.startswith("| `"):
                variable, default = (cell.strip() for cell in line.strip("|").split("|")[:2])
                assert variable.strip("`") not in rows, f"{variable} is listed twice"
                rows[variable.strip("`")] = default
            elif not line.startswith("|"):
                rows = None
    return tables


def documented_default(spec, cell: str):
    """The value a Default cell gives: `text` as the variable's value, "not set", "empty", "on" or "off"."""
    match = DEFAULT.match(cell)
    assert match, f"{env_name(spec)}: the Default cell must start with `value`, not set, empty, on or off: {cell!r}"
    word = match.group(2)
    if word == "not set":
        return None
    return parse(spec, "" if word == "empty" else word or match.group(1))


def test_the_docs_have_the_service_table_and_gunicorns():
    assert len(documented_tables()) == 2


@pytest.mark.parametrize(("table", "groups"), [(0, SERVICE_GROUPS), (1, GUNICORN_GROUPS)], ids=["service", "gunicorn"])
def test_the_docs_tables_list_exactly_the_declared_variables_with_their_defaults(table, groups):
    rows = documented_tables()[table]
    declared = {env_name(spec): spec for group in groups for spec in fields(group)}
    assert set(rows) == set(declared)
    for name, spec in declared.items():
        assert documented_default(spec, rows[name]) == spec.default, f"{name}: documented {rows[name]!r}"
