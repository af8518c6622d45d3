"""Input no database column can hold is a 400 (or a 404 for an id), never a database error."""

from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from models import Group, User, db
from tests.conftest import user_body


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("raw", [
    '{"userName": "nul\\u0000byte@example.com"}',
    '{"userName": "lone\\ud800surrogate@example.com"}',
    '{"userName": "ok@example.com", "title": "nul\\u0000"}',
    '{"userName": "ok@example.com", "ke\\u0000y": 1}',
])
def test_strings_a_database_cannot_store_are_400(api, raw):
    response = api.request("POST", "/Users", data=raw, headers={"Content-Type": "application/scim+json"})
    assert response.status_code == 400 and response.json["scimType"] == "invalidValue"
    assert count(User) == 0


@pytest.mark.parametrize("extra, detail", [
    ({"userName": "x" * 256 + "@example.com"}, "userName is longer than 255"),
    ({"displayName": "d" * 256}, "displayName is longer than 255"),
    ({"externalId": "e" * 256}, "externalId is longer than 255"),
    ({"name": {"givenName": "g" * 256}}, "name.givenName is longer than 255"),
    ({"emails": [{"value": "v" * 256}]}, "emails.value is longer than 255"),
    ({"emails": [{"value": "a@example.com", "type": "t" * 65}]}, "emails.type is longer than 64"),
])
def test_values_longer_than_their_column_are_400(api, extra, detail):
    body = {**user_body("long@example.com"), **extra}
    response = api.post("/Users", json=body)
    assert response.status_code == 400 and detail in response.json["detail"]
    assert count(User) == 0


def test_long_values_outside_indexed_columns_are_kept(api):
    response = api.post("/Users", json=user_body("roomy@example.com", title="t" * 5000))
    assert response.status_code == 201 and len(response.json["title"]) == 5000


def test_group_name_longer_than_its_column_is_400(api):
    assert api.post("/Groups", json={"displayName": "g" * 256}).status_code == 400
    assert count(Group) == 0


@pytest.mark.parametrize("resource_id", ["%00", "a%00b", "x" * 300])
def test_ids_no_resource_can_have_are_404(api, resource_id):
    for path in (f"/Users/{resource_id}", f"/Groups/{resource_id}"):
        assert api.get(path).status_code == 404
        assert api.delete(path).status_code == 404


def test_filter_value_with_nul_is_400(api):
    response = api.get("/Users?filter=" + quote('userName eq "a\x00b"'))
    assert response.status_code == 400 and response.json["scimType"] == "invalidFilter"


def test_health_endpoints_need_no_token_and_show_no_data(client, make_user):
    make_user("private@example.com")
    live = client.get("/healthz")
    ready = client.get("/readyz")
    assert (live.status_code, live.json) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json) == (200, {"status": "ready"})
    assert "private" not in live.get_data(as_text=True) + ready.get_data(as_text=True)


def test_readyz_is_503_when_the_database_does_not_answer(make_app):
    app = make_app(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/none",
                   SCIM_DB_CONNECT_TIMEOUT=1)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.json["status"] == "unavailable"
    assert app.test_client().get("/healthz").status_code == 200


class FakeDriverError(Exception):
    def __init__(self, message, sqlstate=None):
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize("driver_error, status", [
    (FakeDriverError("Expression tree is too large (maximum depth 1000)"), 400),   # SQLite's limit
    (FakeDriverError("statement too complex", sqlstate="54001"), 400),             # PostgreSQL class 54
    (FakeDriverError("connection refused"), 503),
    (FakeDriverError("canceling statement due to statement timeout", sqlstate="57014"), 503),
])
def test_database_limits_hit_by_the_request_are_400_not_retry_later(app, api, monkeypatch, driver_error, status):
    from sqlalchemy.exc import OperationalError

    import scim.users

    def fail(*_args):
        raise OperationalError("SELECT ...", {}, driver_error)
    monkeypatch.setattr(scim.users, "list_resources", fail)
    response = api.get("/Users?sortBy=userName")  # a list Flask's path answers
    assert response.status_code == status and response.json["status"] == str(status)
    assert ("Retry-After" in response.headers) == (status == 503)


@pytest.mark.parametrize("encoding", ["gzip", "br", "x-unknown"])
def test_compressed_bodies_are_415(api, encoding):
    response = api.request("POST", "/Users", data=b"\x1f\x8b\x08\x00", headers={
        "Content-Type": "application/scim+json", "Content-Encoding": encoding})
    assert response.status_code == 415 and response.json["status"] == "415"
    assert count(User) == 0


def test_the_app_keeps_logging_after_migrations_ran(app):
    import logging
    assert not logging.getLogger("scim.handlers").disabled
