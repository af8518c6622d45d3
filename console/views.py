"""The console's pages: parse the query or form, call one step, render."""

import json
from datetime import timedelta

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from console import Denied, begin_session, console, safe_next
from console.accounts import log_in, log_out, throttled
from console.queries import RequestFilter, find_requests, request_of, tenant_summaries, tokens_of
from console.scope import chosen_tenant, tenant_ids, tenants
from models import SCOPES, Token, db, utcnow
from scim.tokens import create_token, revoke_token, state

SINCE = {"": None, "1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}


@console.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("console/login.html", next=request.args.get("next"))
    email, password = request.form.get("email", ""), request.form.get("password", "")
    if throttled(email, request.remote_addr, current_app.config["SCIM_CONSOLE_LOGIN_LIMIT"]):
        return render_template("console/login.html", email=email, next=request.form.get("next"),
                               error="Too many failed logins for this account or from this address: "
                                     "wait 15 minutes and try again."), 429
    admin = log_in(email, password, request.remote_addr, current_app.config["SCIM_AUDIT_RETENTION_DAYS"])
    if admin is None:
        return render_template("console/login.html", email=email, next=request.form.get("next"),
                               error="Wrong email or password."), 401
    begin_session(admin)
    return redirect(safe_next(request.form.get("next")))


@console.post("/logout")
def logout():
    log_out(g.admin.id)
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("console.login"))


@console.get("/")
def overview():
    return render_template("console/overview.html", summaries=tenant_summaries(tenants()))


@console.get("/requests")
def requests_log():
    chosen = RequestFilter(tenant_id=request.args.get("tenant", type=int), status=request.args.get("status", ""),
                           method=request.args.get("method", "")[:10],
                           resource_id=request.args.get("resource", "").strip()[:255])
    since = SINCE.get(request.args.get("since", ""))
    chosen.since = utcnow() - since if since else None
    rows = find_requests(tenant_ids(), g.admin.tenants is None, chosen, request.args.get("before", type=int))
    return render_template("console/requests.html", rows=rows, chosen=chosen, since=request.args.get("since", ""),
                           names={tenant.id: tenant.name for tenant in tenants()})


@console.get("/requests/<int:entry_id>")
def request_page(entry_id):
    entry = request_of(tenant_ids(), g.admin.tenants is None, entry_id)
    if entry is None:
        raise Denied()
    body = entry.request_body
    if body:
        try:
            body = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            pass  # kept as it came
    return render_template("console/request.html", entry=entry, body=body,
                           names={tenant.id: tenant.name for tenant in tenants()})


@console.get("/tokens")
def tokens():
    return render_template("console/tokens.html", tokens=tokens_of(tenant_ids()), state=state, scopes=SCOPES,
                           names={tenant.id: tenant.name for tenant in tenants()})


@console.post("/tokens")
def token_create():
    tenant = chosen_tenant()
    name, scope = request.form.get("name", "").strip(), request.form.get("scope", "scim")
    if tenant is None or not name or len(name) > 100 or scope not in SCOPES:
        flash("A token needs a name of 1 to 100 characters, a tenant and a scope.")
        return redirect(url_for("console.tokens"))
    try:
        _token, secret = create_token(name, tenant_id=tenant.id, scope=scope)
    except IntegrityError:
        db.session.rollback()
        flash(f"A token named {name!r} exists already: pick another name.")
        return redirect(url_for("console.tokens"))
    return render_template("console/token_created.html", name=name, tenant=tenant, scope=scope, secret=secret)


@console.post("/tokens/<int:token_id>/revoke")
def token_revoke(token_id):
    token = db.session.scalar(select(Token).where(Token.id == token_id, Token.tenant_id.in_(tenant_ids())))
    if token is None:
        raise Denied()
    revoke_token(token.name)
    flash(f"Token {token.name!r} is revoked: every worker refuses it within a second.")
    return redirect(url_for("console.tokens"))
