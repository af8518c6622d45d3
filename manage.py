"""Operator commands: `python manage.py db init|migrate|upgrade`, `run`, `shell` (Flask's Click CLI)."""

from flask.cli import FlaskGroup

from app import create_app

cli = FlaskGroup(create_app=lambda: create_app())

if __name__ == "__main__":
    cli()
