"""The token store: create, use, list, rotate, revoke and expire; Basic and bare-token header auth."""

import base64
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

import scim.tokens
from models import Token, db, utcnow
from scim.tokens import create_token
from tests.conftest import TOKEN


def cli(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def new_token(app, name, *options):
    """`manage.py tokens create NAME`: the secret is the one line that is neither a message nor a date."""
    output = cli(app, "tokens", "create", name, *options)
    return output.splitlines()[1].strip()


def get_users(client, authorization, **kw):
    return client.get("/scim/v2/Users", headers={"Authorization": authorization}, **kw)


def database_text():
    """Every value in every table, as text: what a stolen database would reveal."""
    tables = ["users", "groups", "link", "user_emails", "tokens", "audit"]
    return "\n".join(str(row) for t in tables for row in db.session.execute(text(f"SELECT * FROM {t}")))


def test_created_token_works_and_only_its_hash_is_stored(app, client):
    secret = new_token(app, "okta")
    assert len(secret) >= 40
    assert get_users(client, f"Bearer {secret}").status_code == 200
    stored = db.session.scalar(select(Token).where(Token.name == "okta"))
    assert stored.secret_hash != secret and len(stored.secret_hash) == 64
    assert secret not in database_text()


def test_list_shows_names_and_states_never_secrets(app, client):
    secret = new_token(app, "okta-prod")
    get_users(client, f"Bearer {secret}")
    output = cli(app, "tokens", "list")
    assert "okta-prod" in output and "active" in output
    assert secret not in output
    assert utcnow().strftime("%Y-%m-%d") in output.splitlines()[1]  # created and last used


def test_rotation_with_two_active_tokens_has_no_failed_request(app, client):
    old = new_token(app, "okta-2026")
    assert get_users(client, f"Bearer {old}").status_code == 200
    new = new_token(app, "okta-2027")
    # Both work while the IdP is switched over...
    assert [get_users(client, f"Bearer {t}").status_code for t in (old, new, old, new)] == [200] * 4
    cli(app, "tokens", "revoke", "okta-2026")
    # ...and the old one is refused from the very next request.
    refused = get_users(client, f"Bearer {old}")
    assert refused.status_code == 401 and "revoked" in refused.json["detail"]
    assert get_users(client, f"Bearer {new}").status_code == 200


def test_revoke_of_an_unknown_name_fails(app):
    result = app.test_cli_runner().invoke(args=["tokens", "revoke", "nobody"])
    assert result.exit_code != 0 and "no token named" in result.output


def test_duplicate_name_is_refused(app):
    new_token(app, "twice")
    result = app.test_cli_runner().invoke(args=["tokens", "create", "twice"])
    assert result.exit_code != 0 and "already exists" in result.output


def test_expired_token_is_refused_from_its_expiry_on_even_when_kept_in_memory(app, client, monkeypatch):
    _, secret = create_token("short-lived", expires=utcnow() + timedelta(hours=1))
    assert get_users(client, f"Bearer {secret}").status_code == 200  # now kept in the worker's cache
    later = utcnow() + timedelta(hours=1, seconds=1)
    monkeypatch.setattr(scim.tokens, "utcnow", lambda: later)
    refused = get_users(client, f"Bearer {secret}")
    assert refused.status_code == 401 and "expired" in refused.json["detail"]
    assert "expired" in cli(app, "tokens", "list")


def test_a_change_made_in_the_database_directly_takes_effect_within_the_cache_bound(app, client):
    app.config["SCIM_TOKEN_CACHE_SECONDS"] = 0.2
    _, secret = create_token("edited", expires=utcnow() + timedelta(hours=1))
    app.extensions.pop("scim.credentials", None)  # a cache with the shorter bound
    assert get_users(client, f"Bearer {secret}").status_code == 200
    token = db.session.scalar(select(Token).where(Token.name == "edited"))
    token.expires = utcnow() - timedelta(seconds=1)
    db.session.commit()
    time.sleep(0.3)
    refused = get_users(client, f"Bearer {secret}")
    assert refused.status_code == 401 and "expired" in refused.json["detail"]


def test_a_kept_credential_costs_no_query(app, client, count_statements):
    secret = new_token(app, "cached")
    assert get_users(client, f"Bearer {secret}").status_code == 200
    with count_statements() as first:
        get_users(client, f"Bearer {TOKEN}")
    with count_statements() as stored:
        get_users(client, f"Bearer {secret}")
    assert stored.count == first.count  # a stored token costs what the bootstrap token costs: nothing


def test_expires_option_accepts_durations_and_dates(app):
    new_token(app, "ninety", "--expires", "90d")
    new_token(app, "dated", "--expires", "2031-01-31")
    tokens = {t.name: t for t in db.session.scalars(select(Token))}
    assert abs((tokens["ninety"].expires.replace(tzinfo=None) - utcnow().replace(tzinfo=None)).days - 90) <= 1
    assert tokens["dated"].expires.strftime("%Y-%m-%d") == "2031-01-31"


def test_last_used_is_recorded(app, client):
    secret = new_token(app, "used")
    assert db.session.scalar(select(Token.last_used).where(Token.name == "used")) is None
    get_users(client, f"Bearer {secret}")
    db.session.expire_all()
    assert db.session.scalar(select(Token.last_used).where(Token.name == "used")) is not None


def test_a_first_use_recorded_after_another_process_wrote_does_not_fail(app):
    """The token is read, another connection commits a write, then the use is recorded: on SQLite a read
    transaction that turns into a write one would fail at once ("database is locked", no wait), so the use is
    written in a transaction of its own."""
    secret = new_token(app, "raced")
    scim.tokens.cache().clear()
    hashed, credential = scim.tokens.find(secret, read=True)
    other = db.engine.connect()
    try:
        other.execute(update(Token).where(Token.name == "raced").values(name="renamed"))
        other.commit()
    finally:
        other.close()
    scim.tokens.mark_used(hashed, credential)
    db.session.expire_all()
    assert db.session.scalar(select(Token.last_used).where(Token.id == credential.id)) is not None


def test_bootstrap_token_works_alongside_the_store(app, client):
    stored = new_token(app, "stored")
    assert get_users(client, f"Bearer {TOKEN}").status_code == 200
    assert get_users(client, f"Bearer {stored}").status_code == 200


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_pair_is_accepted_and_a_wrong_password_refused(app, client):
    password = new_token(app, "okta-basic", "--basic", "okta")
    assert get_users(client, basic("okta", password)).status_code == 200
    assert get_users(client, basic("okta", password + "x")).status_code == 401
    assert get_users(client, basic("someone", password)).status_code == 401
    assert get_users(client, f"Bearer {password}").status_code == 401  # a Basic password is not a token
    assert password not in database_text()


@pytest.mark.parametrize("header", ["Basic !!!notbase64", "Basic " + base64.b64encode(b"\xff\xfe").decode()])
def test_malformed_basic_header_is_401(client, header):
    assert get_users(client, header).status_code == 401


def test_bare_token_is_accepted_only_when_enabled(app, client):
    secret = new_token(app, "aiw")
    assert get_users(client, secret).status_code == 401
    assert get_users(client, TOKEN).status_code == 401
    app.config["SCIM_ACCEPT_BARE_TOKEN"] = True
    assert get_users(client, secret).status_code == 200
    assert get_users(client, TOKEN).status_code == 200
    assert get_users(client, "wrong").status_code == 401


def test_hash_depends_on_the_pepper(app, client):
    _, secret = create_token("peppered")
    app.config["SCIM_TOKEN_PEPPER"] = "another-server-secret"
    assert get_users(client, f"Bearer {secret}").status_code == 401
