"""`python manage.py admins ...`: the console's accounts."""

import sys

import click

from console.accounts import AccountError, all_admins, create_admin, remove_admin
from models import Tenant, db


@click.group("admins")
def admins_cli():
    """Accounts of the admin console (/admin), separate from SCIM and event credentials."""


@admins_cli.command("create")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input, not a prompt.")
@click.option("--tenant", "tenants", multiple=True, metavar="NAME",
              help="Limit the account to this tenant (repeat for several); not given: every tenant.")
def admins_create(email, password_stdin, tenants):
    """A console account; the password is kept only as a salted hash."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        admin = create_admin(email, password, list(tenants) or None)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created admin {admin.email}" + (f" for tenants {', '.join(tenants)}" if tenants else ""))


@admins_cli.command("list")
def admins_list():
    names = dict(db.session.query(Tenant.id, Tenant.name).all())
    for admin in all_admins():
        seen = ", ".join(names.get(i, str(i)) for i in admin.tenants) if admin.tenants is not None else "every tenant"
        last = admin.last_login.strftime("%Y-%m-%d %H:%M:%S") if admin.last_login else "never"
        click.echo(f"{admin.email}\t{seen}\tlast login {last}")


@admins_cli.command("remove")
@click.argument("email")
def admins_remove(email):
    """Remove the account; its sessions end at their next request."""
    if not remove_admin(email):
        raise click.ClickException(f"no admin {email!r}")
    click.echo(f"Removed admin {email}")
