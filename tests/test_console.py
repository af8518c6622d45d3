"""The admin console (docs/console.md), through Flask's test client: accounts, sessions, CSRF, the throttle, and
what each page shows, limited to the admin's tenants. tests/test_console_browser.py drives it in a browser."""


import re

import pytest
from markupsafe import escape
from sqlalchemy import select
from werkzeug.security import check_password_hash

from app import create_app
from console.accounts import create_admin
from models import Admin, AdminLogin, AuditEntry, Token, db
from scim.tenants import create_tenant
from scim.tokens import create_token
from tests.conftest import DATABASE_SETTINGS, Api, user_body

PASSWORD = "correct horse battery staple"
CONSOLE = {"SCIM_CONSOLE": True, "SCIM_CONSOLE_SECRET_KEY": "console-test-key-" + "k" * 32,
           "SCIM_CONSOLE_SECURE_COOKIE": False}


@pytest.fixture
def console_app(make_app, app):
    return make_app(**CONSOLE)


def csrf_of(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def logged_in(console_app, email="ops@example.com", tenants=None):
    """A test client with a session of a new admin."""
    create_admin(email, PASSWORD, tenants)
    client = console_app.test_client()
    token = csrf_of(client.get("/admin/login"))
    response = client.post("/admin/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    return client


def test_the_console_is_off_unless_switched_on(client):
    assert client.get("/admin/login").status_code == 404


def test_the_console_will_not_start_without_a_secret_key(migrated):
    with pytest.raises(RuntimeError, match="SCIM_CONSOLE_SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": migrated, **DATABASE_SETTINGS, **CONSOLE,
                    "SCIM_CONSOLE_SECRET_KEY": "short"})


def test_every_page_but_login_needs_a_session(console_app):
    client = console_app.test_client()
    for path in ("/admin/", "/admin/users", "/admin/requests", "/admin/tokens"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login")


def test_a_password_is_kept_only_as_a_salted_hash(app):
    create_admin("Hash@Example.com", PASSWORD)
    stored = db.session.scalar(select(Admin).where(Admin.email == "hash@example.com"))
    assert PASSWORD not in stored.password_hash and check_password_hash(stored.password_hash, PASSWORD)
    assert stored.password_hash.startswith("scrypt:")


def test_a_login_sets_a_strict_http_only_cookie_for_the_console_only(console_app):
    create_admin("ops@example.com", PASSWORD)
    client = console_app.test_client()
    token = csrf_of(client.get("/admin/login"))
    response = client.post("/admin/login", data={"email": "ops@example.com", "password": PASSWORD,
                                                 "csrf_token": token})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie


def test_a_wrong_password_is_refused_recorded_and_then_throttled(console_app):
    create_admin("ops@example.com", PASSWORD)
    client = console_app.test_client()
    token = csrf_of(client.get("/admin/login"))
    for _ in range(5):
        response = client.post("/admin/login", data={"email": "ops@example.com", "password": "wrong password!",
                                                     "csrf_token": token})
        assert response.status_code == 401 and b"Wrong email or password" in response.data
    right = client.post("/admin/login", data={"email": "ops@example.com", "password": PASSWORD,
                                              "csrf_token": token})
    assert right.status_code == 429 and b"Too many failed logins" in right.data
    assert client.get("/admin/").status_code == 302  # no session was made
    failures = db.session.scalars(select(AdminLogin.ok).where(AdminLogin.email == "ops@example.com")).all()
    assert failures == [False] * 5


def test_login_attempts_older_than_the_audit_retention_are_deleted(console_app):
    from datetime import timedelta

    from models import utcnow
    db.session.add(AdminLogin(email="old@example.com", client_ip="192.0.2.1", ok=False,
                              at=utcnow() - timedelta(days=console_app.config["SCIM_AUDIT_RETENTION_DAYS"] + 1)))
    db.session.commit()
    logged_in(console_app)
    assert db.session.scalars(select(AdminLogin.email)).all() == ["ops@example.com"]


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(console_app):
    client = logged_in(console_app)
    response = client.post("/admin/tokens", data={"name": "forged", "tenant": "1", "scope": "scim"})
    assert response.status_code == 400 and b"Form refused" in response.data
    assert db.session.scalar(select(Token).where(Token.name == "forged")) is None
    assert client.post("/admin/login", data={"email": "ops@example.com", "password": PASSWORD}).status_code == 400


def test_logout_ends_the_session_even_for_a_copy_of_its_cookie(console_app):
    client = logged_in(console_app)
    copy = console_app.test_client()
    copy.set_cookie("scim_console", client.get_cookie("scim_console", path="/admin").value, path="/admin")
    assert copy.get("/admin/").status_code == 200
    page = client.get("/admin/")
    assert client.post("/admin/logout", data={"csrf_token": csrf_of(page)}).status_code == 302
    assert client.get("/admin/").status_code == 302
    assert copy.get("/admin/").status_code == 302


def test_a_session_ends_after_the_idle_timeout(make_app, app):
    client = logged_in(make_app(**CONSOLE, SCIM_CONSOLE_IDLE_MINUTES=0))
    response = client.get("/admin/users")
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login")


def test_a_removed_admin_is_logged_out(console_app):
    from console.accounts import remove_admin
    client = logged_in(console_app)
    assert remove_admin("ops@example.com")
    assert client.get("/admin/").status_code == 302


def test_the_user_page_shows_its_attributes_groups_and_the_requests_that_touched_it(console_app):
    api = Api(console_app.test_client())
    created = api.post("/Users", json=user_body("seen@example.com", externalId="ext-seen")).get_json()
    api.patch(f"/Users/{created['id']}", json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                               "Operations": [{"op": "replace", "value": {"active": False}}]})
    client = logged_in(console_app)
    found = client.get("/admin/users?q=seen@").get_data(as_text=True)
    assert f'/admin/users/{created["id"]}' in found
    assert f'/admin/users/{created["id"]}' in client.get("/admin/users?q=ext-seen").get_data(as_text=True)
    assert f'/admin/users/{created["id"]}' not in client.get("/admin/users?q=zzz").get_data(as_text=True)
    page = client.get(f"/admin/users/{created['id']}").get_data(as_text=True)
    assert "seen@example.com" in page and "inactive" in page and "user.deactivated" in page
    assert page.count("/admin/requests/") == 2  # the POST and the PATCH


def test_a_failed_request_shows_its_status_scim_type_detail_and_redacted_body(console_app):
    api = Api(console_app.test_client())
    api.post("/Users", json=user_body("twice@example.com"))
    api.post("/Users", json=user_body("twice@example.com", password="Secret-pass-123"))
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.status == 409))
    page = logged_in(console_app).get(f"/admin/requests/{entry.id}").get_data(as_text=True)
    assert "409" in page and "uniqueness" in page and entry.detail and str(escape(entry.detail)) in page
    assert "Secret-pass-123" not in page and "twice@example.com" in page


def test_the_request_log_filters_by_status(console_app):
    api = Api(console_app.test_client())
    api.get("/Users")
    api.get("/Users/no-such-user")
    client = logged_in(console_app)
    failed = client.get("/admin/requests?status=failed").get_data(as_text=True)
    assert "/scim/v2/Users/no-such-user" in failed and "<td>200</td>" not in failed
    assert "<td>200</td>" in client.get("/admin/requests").get_data(as_text=True)


def test_the_request_log_finds_a_users_requests_by_its_username(console_app):
    api = Api(console_app.test_client())
    user = api.post("/Users", json=user_body("logged@example.com")).get_json()
    api.get(f"/Users/{user['id']}")
    api.get("/Users/someone-else")
    page = logged_in(console_app).get("/admin/requests?resource=Logged@Example.com").get_data(as_text=True)
    assert page.count("/admin/requests/") == 2 and "someone-else" not in page


def test_a_token_made_in_the_console_is_shown_once_works_and_can_be_revoked(console_app):
    client = logged_in(console_app)
    page = client.post("/admin/tokens", data={"name": "okta-acme", "tenant": "1", "scope": "scim",
                                              "csrf_token": csrf_of(client.get("/admin/tokens"))})
    secret = re.search(r'<pre class="secret" id="secret">([^<]+)</pre>', page.get_data(as_text=True)).group(1)
    scim = Api(console_app.test_client(), {"Authorization": f"Bearer {secret}"})
    assert scim.get("/Users").status_code == 200
    listing = client.get("/admin/tokens").get_data(as_text=True)
    assert secret not in listing and "okta-acme" in listing
    token_id = db.session.scalar(select(Token.id).where(Token.name == "okta-acme"))
    assert client.post(f"/admin/tokens/{token_id}/revoke",
                       data={"csrf_token": csrf_of(client.get("/admin/tokens"))}).status_code == 302
    console_app.extensions["scim.credentials"].clear()  # this test's process: the cache bound is 1 s
    assert scim.get("/Users").status_code == 401


def test_an_admin_limited_to_a_tenant_sees_and_changes_nothing_of_another(console_app):
    second = create_tenant("second")
    _token, secret = create_token("second-token", tenant_id=second.id)
    default_user = Api(console_app.test_client()).post("/Users", json=user_body("a@example.com")).get_json()
    Api(console_app.test_client(), {"Authorization": f"Bearer {secret}"}).post(
        "/Users", json=user_body("b@example.com"))
    create_token("default-okta")
    client = logged_in(console_app, "second-ops@example.com", ["second"])
    assert "default" not in client.get("/admin/").get_data(as_text=True)
    assert client.get(f"/admin/users/{default_user['id']}").status_code == 404
    assert client.get("/admin/users?tenant=1").status_code == 404
    assert "b@example.com" in client.get("/admin/users").get_data(as_text=True)
    log = client.get("/admin/requests").get_data(as_text=True)
    assert "second-token" in log and "SCIM_BEARER_TOKEN" not in log
    hidden = db.session.scalar(select(AuditEntry.id).where(AuditEntry.tenant_id == 1))
    assert client.get(f"/admin/requests/{hidden}").status_code == 404
    tokens = client.get("/admin/tokens")
    assert "default-okta" not in tokens.get_data(as_text=True)
    other = db.session.scalar(select(Token).where(Token.name == "default-okta"))
    assert client.post(f"/admin/tokens/{other.id}/revoke", data={"csrf_token": csrf_of(tokens)}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Token, other.id).revoked is None
    made = client.post("/admin/tokens", data={"name": "sneaky", "tenant": "1", "scope": "scim",
                                              "csrf_token": csrf_of(tokens)})
    assert made.status_code == 404 and db.session.scalar(select(Token).where(Token.name == "sneaky")) is None


def test_the_overview_counts_each_tenant_and_warns_before_entra_would_quarantine(console_app):
    api = Api(console_app.test_client())
    for index in range(10):
        api.get(f"/Users/missing-{index}")
    api.post("/Users", json=user_body("counted@example.com"))
    page = logged_in(console_app).get("/admin/").get_data(as_text=True)
    assert "<dd>10 of 11</dd>" in page and "quarantines" in page
    assert ": 11 requests, 10 failed</title>" in page  # the chart's bar of this hour


def test_the_admins_commands(console_app):
    runner = console_app.test_cli_runner()
    made = runner.invoke(args=["admins", "create", "cli@example.com", "--password-stdin"], input=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    assert runner.invoke(args=["admins", "create", "cli@example.com", "--password-stdin"],
                         input=PASSWORD + "\n").exit_code == 1
    assert runner.invoke(args=["admins", "create", "short@example.com", "--password-stdin"],
                         input="short\n").exit_code == 1
    assert "cli@example.com\tevery tenant" in runner.invoke(args=["admins", "list"]).output
    assert PASSWORD not in runner.invoke(args=["admins", "list"]).output
    assert runner.invoke(args=["admins", "remove", "cli@example.com"]).exit_code == 0
    assert runner.invoke(args=["admins", "remove", "cli@example.com"]).exit_code == 1


def test_a_group_page_pages_its_members_in_username_order(console_app):
    api = Api(console_app.test_client())
    ids = [api.post("/Users", json=user_body(f"member{index:02}@example.com")).get_json()["id"] for index in range(60)]
    group = api.post("/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                      "displayName": "Engineering", "members": [{"value": i} for i in ids]}).get_json()
    client = logged_in(console_app)
    listing = client.get("/admin/groups?q=eng").get_data(as_text=True)
    assert f"/admin/groups/{group['id']}" in listing and "<td>60</td>" in listing
    first = client.get(f"/admin/groups/{group['id']}").get_data(as_text=True)
    assert "member00@example.com" in first and "member49@example.com" in first
    assert "member50@example.com" not in first and "after=member49@example.com" in first
    rest = client.get(f"/admin/groups/{group['id']}?after=member49@example.com").get_data(as_text=True)
    assert "member50@example.com" in rest and "member59@example.com" in rest and "member49@example.com" not in rest


def test_tenants_are_created_and_disabled_only_by_an_admin_of_every_tenant(console_app):
    client = logged_in(console_app)
    page = client.get("/admin/tenants")
    client.post("/admin/tenants", data={"name": "acme", "csrf_token": csrf_of(page)})
    from scim.tenants import find_tenant
    acme = find_tenant("acme")
    _token, secret = create_token("acme-token", tenant_id=acme.id)
    assert client.post(f"/admin/tenants/{acme.id}/disable", data={"csrf_token": csrf_of(page)}).status_code == 302
    console_app.extensions["scim.credentials"].clear()
    assert Api(console_app.test_client(), {"Authorization": f"Bearer {secret}"}).get("/Users").status_code == 401
    limited = logged_in(console_app, "acme-ops@example.com", ["acme"])
    tenants_page = limited.get("/admin/tenants")
    assert "New tenant" not in tenants_page.get_data(as_text=True)
    assert limited.post(f"/admin/tenants/{acme.id}/enable",
                        data={"csrf_token": csrf_of(limited.get("/admin/tokens"))}).status_code == 404
    db.session.expire_all()
    assert find_tenant("acme").disabled is not None


def test_the_webhooks_pages_show_failed_deliveries_and_send_them_again(console_app):
    from models import DEFAULT_TENANT_ID, Delivery
    from scim import delivery
    from scim.webhooks import add_webhook
    console_app.config["SCIM_WEBHOOK_ALLOWED_HOSTS"] = ("127.0.0.1",)
    with console_app.app_context():
        hook, _secret = add_webhook(DEFAULT_TENANT_ID, "http://127.0.0.1:9/hook")
        hook_id = hook.id
    Api(console_app.test_client()).post("/Users", json=user_body("hooked@example.com"))
    with console_app.app_context():
        delivery.make_deliveries()
        db.session.execute(Delivery.__table__.update().values(state="failed", last_status=503,
                                                              last_error="HTTP 503"))
        db.session.commit()
    client = logged_in(console_app)
    assert "http://127.0.0.1:9/hook" in client.get("/admin/webhooks").get_data(as_text=True)
    page = client.get(f"/admin/webhooks/{hook_id}?failed=1")
    assert "user.created" in page.get_data(as_text=True) and "HTTP 503" in page.get_data(as_text=True)
    assert client.post(f"/admin/webhooks/{hook_id}/redrive", data={"csrf_token": csrf_of(page)}).status_code == 302
    db.session.expire_all()
    assert db.session.scalars(select(Delivery.state)).all() == ["pending"]
