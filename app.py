"""Application factory. `python app.py` serves the development server (for curl and an ngrok tunnel)."""

import logging
import os
import secrets

from flask import Flask
from flask_migrate import Migrate
from werkzeug.middleware.proxy_fix import ProxyFix

from models import db

migrate = Migrate()

TRUE_WORDS = {"1", "true", "yes", "on"}


def database_url(url: str | None, instance_path: str) -> str:
    """The SQLAlchemy URL: SQLite in the instance folder by default; Heroku-style URLs rewritten for psycopg 3."""
    if not url:
        return "sqlite:///" + os.path.join(instance_path, "scim.db")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def split_words(text: str) -> tuple[str, ...]:
    return tuple(word for word in text.replace(",", " ").split() if word)


def settings_from_env(instance_path: str) -> dict:
    env = os.environ
    return {
        "SQLALCHEMY_DATABASE_URI": database_url(env.get("DATABASE_URL"), instance_path),
        "SCIM_BEARER_TOKEN": env.get("SCIM_BEARER_TOKEN") or None,
        "TRUST_PROXY": env.get("TRUST_PROXY", "").lower() in TRUE_WORDS,
        "MAX_CONTENT_LENGTH": int(env.get("SCIM_MAX_BODY_BYTES", 8 * 1024 * 1024)),
        "SCIM_DEFAULT_PAGE_SIZE": int(env.get("SCIM_DEFAULT_PAGE_SIZE", 100)),
        "SCIM_MAX_PAGE_SIZE": int(env.get("SCIM_MAX_PAGE_SIZE", 1000)),
        "SCIM_BULK_MAX_OPERATIONS": int(env.get("SCIM_BULK_MAX_OPERATIONS", 100)),
        "SCIM_BULK_MAX_PAYLOAD": int(env.get("SCIM_BULK_MAX_PAYLOAD", 1024 * 1024)),
        "SCIM_BULK_TIME_BUDGET": float(env.get("SCIM_BULK_TIME_BUDGET", 30)),
        "SCIM_MAX_PATCH_OPERATIONS": int(env.get("SCIM_MAX_PATCH_OPERATIONS", 10000)),
        "SCIM_MAX_VALUES": int(env.get("SCIM_MAX_VALUES", 1000)),
        "SCIM_MAX_FILTER_LENGTH": int(env.get("SCIM_MAX_FILTER_LENGTH", 10000)),
        "SCIM_MAX_ATTRIBUTE_NAMES": int(env.get("SCIM_MAX_ATTRIBUTE_NAMES", 200)),
        "SCIM_MAX_JSON_DEPTH": int(env.get("SCIM_MAX_JSON_DEPTH", 32)),
        "SCIM_TOKEN_PEPPER": env.get("SCIM_TOKEN_PEPPER", ""),
        "SCIM_ACCEPT_BARE_TOKEN": env.get("SCIM_ACCEPT_BARE_TOKEN", "").lower() in TRUE_WORDS,
        "SCIM_AUTH_FAILURE_LIMIT": int(env.get("SCIM_AUTH_FAILURE_LIMIT", 20)),
        "SCIM_AUTH_FAILURE_WINDOW": int(env.get("SCIM_AUTH_FAILURE_WINDOW", 300)),
        "SCIM_AUDIT_RETENTION_DAYS": int(env.get("SCIM_AUDIT_RETENTION_DAYS", 90)),
        "SCIM_DB_CONNECT_TIMEOUT": int(env.get("SCIM_DB_CONNECT_TIMEOUT", 5)),
        "SCIM_DB_STATEMENT_TIMEOUT_MS": int(env.get("SCIM_DB_STATEMENT_TIMEOUT_MS", 15000)),
        "SCIM_DB_PRE_PING": env.get("SCIM_DB_PRE_PING", "1").lower() in TRUE_WORDS,
        "SCIM_DB_POOL_SIZE": int(env.get("SCIM_DB_POOL_SIZE", 5)),
        "SCIM_DB_POOL_TIMEOUT": int(env.get("SCIM_DB_POOL_TIMEOUT", 5)),
        "SCIM_USER_EXTENSIONS": split_words(env.get("SCIM_USER_EXTENSIONS", "")),
        "SCIM_GROUP_EXTENSIONS": split_words(env.get("SCIM_GROUP_EXTENSIONS", "")),
        "SCIM_AUDIT_PRUNE_ONE_IN": int(env.get("SCIM_AUDIT_PRUNE_ONE_IN", 1000)),
        "SCIM_ACCESS_LOG": env.get("SCIM_ACCESS_LOG", "1").lower() in TRUE_WORDS,
    }


def engine_options(config: dict) -> dict:
    """Bounded waits everywhere, so that a slow or absent database gives a quick 503, never a hung worker."""
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # How long a writer waits for another process's write lock before "database is locked" (503).
        return {"connect_args": {"timeout": config["SCIM_DB_CONNECT_TIMEOUT"]}}
    return {
        # A connection the database dropped (restart, failover) is found by a ping when it leaves the pool and
        # replaced, so service resumes by itself. It costs one round trip a request; SCIM_DB_PRE_PING=0 saves
        # it, at the price of failed requests on stale connections after a database restart.
        "pool_pre_ping": config["SCIM_DB_PRE_PING"],
        "pool_size": config["SCIM_DB_POOL_SIZE"],
        "pool_timeout": config["SCIM_DB_POOL_TIMEOUT"],
        "connect_args": {
            "connect_timeout": config["SCIM_DB_CONNECT_TIMEOUT"],
            # Asynchronous commit by default (reads and the audit trail); data changes ask for a durable
            # commit (models.durable_commit).
            "options": f"-c statement_timeout={config['SCIM_DB_STATEMENT_TIMEOUT_MS']} -c synchronous_commit=off",
        },
    }


# A bootstrap token short enough to guess is refused at start-up (tokens made by `tokens create` have 43).
MIN_BOOTSTRAP_TOKEN_LENGTH = 20


def check_settings(config) -> None:
    token = config.get("SCIM_BEARER_TOKEN")
    if token and len(token) < MIN_BOOTSTRAP_TOKEN_LENGTH:
        raise RuntimeError(f"SCIM_BEARER_TOKEN must be at least {MIN_BOOTSTRAP_TOKEN_LENGTH} characters long; "
                           "python -c 'import secrets; print(secrets.token_urlsafe(32))' makes a good one")


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(settings_from_env(app.instance_path))
    if config:
        app.config.update(config)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url(
        app.config["SQLALCHEMY_DATABASE_URI"], app.instance_path
    )
    check_settings(app.config)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config))
    app.json.sort_keys = False
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        os.makedirs(app.instance_path, exist_ok=True)

    db.init_app(app)
    migrate.init_app(app, db)

    if app.config["TRUST_PROXY"]:
        # Behind ngrok or a reverse proxy: take scheme, host and client address from X-Forwarded-*.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)

    from commands import audit_cli, tokens_cli
    from health import health
    from scim import register

    register(app)
    app.register_blueprint(health)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(audit_cli)
    if not app.config["SCIM_BEARER_TOKEN"]:
        app.logger.info("SCIM_BEARER_TOKEN is not set: only tokens from `manage.py tokens create` are accepted")
    return app


def main() -> None:
    if not os.environ.get("SCIM_BEARER_TOKEN"):
        # Never a fixed, well-known default: a fresh random token for this run, shown once.
        os.environ["SCIM_BEARER_TOKEN"] = secrets.token_urlsafe(32)
        print("SCIM_BEARER_TOKEN was not set; this run accepts the token:")
        print("  " + os.environ["SCIM_BEARER_TOKEN"])
        print("Send it as the header  Authorization: Bearer <token>", flush=True)
    logging.basicConfig(level=logging.INFO)
    from scim.audit import RedactQueryStrings
    logging.getLogger("werkzeug").addFilter(RedactQueryStrings())  # its request lines carry query strings
    app = create_app()
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", 5000))
    app.run(host=host, port=port)


if __name__ == "__main__":
    main()
