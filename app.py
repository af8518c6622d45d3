"""Application factory. `python app.py` serves the development server (for curl and an ngrok tunnel)."""

import logging
import os
import secrets

from flask import Flask
from flask_migrate import Migrate
from werkzeug.middleware.proxy_fix import ProxyFix

import dbsession
from config import DevServerSettings, Settings, database_url
from models import db

migrate = Migrate()


def engine_options(config: dict) -> dict:
    """Bounded waits everywhere, so that a slow or absent database gives a quick 503, never a hung worker."""
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # How long a writer waits for another process's write lock before "database is locked" (503).
        return {"connect_args": {"timeout": config["SCIM_DB_CONNECT_TIMEOUT"]}}
    return {
        # No ping per request by default: a request whose connection the database dropped (restart, failover)
        # runs once more on a new one (models.once_more_if_dropped), and the pool renews its older connections.
        "pool_pre_ping": config["SCIM_DB_PRE_PING"],
        "pool_size": config["SCIM_DB_POOL_SIZE"],
        "pool_timeout": config["SCIM_DB_POOL_TIMEOUT"],
        "connect_args": {
            "connect_timeout": config["SCIM_DB_CONNECT_TIMEOUT"],
            # statement_timeout, asynchronous commit, prepared statements: direct or through PgBouncer.
            **dbsession.connect_args(config),
        },
    }


# A bootstrap token short enough to guess is refused at start-up (tokens made by `tokens create` have 43).
MIN_BOOTSTRAP_TOKEN_LENGTH = 20
MIN_CONSOLE_KEY_LENGTH = 32


def check_settings(config) -> None:
    token = config["SCIM_BEARER_TOKEN"]
    if token and len(token) < MIN_BOOTSTRAP_TOKEN_LENGTH:
        raise RuntimeError(f"SCIM_BEARER_TOKEN must be at least {MIN_BOOTSTRAP_TOKEN_LENGTH} characters long; "
                           "python -c 'import secrets; print(secrets.token_urlsafe(32))' makes a good one")
    if config["SCIM_CONSOLE"] and len(config["SCIM_CONSOLE_SECRET_KEY"] or "") < MIN_CONSOLE_KEY_LENGTH:
        raise RuntimeError(f"SCIM_CONSOLE is on: set SCIM_CONSOLE_SECRET_KEY to a random value of at least "
                           f"{MIN_CONSOLE_KEY_LENGTH} characters (python -c 'import secrets; "
                           "print(secrets.token_urlsafe(32))'), or turn the console off")
    scrape = config["SCIM_METRICS_TOKEN"]
    if scrape and len(scrape) < MIN_BOOTSTRAP_TOKEN_LENGTH:
        raise RuntimeError(f"SCIM_METRICS_TOKEN must be at least {MIN_BOOTSTRAP_TOKEN_LENGTH} characters long")


def create_app(settings: dict | None = None) -> Flask:
    """The app, with its settings from the environment; or, given a dict of app.config values (tests, bench),
    the defaults and that dict, and the environment is not read."""
    app = Flask(__name__, instance_relative_config=True)
    declared = Settings.from_env() if settings is None else Settings()
    app.config.update(declared.to_config(app.instance_path))
    app.config.update(settings or {})
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
    with app.app_context():
        dbsession.set_per_transaction(db.engine, app.config)

    from commands import audit_cli, events_cli, tenants_cli, tokens_cli, webhooks_cli
    from console.cli import admins_cli
    from health import health
    from metrics import metrics
    from scim import register
    from scim.feed import feed
    from scim.hotpath import HotPath

    register(app)
    # The reads IdPs send most, in front of Flask (PostgreSQL).
    app.wsgi_app = app.extensions["scim.hotpath"] = HotPath(app, app.wsgi_app)
    if app.config["TRUST_PROXY"]:
        # Behind ngrok or a reverse proxy: take scheme, host and client address from X-Forwarded-*.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)
    app.register_blueprint(health)
    app.register_blueprint(feed)
    app.register_blueprint(metrics)
    if app.config["SCIM_CONSOLE"]:
        import console
        console.register(app)
    app.cli.add_command(tenants_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(events_cli)
    app.cli.add_command(webhooks_cli)
    app.cli.add_command(admins_cli)
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
    if not os.environ.get("SCIM_CONSOLE"):
        # The console on the development server, over plain http, its sessions signed with a key of this run.
        os.environ["SCIM_CONSOLE"] = "1"
        os.environ.setdefault("SCIM_CONSOLE_SECURE_COOKIE", "0")
        os.environ.setdefault("SCIM_CONSOLE_SECRET_KEY", secrets.token_urlsafe(32))
        print("The admin console is at /admin; make an account with: python manage.py admins create EMAIL",
              flush=True)
    logging.basicConfig(level=logging.INFO)
    from scim.audit import RedactQueryStrings
    logging.getLogger("werkzeug").addFilter(RedactQueryStrings())  # its request lines carry query strings
    server = DevServerSettings.from_env()
    app = create_app()
    app.run(host=server.host, port=server.port)


if __name__ == "__main__":
    main()
