"""The admin console in a real browser: Debian's chromium, driven by Playwright, against gunicorn on 127.0.0.1.
On the SQLite pass it also takes the screenshots of docs/console.md."""

import os
import shutil
import time

import pytest

from console.accounts import create_admin
from tests.conftest import BACKEND, user_body
from tests.servers import gunicorn, request

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "screenshots")
EMAIL, PASSWORD = "ops@example.com", "a long passphrase for the console"
# As root (CI) chromium needs --no-sandbox; the rest keep it from calling out of this closed machine.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
LOGIN_LIMIT = 3

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (.ci/run installs it)")


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def server(app, migrated):
    create_admin(EMAIL, PASSWORD)
    with gunicorn(migrated, SCIM_CONSOLE=1, SCIM_CONSOLE_SECRET_KEY="browser-test-key-" + "b" * 32,
                  SCIM_CONSOLE_SECURE_COOKIE=0, SCIM_CONSOLE_LOGIN_LIMIT=LOGIN_LIMIT, SCIM_AUTH_FAILURE_LIMIT=0,
                  SCIM_TOKEN_CACHE_SECONDS=1) as (port, _):
        yield port


def screenshot(page, name):
    if BACKEND == "sqlite":
        os.makedirs(SCREENSHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def log_in(page, base=None, password=PASSWORD):
    """Log in on the login page, opened first unless the browser is on it already."""
    if base is not None:
        page.goto(f"{base}/admin/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", password)
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    return navigation.value


def status_with(port, secret) -> int:
    return request(port, "GET", "/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"})[0]


def test_an_operator_finds_what_the_idp_did_manages_a_token_and_logs_out(server, browser):
    port, base = server, f"http://127.0.0.1:{server}"
    status, created, _ = request(port, "POST", "/scim/v2/Users", user_body("browser.user@example.com"))
    assert status == 201
    assert request(port, "POST", "/scim/v2/Users", user_body("browser.user@example.com"))[0] == 409
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()

    assert page.goto(f"{base}/admin/users").url.startswith(f"{base}/admin/login")
    assert log_in(page).status == 200
    assert page.url == f"{base}/admin/users"  # where the login was asked for
    page.goto(f"{base}/admin/")
    assert "default" in page.inner_text("main") and page.locator("svg.chart").count() == 1
    screenshot(page, "overview")

    page.click("nav >> text=Users")
    page.fill("input[name=q]", "browser.user")
    page.click("form.filters button")
    screenshot(page, "users")
    page.click("text=browser.user@example.com")
    assert page.url == f"{base}/admin/users/{created['id']}"
    text = page.inner_text("main")
    assert "user.created" in text and "Requests about this user" in text
    assert page.locator("table.requests tbody tr").count() == 1  # its POST
    screenshot(page, "user")

    page.click("nav >> text=Requests")
    page.select_option("select[name=status]", "failed")
    page.click("form.filters button")
    screenshot(page, "requests")
    page.click("tr.failed >> nth=0 >> a")
    text = page.inner_text("main")
    assert "409" in text and "uniqueness" in text and "already exists" in text
    screenshot(page, "request")

    page.click("nav >> text=Tokens")
    page.fill("input[name=name]", "okta-from-browser")
    page.click("form.filters button")
    secret = page.inner_text("#secret").strip()
    assert status_with(port, secret) == 200
    page.click("text=Back to the tokens")
    page.click("button[aria-label='Revoke okta-from-browser']")
    assert "is revoked" in page.inner_text("main")
    time.sleep(1.2)  # every worker refuses it within the cache bound (SCIM_TOKEN_CACHE_SECONDS)
    assert [status_with(port, secret) for _ in range(4)] == [401] * 4

    page.fill("input[name=name]", "forged-in-browser")
    page.evaluate("document.querySelector('form.filters input[name=csrf_token]').remove()")
    with page.expect_navigation() as navigation:
        page.click("form.filters button")
    assert navigation.value.status == 400 and "Form refused" in page.inner_text("main")
    page.goto(f"{base}/admin/tokens")
    assert "forged-in-browser" not in page.inner_text("main")

    page.click("text=Log out")
    assert page.url == f"{base}/admin/login" and "logged out" in page.inner_text("main")
    assert page.goto(f"{base}/admin/").url.startswith(f"{base}/admin/login")


def test_wrong_passwords_are_refused_then_throttled(server, browser):
    base = f"http://127.0.0.1:{server}"
    page = browser.new_page()
    for _ in range(LOGIN_LIMIT):
        assert log_in(page, base, "not the password at all").status == 401
        assert "Wrong email or password" in page.inner_text("main")
    refused = log_in(page, base)  # the right password, too late
    assert refused.status == 429 and "Too many failed logins" in page.inner_text("main")
    assert page.goto(f"{base}/admin/").url.startswith(f"{base}/admin/login")
