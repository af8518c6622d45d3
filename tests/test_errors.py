"""Authentication and errors: every failure is an RFC 7644 §3.12 body, never an HTML page."""

import pytest

from app import database_url
from tests.conftest import TOKEN, user_body

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def assert_scim_error(response, status, scim_type=None):
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/scim+json"
    assert response.json["schemas"] == [ERROR]
    assert response.json["status"] == str(status)
    assert response.json["detail"]
    if scim_type:
        assert response.json["scimType"] == scim_type


@pytest.mark.parametrize("headers", [
    {},                                              # missing header
    {"Authorization": "non-token"},                  # Okta SPEC step 11
    {"Authorization": "Basic dXNlcjpwYXNz"},          # wrong scheme
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": "Bearer "},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": TOKEN},                        # bare token without the scheme
])
def test_every_bad_credential_is_401_with_a_bearer_challenge(client, headers):
    response = client.get("/scim/v2/Users", headers=headers)
    assert_scim_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_scheme_is_case_insensitive(client, scheme):
    assert client.get("/scim/v2/Users", headers={"Authorization": f"{scheme} {TOKEN}"}).status_code == 200


def test_unknown_paths_under_scim_need_the_token_too(client):
    assert_scim_error(client.get("/scim/v2/Nothing"), 401)


def test_refused_request_writes_nothing(client, api):
    response = client.post("/scim/v2/Users", json=user_body("sneaky@example.com"),
                           headers={"Authorization": "Bearer nope"})
    assert_scim_error(response, 401)
    assert api.get("/Users").json["totalResults"] == 0


def test_without_a_configured_token_everything_is_401(make_app):
    app = make_app(SCIM_BEARER_TOKEN=None)
    response = app.test_client().get("/scim/v2/Users", headers={"Authorization": "Bearer anything"})
    assert_scim_error(response, 401)


def test_unknown_path_is_a_scim_404(api, client):
    assert_scim_error(api.get("/Nothing"), 404)
    assert_scim_error(client.get("/elsewhere"), 404)


def test_wrong_method_is_a_scim_405(api):
    response = api.request("DELETE", "/Users")
    assert_scim_error(response, 405)
    assert "GET" in response.headers["Allow"]


def test_unsupported_media_type_is_415(api):
    response = api.request("POST", "/Users", data="userName=x", headers={"Content-Type": "text/plain"})
    assert_scim_error(response, 415)


@pytest.mark.parametrize("content_type", [
    "application/scim+json", "application/scim+json; charset=utf-8", "application/json",
])
def test_both_json_media_types_are_accepted(api, content_type):
    response = api.request("POST", "/Users", data='{"userName": "ct@example.com"}',
                           headers={"Content-Type": content_type})
    assert response.status_code == 201


def test_oversized_body_is_413(app, api):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = api.post("/Users", json=user_body("big@example.com", title="x" * 2000))
    assert_scim_error(response, 413)
    assert api.get("/Users").json["totalResults"] == 0


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '"a string"', "", "[" * 100000])
def test_body_that_is_not_a_json_object_is_400_invalid_syntax(api, data):
    response = api.request("POST", "/Users", data=data, headers={"Content-Type": "application/scim+json"})
    assert_scim_error(response, 400, "invalidSyntax")


def test_unexpected_failure_is_a_scim_500_without_internals(app, api, monkeypatch):
    import scim.users

    def explode(_users):
        raise RuntimeError("secret internals")
    monkeypatch.setattr(scim.users, "render_users", explode)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = api.get("/Users?sortBy=userName")  # a list Flask's path answers
    assert_scim_error(response, 500)
    assert "secret" not in response.get_data(as_text=True)


def test_locations_follow_forwarded_headers_when_proxy_is_trusted(make_app):
    app = make_app(TRUST_PROXY=True)
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Forwarded-Proto": "https",
               "X-Forwarded-Host": "abc123.ngrok.app"}
    response = app.test_client().post("/scim/v2/Users", json=user_body("proxy@example.com"), headers=headers)
    assert response.status_code == 201
    assert response.headers["Location"].startswith("https://abc123.ngrok.app/scim/v2/Users/")
    assert response.json["meta"]["location"] == response.headers["Location"]


def test_forwarded_headers_are_ignored_unless_trusted(api):
    response = api.post("/Users", json=user_body("direct@example.com"),
                        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"})
    assert response.headers["Location"].startswith("http://localhost/scim/v2/Users/")


@pytest.mark.parametrize("url, expected", [
    (None, "sqlite:////srv/instance/scim.db"),
    ("postgres://u:p@db/scim", "postgresql+psycopg://u:p@db/scim"),
    ("postgresql://u@db/scim", "postgresql+psycopg://u@db/scim"),
    ("postgresql+psycopg://u@db/scim", "postgresql+psycopg://u@db/scim"),
])
def test_database_url_defaults_to_sqlite_and_rewrites_heroku_urls(url, expected):
    assert database_url(url, "/srv/instance") == expected
