"""The settings, one typed field each, read from the environment. docs/configuration.md lists the same
variables with the same defaults (tests/test_settings.py checks it).

Three groups: `Settings`, the service's own (app.config, read by create_app); `DevServerSettings`, where
`python app.py` listens; `GunicornSettings`, read by gunicorn.conf.py. A value that does not parse as the
field's type stops the start with an error naming the variable and what it accepts.
"""

import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields

TRUE_WORDS = {"1", "true", "yes", "on"}  # a switch is on for these (any case); any other value is off


class SettingError(ValueError):
    """A value in the environment that its setting cannot take."""


def setting(env: str, default, description: str, *, key: str | None = None):
    """A field read from the environment variable `env`, stored in app.config as `key` (default: `env`)."""
    return field(default=default, metadata={"env": env, "key": key or env, "description": description})


def parse_int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SettingError(f"{name} must be an integer, got {text!r}") from None


def parse_float(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SettingError(f"{name} must be a number, got {text!r}") from None


def split_words(text: str) -> tuple[str, ...]:
    return tuple(word for word in text.replace(",", " ").split() if word)


# How the text of an environment variable becomes the field's value, by the field's type. Empty text is
# "not set" for the optional ones, off for a switch, and an error for a number.
PARSERS = {
    int: parse_int,
    float: parse_float,
    bool: lambda _name, text: text.lower() in TRUE_WORDS,
    str: lambda _name, text: text,
    str | None: lambda _name, text: text or None,
    int | None: lambda name, text: parse_int(name, text) if text else None,
    tuple[str, ...]: lambda _name, text: split_words(text),
}


def parse(spec: Field, text: str):
    """The value of the field for the text of its environment variable."""
    return PARSERS[spec.type](spec.metadata["env"], text)


class FromEnvironment:
    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ):
        """The settings the environment gives; the default for each variable it does not set."""
        return cls(**{spec.name: parse(spec, environ[spec.metadata["env"]])
                      for spec in fields(cls) if spec.metadata["env"] in environ})


def database_url(url: str | None, instance_path: str) -> str:
    """The SQLAlchemy URL: SQLite in the instance folder by default; Heroku-style URLs rewritten for psycopg 3."""
    if not url:
        return "sqlite:///" + os.path.join(instance_path, "scim.db")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@dataclass(frozen=True)
class Settings(FromEnvironment):
    """The service's settings; `to_config` gives them under their app.config keys."""

    database_url: str | None = setting(
        "DATABASE_URL", None, "SQLAlchemy database URL; not set: SQLite at instance/scim.db",
        key="SQLALCHEMY_DATABASE_URI")
    bearer_token: str | None = setting("SCIM_BEARER_TOKEN", None, "A bootstrap token, at least 20 characters")
    token_pepper: str = setting("SCIM_TOKEN_PEPPER", "", "The key of the HMAC that stored tokens are hashed with")
    accept_bare_token: bool = setting("SCIM_ACCEPT_BARE_TOKEN", False, "Also accept `Authorization: <token>`")
    auth_failure_limit: int = setting(
        "SCIM_AUTH_FAILURE_LIMIT", 20, "Refused credentials per client address and window before 429; 0: no limit")
    auth_failure_window: int = setting("SCIM_AUTH_FAILURE_WINDOW", 300, "Seconds of the window above")
    token_cache_seconds: float = setting(
        "SCIM_TOKEN_CACHE_SECONDS", 1.0, "Seconds a worker keeps a stored credential it has read; 0: never")
    trust_proxy: bool = setting("TRUST_PROXY", False, "Take scheme, host and client address from X-Forwarded-*")
    max_body_bytes: int = setting(
        "SCIM_MAX_BODY_BYTES", 8 * 1024 * 1024, "The largest request body; larger is 413", key="MAX_CONTENT_LENGTH")
    max_json_depth: int = setting("SCIM_MAX_JSON_DEPTH", 32, "The deepest nesting a body may have")
    default_page_size: int = setting("SCIM_DEFAULT_PAGE_SIZE", 100, "The count of a list request that gives none")
    max_page_size: int = setting("SCIM_MAX_PAGE_SIZE", 1000, "The cap on count")
    cursor_timeout: int = setting(
        "SCIM_CURSOR_TIMEOUT", 3600, "Seconds a paging cursor stays valid after its page; 0: no limit")
    bulk_max_operations: int = setting("SCIM_BULK_MAX_OPERATIONS", 100, "The most operations in one /Bulk request")
    bulk_max_payload: int = setting("SCIM_BULK_MAX_PAYLOAD", 1024 * 1024, "The largest /Bulk body in bytes")
    bulk_time_budget: float = setting("SCIM_BULK_TIME_BUDGET", 30.0, "Seconds a /Bulk request may spend")
    max_patch_operations: int = setting("SCIM_MAX_PATCH_OPERATIONS", 10000, "The most operations in one PATCH")
    max_values: int = setting("SCIM_MAX_VALUES", 1000, "The most values one multi-valued attribute may hold")
    max_filter_length: int = setting(
        "SCIM_MAX_FILTER_LENGTH", 10000, "The longest filter, sortBy or PATCH path, in characters")
    max_attribute_names: int = setting(
        "SCIM_MAX_ATTRIBUTE_NAMES", 200, "The most names attributes or excludedAttributes may list")
    user_extensions: tuple[str, ...] = setting(
        "SCIM_USER_EXTENSIONS", (), "Custom extension schema URNs for users, separated by spaces or commas")
    group_extensions: tuple[str, ...] = setting(
        "SCIM_GROUP_EXTENSIONS", (), "Custom extension schema URNs for groups, separated by spaces or commas")
    audit_retention_days: int = setting("SCIM_AUDIT_RETENTION_DAYS", 90, "Days of audit rows to keep; 0: forever")
    audit_prune_one_in: int = setting(
        "SCIM_AUDIT_PRUNE_ONE_IN", 1000, "About one request in this many prunes the audit trail; 0: never")
    event_retention_days: int = setting(
        "SCIM_EVENT_RETENTION_DAYS", 30, "Days of events the feed keeps (each tenant's newest always); 0: forever")
    webhook_allowed_hosts: tuple[str, ...] = setting(
        "SCIM_WEBHOOK_ALLOWED_HOSTS", (),
        "Hosts, *.domains, addresses or networks webhooks may call; empty: any public address")
    webhook_timeout: float = setting("SCIM_WEBHOOK_TIMEOUT", 10.0, "Seconds a webhook receiver has to answer")
    webhook_retry_seconds: int = setting(
        "SCIM_WEBHOOK_RETRY_SECONDS", 86400, "How long a failing delivery is retried before it is dead-lettered")
    webhook_backoff_seconds: float = setting(
        "SCIM_WEBHOOK_BACKOFF_SECONDS", 5.0, "The first retry's delay; it doubles with each attempt")
    webhook_backoff_max_seconds: float = setting(
        "SCIM_WEBHOOK_BACKOFF_MAX_SECONDS", 3600.0, "The longest delay between two attempts")
    webhook_poll_seconds: float = setting(
        "SCIM_WEBHOOK_POLL_SECONDS", 1.0, "How often a delivery worker looks for work when nothing wakes it")
    audit_flush_seconds: float = setting(
        "SCIM_AUDIT_FLUSH_SECONDS", 0.2, "Most seconds a hot-path read's audit row waits to be written; 0: none")
    access_log: bool = setting("SCIM_ACCESS_LOG", True, "One JSON line per SCIM request on stdout")
    console: bool = setting("SCIM_CONSOLE", False, "The admin console at /admin; needs SCIM_CONSOLE_SECRET_KEY")
    console_secret_key: str | None = setting(
        "SCIM_CONSOLE_SECRET_KEY", None, "The key console sessions are signed with, at least 32 characters")
    console_secure_cookie: bool = setting(
        "SCIM_CONSOLE_SECURE_COOKIE", True, "Console cookies only over HTTPS; off for plain http on 127.0.0.1")
    console_idle_minutes: int = setting(
        "SCIM_CONSOLE_IDLE_MINUTES", 30, "Minutes without a request after which a console session ends")
    console_login_limit: int = setting(
        "SCIM_CONSOLE_LOGIN_LIMIT", 5, "Failed console logins per account or address in 15 minutes; 0: no limit")
    metrics_token: str | None = setting(
        "SCIM_METRICS_TOKEN", None, "The bearer token a scrape of /metrics sends; not set: no /metrics")
    db_connect_timeout: int = setting(
        "SCIM_DB_CONNECT_TIMEOUT", 5, "Seconds to wait for a connection (SQLite: for a write lock)")
    db_statement_timeout_ms: int = setting(
        "SCIM_DB_STATEMENT_TIMEOUT_MS", 15000, "PostgreSQL statement_timeout in milliseconds")
    db_pool_size: int = setting("SCIM_DB_POOL_SIZE", 5, "PostgreSQL connections each process keeps open")
    db_pool_timeout: int = setting("SCIM_DB_POOL_TIMEOUT", 5, "Seconds a request waits for a pooled connection")
    db_pre_ping: bool = setting("SCIM_DB_PRE_PING", False, "Ping each connection as it leaves the pool")
    db_transaction_pooling: bool = setting(
        "SCIM_DB_TRANSACTION_POOLING", False,
        "DATABASE_URL is a pooler in transaction mode (PgBouncer): session settings go with each transaction")
    db_prepare_threshold: int | None = setting(
        "SCIM_DB_PREPARE_THRESHOLD", None,
        "Executions of a query before it is prepared on the server; 0: never; not set: 5, never when pooled")

    def to_config(self, instance_path: str) -> dict:
        """The settings under their app.config keys, with the database URL made final."""
        config = {spec.metadata["key"]: getattr(self, spec.name) for spec in fields(self)}
        config["SQLALCHEMY_DATABASE_URI"] = database_url(self.database_url, instance_path)
        return config


@dataclass(frozen=True)
class DevServerSettings(FromEnvironment):
    """Where `python app.py` (and `make run`) listens."""

    host: str = setting("HOST", "127.0.0.1", "The address `python app.py` listens on")
    port: int = setting("PORT", 5000, "The port `python app.py` listens on")


@dataclass(frozen=True)
class GunicornSettings(FromEnvironment):
    """gunicorn.conf.py's settings (gunicorn also reads GUNICORN_CMD_ARGS itself)."""

    bind: str = setting("GUNICORN_BIND", "127.0.0.1:8000", "The address and port gunicorn listens on")
    workers: int | None = setting("WEB_CONCURRENCY", None, "Worker processes; not set: twice the number of CPUs")
    worker_class: str = setting("GUNICORN_WORKER_CLASS", "sync", "sync, or gthread with no buffering proxy in front")
    threads: int | None = setting("GUNICORN_THREADS", None, "Threads per worker; not set: 4 with gthread, else 1")
    timeout: int = setting("GUNICORN_TIMEOUT", 60, "Seconds a request may run before its worker is replaced")
    graceful_timeout: int = setting(
        "GUNICORN_GRACEFUL_TIMEOUT", 30, "Seconds workers get to finish their requests on SIGTERM or SIGHUP")
    max_requests: int = setting("GUNICORN_MAX_REQUESTS", 10000, "Requests before a worker is replaced")
    metrics_dir: str | None = setting(
        "PROMETHEUS_MULTIPROC_DIR", None, "Where workers keep their metrics; not set: a fresh temporary folder")


# The docs' tables, in order: the service's settings (with the development server's), then gunicorn's.
SERVICE_GROUPS = (Settings, DevServerSettings)
GUNICORN_GROUPS = (GunicornSettings,)
