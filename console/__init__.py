"""The admin console at /admin (docs/console.md): server-rendered pages over the directory, the audit trail and
the credentials, for the people who run the service. Its accounts are its own (`manage.py admins`), never a
SCIM or event credential.

Sessions are Flask's signed cookies (SCIM_CONSOLE_SECRET_KEY), HttpOnly, SameSite=Strict, limited to /admin,
Secure unless SCIM_CONSOLE_SECURE_COOKIE is off; a session ends after SCIM_CONSOLE_IDLE_MINUTES without a
request, and at logout everywhere (the admin's session epoch moves on). Every form carries a CSRF token
(Flask-WTF). An admin limited to some tenants sees, counts and changes nothing of the others.
"""

import logging
import time
from urllib.parse import urlparse

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from models import Admin, db

console = Blueprint("console", __name__, url_prefix="/admin", template_folder="templates", static_folder="static")
csrf = CSRFProtect()
log = logging.getLogger(__name__)
OPEN = {"console.login", "console.static"}  # the endpoints that need no session
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Referrer-Policy": "same-origin",
           "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self' data:; "
                                      "frame-ancestors 'none'; form-action 'self'"}


class Denied(Exception):
    """A page of a tenant this admin may not see, or of nothing: answered as not found."""


def begin_session(admin: Admin) -> None:
    session.clear()
    session.update(admin=admin.id, epoch=admin.session_epoch, seen=time.time())


def _current_admin() -> Admin | None:
    """The session's admin, unless the session went idle, was ended by a logout, or the admin was removed."""
    admin_id, seen = session.get("admin"), session.get("seen", 0)
    if admin_id is None:
        return None
    if time.time() - seen > current_app.config["SCIM_CONSOLE_IDLE_MINUTES"] * 60:
        session.clear()
        g.console_notice = "Your session ended after a while without use: log in again."
        return None
    admin = db.session.get(Admin, admin_id)
    if admin is None or admin.session_epoch != session.get("epoch"):
        session.clear()
        return None
    session["seen"] = time.time()
    return admin


@console.before_request
def _guard():
    if request.method == "POST":
        csrf.protect()
    if request.endpoint in OPEN:
        return None
    g.admin = _current_admin()
    if g.admin is None:
        asked = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("console.login", next=asked))
    return None


@console.after_request
def _headers(response):
    response.headers.update(HEADERS)
    return response


@console.errorhandler(CSRFError)
def _csrf_refused(exc):
    return render_template("console/error.html", title="Form refused",
                           message="This form was not sent from this console's page, or it has expired. "
                                   "Go back, reload the page and send it again."), 400


@console.errorhandler(HTTPException)
def _http_error(exc):
    return render_template("console/error.html", title=exc.name, message=exc.description), exc.code


@console.errorhandler(Exception)
def _unexpected(exc):
    if isinstance(exc, Denied):
        return _denied(exc)
    log.exception("console page failed")
    db.session.rollback()
    return render_template("console/error.html", title="Something went wrong",
                           message="The page could not be shown; the server log says why."), 500


@console.errorhandler(Denied)
def _denied(_exc):
    return render_template("console/error.html", title="Not found", message="There is nothing here."), 404


def safe_next(target: str | None) -> str:
    """Where a login goes on to: a console page, never another site."""
    if target and target.startswith("/admin") and not urlparse(target).netloc and "//" not in target:
        return target
    return url_for("console.overview")


def register(app: Flask) -> None:
    from console import directory, tenancy, views  # noqa: F401  (routes attach themselves to the blueprint)

    app.config.update(SECRET_KEY=app.config["SCIM_CONSOLE_SECRET_KEY"], SESSION_COOKIE_PATH="/admin",
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_SECURE=app.config["SCIM_CONSOLE_SECURE_COOKIE"],
                      SESSION_COOKIE_NAME="scim_console", WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None)
    csrf.init_app(app)
    app.register_blueprint(console)
