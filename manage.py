"""Operator commands: `python manage.py db init|migrate|upgrade`, `run`, `shell` (Flask's Click CLI)."""

import click
from flask.cli import FlaskGroup, ScriptInfo
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import create_app
from dbcheck import diagnose, unreachable
from models import db


class ManageGroup(FlaskGroup):
    """Flask's CLI, where a database that does not answer, does not exist or is not migrated is one line
    naming the problem and a non-zero exit, in every command, instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (OperationalError, InterfaceError, ProgrammingError, PoolTimeout) as exc:
            app = ctx.ensure_object(ScriptInfo).load_app()
            with app.app_context():
                problem = diagnose(exc, app.config["SQLALCHEMY_DATABASE_URI"], db.session)
                db.engine.dispose()
            if problem is None and isinstance(exc, ProgrammingError):
                raise  # a statement the database refused: a bug, with its traceback
            raise click.ClickException((problem or unreachable(exc)).message) from None


cli = ManageGroup(create_app=lambda: create_app())

if __name__ == "__main__":
    cli()
