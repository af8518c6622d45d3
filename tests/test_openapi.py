"""The OpenAPI description at /scim/v2/openapi.json is valid, complete and true.

Complete: every route the app serves under /scim/v2 is described, and nothing else. True: real requests through
the whole app (the `checked` fixture) get only statuses the document declares for that operation, in the media
type it declares, with bodies and headers that validate against it; and a bounded schemathesis run finds no
server error and no response that contradicts it (SCHEMATHESIS_MAX_EXAMPLES=200 runs longer).
"""

import itertools
import os
import re
from json import dumps

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app import create_app
from models import DEFAULT_TENANT_ID, Group, User, db
from scim import discovery
from scim.openapi import openapi_document
from scim.schema import ENTERPRISE_SCHEMA, USER_SCHEMA
from tests.conftest import AUTH, TOKEN, Api, user_body

PREFIX = "/scim/v2"
IGNORED_METHODS = {"HEAD", "OPTIONS"}  # answered by Flask for every route
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20"))


def fetch_document(client) -> dict:
    response = client.get(PREFIX + "/openapi.json", headers=AUTH)
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.json


class Contract:
    """Checks a real response against what the document promises for its operation."""

    def __init__(self, document: dict):
        self.document = document
        self.validators = {}
        self.seen: set[tuple[str, str]] = set()
        self.routes = []
        for template in document["paths"]:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            self.routes.append((template.count("{"), re.compile(f"^{re.escape(PREFIX)}{pattern}$"), template))
        self.routes.sort(key=lambda route: route[0])  # /Users/.search before /Users/{id}

    def operation(self, method: str, path: str) -> tuple[str, dict] | tuple[None, None]:
        for _, pattern, template in self.routes:
            operation = self.document["paths"][template].get(method.lower())
            if pattern.match(path) and operation:
                return template, operation
        return None, None

    def resolve(self, item: dict) -> dict:
        while "$ref" in item:
            node = self.document
            for part in item["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            item = node
        return item

    def validate(self, schema: dict, instance, where: str) -> None:
        key = dumps(schema, sort_keys=True)
        if key not in self.validators:
            root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": self.document[
                "components"], "allOf": [schema]}
            self.validators[key] = jsonschema_rs.validator_for(root, validate_formats=True)
        errors = [f"{e.instance_path}: {e.message}" for e in self.validators[key].iter_errors(instance)]
        assert not errors, f"{where}: {errors[:5]}"

    def check(self, method: str, path: str, response) -> bool:
        """Whether the operation is described; if it is, the response must be one the document declares."""
        template, operation = self.operation(method, path)
        if operation is None:
            return False
        where = f"{method} {path} -> {response.status_code}"
        declared = operation["responses"].get(str(response.status_code))
        assert declared is not None, f"{where} is not a declared status: {response.get_data(as_text=True)[:300]}"
        declared = self.resolve(declared)
        content = declared.get("content")
        if content is None:
            assert response.get_data() == b"" and "Content-Type" not in response.headers, where
        else:
            assert response.mimetype in content, f"{where}: media type {response.mimetype}"
            self.validate(content[response.mimetype]["schema"], response.get_json(), where)
        for name, spec in declared.get("headers", {}).items():
            spec = self.resolve(spec)
            if spec.get("required"):
                assert name in response.headers, f"{where}: no {name} header"
            if name in response.headers:
                self.validate(spec["schema"], response.headers[name], f"{where} header {name}")
        self.seen.add((method.upper(), template))
        return True


class CheckedApi(Api):
    """The test client, with every answer checked against the served document. Each request runs in an
    application context of its own, as in production: under the test's context `g` would outlive a request
    (a SearchRequest's parameters would apply to the next GET)."""

    def __init__(self, client, contract: Contract):
        super().__init__(client)
        self.contract = contract

    def request(self, method, path, json=None, headers=None, **kw):
        with self.client.application.app_context():
            response = super().request(method, path, json=json, headers=headers, **kw)
        self.contract.check(method, PREFIX + path.split("?")[0], response)
        return response


@pytest.fixture
def document(client):
    return fetch_document(client)


@pytest.fixture
def contract(document):
    return Contract(document)


@pytest.fixture
def checked(client, contract):
    return CheckedApi(client, contract)


# The document itself

def test_document_is_valid_openapi_3_1(document):
    errors = [f"{e.instance_path}: {e.message}" for e in OPENAPI_31_VALIDATOR.iter_errors(document)]
    assert not errors, errors[:5]
    assert document["openapi"] == "3.1.0"


def test_document_needs_the_token_like_everything_else(client):
    response = client.get(PREFIX + "/openapi.json")
    assert response.status_code == 401 and response.json["status"] == "401"


def test_every_route_is_described_and_every_described_operation_is_served(app, document):
    def shape(path: str) -> str:
        return re.sub(r"\{[^}]+\}|<[^>]+>", "{}", path)
    served = {(method, shape(rule.rule.removeprefix(PREFIX)))
              for rule in app.url_map.iter_rules() if rule.rule.startswith(PREFIX + "/")
              for method in rule.methods - IGNORED_METHODS}
    described = {(method.upper(), shape(path)) for path, item in document["paths"].items()
                 for method in item if method != "parameters"}
    assert served == described


def test_server_url_is_the_scim_base(document):
    assert document["servers"] == [{"url": "http://localhost/scim/v2"}]


@pytest.mark.parametrize("table, component", [
    (USER_SCHEMA, "User"), (ENTERPRISE_SCHEMA, "EnterpriseUser"),
    ("urn:ietf:params:scim:schemas:core:2.0:Group", "Group"),
])
def test_resource_schemas_follow_the_schemas_the_service_advertises(api, document, table, component):
    """/Schemas and the OpenAPI components come from the same tables: same attributes, types, mutability."""
    types = {"string": "string", "reference": "string", "binary": "string", "boolean": "boolean",
             "complex": "object"}

    def compare(attributes: list[dict], served: dict, accepted: dict | None):
        """`accepted` is None under a read-only attribute: nothing of it is accepted."""
        for attribute in attributes:
            name = attribute["name"]
            if attribute["returned"] == "never":
                assert name not in served and accepted[name]["writeOnly"] is True
                continue
            out = served[name]["items"] if attribute["multiValued"] else served[name]
            assert out["type"] == types[attribute["type"]], name
            assert served[name].get("readOnly", False) == (attribute["mutability"] == "readOnly"), name
            into = None
            if accepted is not None:
                assert (name in accepted) == (attribute["mutability"] != "readOnly"), name
                into = accepted.get(name)
            if attribute.get("subAttributes"):
                into = into.get("items", into)["properties"] if into else None
                compare(attribute["subAttributes"], out["properties"], into)

    advertised = api.get(f"/Schemas/{table}").json["attributes"]
    schemas = document["components"]["schemas"]
    compare(advertised, schemas[component]["properties"], schemas[component + "Request"]["properties"])
    common = {"schemas", "id", "externalId", "meta"} if component != "EnterpriseUser" else set()
    extensions = {ENTERPRISE_SCHEMA} if component == "User" else set()
    assert set(schemas[component]["properties"]) == {a["name"] for a in advertised if a["returned"] != "never"} \
        | common | extensions


def test_bulk_limit_in_the_document_follows_the_configuration(make_app):
    other = make_app(SCIM_BULK_MAX_OPERATIONS=7)
    bulk = fetch_document(other.test_client())["components"]["schemas"]["BulkRequest"]
    assert bulk["properties"]["Operations"]["maxItems"] == 7


def test_custom_extensions_from_the_configuration_are_described(make_app):
    urn = "urn:ietf:params:scim:schemas:extension:okta:2.0:User"
    other = make_app(SCIM_USER_EXTENSIONS=(urn,))
    user = fetch_document(other.test_client())["components"]["schemas"]["User"]
    assert user["properties"][urn] == {"type": "object"}


def test_discovery_tables_are_the_source(document):
    # The descriptions are discovery's own: one wording for /Schemas and the OpenAPI document.
    user = document["components"]["schemas"]["User"]["properties"]
    assert user["userName"]["description"] == discovery.DESCRIPTIONS["userName"]
    assert user["name"]["properties"]["givenName"]["description"] == discovery.DESCRIPTIONS["name.givenName"]


# Real traffic, validated against the document

def patch_body(*operations):
    return {"schemas": [PATCH], "Operations": list(operations)}


def create_and_read_users(api) -> tuple[str, str, str]:
    """(user id, manager id, first version) after creates, reads, lists and searches, right and wrong."""
    boss = api.post("/Users", json=user_body("boss@example.com"))
    assert boss.status_code == 201
    created = api.post("/Users", json=user_body("ann@example.com", title="Dev", **{
        ENTERPRISE_SCHEMA: {"employeeNumber": "42", "department": "R&D", "manager": {"value": boss.json["id"]}}}))
    assert created.status_code == 201
    user_id, version = created.json["id"], created.headers["ETag"]
    assert api.post("/Users?attributes=userName", json=user_body("bob@example.com")).status_code == 201
    assert api.post("/Users", json=user_body("ANN@example.com")).status_code == 409
    assert api.request("POST", "/Users", data="{nope", headers={"Content-Type": "application/json"}).status_code == 400
    assert api.post("/Users", json={"name": {"givenName": "No userName"}}).status_code == 400
    assert api.get(f"/Users/{user_id}").status_code == 200
    assert api.get(f"/Users/{user_id}", headers={"If-None-Match": version}).status_code == 304
    assert api.get(f"/Users/{user_id}?excludedAttributes=meta,emails").status_code == 200
    assert api.get("/Users/no-such-id").status_code == 404
    listed = api.get('/Users?filter=userName sw "a" or title eq "Dev"&sortBy=userName&sortOrder=descending'
                     '&startIndex=1&count=1&attributes=userName,name.givenName')
    assert listed.status_code == 200 and listed.json["totalResults"] == 1
    assert api.get("/Users?count=0").status_code == 200
    paged = api.get("/Users?cursor=&count=1&sortBy=userName")  # RFC 9865: no startIndex, a nextCursor
    assert paged.status_code == 200 and "startIndex" not in paged.json
    following = api.get(f"/Users?cursor={paged.json['nextCursor']}&count=1&sortBy=userName")
    assert following.status_code == 200 and following.json["previousCursor"]
    assert api.get("/Users?cursor=not-issued-here").status_code == 400
    assert api.post("/Users/.search", json={"cursor": "", "count": 1}).status_code == 200
    assert api.get("/Users?filter=nonsense eq").status_code == 400
    assert api.post("/Users/.search", json={"schemas": [SEARCH], "filter": 'userName eq "ann@example.com"',
                                             "attributes": ["userName"], "count": 5}).status_code == 200
    assert api.post("/Users/.search", json={"startIndex": "one"}).status_code == 400
    return user_id, boss.json["id"], version


def change_users(api, user_id: str, boss_id: str, version: str) -> None:
    stale = {"If-Match": version}
    replaced = api.put(f"/Users/{user_id}", json=user_body("ann@example.com", given="Anne"), headers=stale)
    assert replaced.status_code == 200
    assert api.put(f"/Users/{user_id}", json=user_body("ann@example.com"), headers=stale).status_code == 412
    assert api.put("/Users/no-such-id", json=user_body("x@example.com")).status_code == 404
    patched = api.patch(f"/Users/{user_id}", json=patch_body(
        {"op": "replace", "value": {"active": False}},
        {"op": "add", "path": "emails", "value": [{"value": "ann@home.example", "type": "home"}]},
        {"op": "replace", "path": f"{ENTERPRISE_SCHEMA}:department", "value": "Ops"}))
    assert patched.status_code == 200 and patched.json["active"] is False
    assert api.patch(f"/Users/{user_id}", json=patch_body({"op": "remove"})).status_code == 400
    taken = patch_body({"op": "replace", "path": "userName", "value": "BOSS@example.com"})
    assert api.patch(f"/Users/{user_id}", json=taken).status_code == 409
    add_title = patch_body({"op": "add", "path": "title", "value": "x"})
    assert api.patch(f"/Users/{user_id}", json=add_title, headers=stale).status_code == 412
    assert api.patch("/Users/no-such-id", json=add_title).status_code == 404
    assert api.delete(f"/Users/{boss_id}", headers={"If-Match": 'W/"999"'}).status_code == 412
    assert api.delete(f"/Users/{boss_id}").status_code == 204
    assert api.delete(f"/Users/{boss_id}").status_code == 404


def groups_tour(api, user_ids: list[str]) -> None:
    created = api.post("/Groups", json={"displayName": "Engineering", "members": [{"value": user_ids[0]}]})
    assert created.status_code == 201
    group_id, version = created.json["id"], created.headers["ETag"]
    assert api.post("/Groups", json={"displayName": "engineering"}).status_code == 409
    assert api.post("/Groups", json={"displayName": "Ghosts", "members": [{"value": "nobody"}]}).status_code == 400
    assert api.get(f"/Groups/{group_id}").json["members"][0]["value"] == user_ids[0]
    assert api.get(f"/Groups/{group_id}", headers={"If-None-Match": version}).status_code == 304
    assert api.get("/Groups/no-such-id").status_code == 404
    assert api.get(f'/Groups?filter=members[value eq "{user_ids[0]}"]&excludedAttributes=members').status_code == 200
    assert api.get("/Groups?sortBy=nothing").status_code == 400
    assert api.post("/Groups/.search", json={"filter": 'displayName co "eng"'}).status_code == 200
    assert api.post("/Groups/.search", json={"schemas": ["wrong"]}).status_code == 400
    assert api.put(f"/Groups/{group_id}", json={"displayName": "Eng", "members": []}).status_code == 200
    assert api.put(f"/Groups/{group_id}", json={"displayName": "Eng"}, headers={"If-Match": version}).status_code == 412
    assert api.put("/Groups/no-such-id", json={"displayName": "x"}).status_code == 404
    other = api.post("/Groups", json={"displayName": "Other"}).json["id"]
    assert api.put(f"/Groups/{other}", json={"displayName": "eng"}).status_code == 409
    patch = patch_body({"op": "add", "path": "members", "value": [{"value": user_ids[0]}]},
                       {"op": "remove", "path": f'members[value eq "{user_ids[0]}"]'},
                       {"op": "replace", "path": "externalId", "value": "ext-1"})
    assert api.patch(f"/Groups/{group_id}", json=patch).status_code in (200, 204)
    assert api.patch(f"/Groups/{group_id}?attributes=displayName", json=patch_body(
        {"op": "replace", "path": "displayName", "value": "Engineers"})).status_code == 200
    assert api.patch(f"/Groups/{group_id}", json=patch_body({"op": "replace", "path": "displayName",
                                                               "value": "OTHER"})).status_code == 409
    broken = patch_body({"op": "add", "path": "members[", "value": 1})
    assert api.patch(f"/Groups/{group_id}", json=broken).status_code == 400
    assert api.patch(f"/Groups/{group_id}", json=patch, headers={"If-Match": version}).status_code == 412
    assert api.patch("/Groups/no-such-id", json=patch).status_code == 404
    assert api.delete(f"/Groups/{group_id}", headers={"If-Match": version}).status_code == 412
    assert api.delete(f"/Groups/{group_id}").status_code == 204
    assert api.delete(f"/Groups/{group_id}").status_code == 404


def search_and_bulk_tour(app, api, user_ids: list[str]) -> None:
    assert api.post("/.search", json={"schemas": [SEARCH], "sortBy": "displayName", "count": 10}).status_code == 200
    assert api.post("/.search", json={"filter": "userName"}).status_code == 400
    operations = [
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_body("bulk@example.com")},
        {"method": "POST", "path": "/Groups", "bulkId": "g1",
         "data": {"displayName": "Bulk", "members": [{"value": "bulkId:u1"}]}},
        {"method": "PATCH", "path": f"/Users/{user_ids[0]}",
         "data": patch_body({"op": "replace", "path": "title", "value": "Lead"})},
        {"method": "DELETE", "path": "/Users/no-such-id"},
        {"method": "GET", "path": "/Users"},
        {"method": "POST", "path": "/Groups", "bulkId": "g2", "data": {"displayName": "x", "members": [
            {"value": "bulkId:never"}]}},
    ]
    answer = api.post("/Bulk", json={"schemas": [BULK], "Operations": operations})
    assert [op["status"] for op in answer.json["Operations"]] == ["201", "201", "200", "404", "400", "409"]
    assert api.post("/Bulk", json={"schemas": [BULK], "Operations": "all of them"}).status_code == 400
    app.config["SCIM_BULK_MAX_OPERATIONS"] = 1
    assert api.post("/Bulk", json={"Operations": operations[:2]}).status_code == 413


def discovery_tour(api) -> None:
    for path in ("/ServiceProviderConfig", "/ResourceTypes", "/ResourceTypes/Group", "/Schemas",
                 f"/Schemas/{ENTERPRISE_SCHEMA}", "/openapi.json"):
        assert api.get(path).status_code == 200, path
    assert api.get("/ResourceTypes/Printer").status_code == 404
    assert api.get("/Schemas/urn:nothing").status_code == 404
    assert api.get('/Schemas?filter=id eq "x"').status_code == 403
    assert api.get('/ResourceTypes?filter=id eq "x"').status_code == 403
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        assert api.request(method, "/Me").status_code == 501
    assert api.request("PATCH", "/Me", data="x", headers={"Content-Type": "text/plain"}).status_code == 415


def test_a_tour_of_every_operation_answers_as_the_document_says(app, checked, contract):
    user_id, boss_id, version = create_and_read_users(checked)
    change_users(checked, user_id, boss_id, version)
    user_ids = [user_id]
    groups_tour(checked, user_ids)
    search_and_bulk_tour(app, checked, user_ids)
    discovery_tour(checked)
    described = {(method.upper(), path) for path, item in contract.document["paths"].items()
                 for method in item if method != "parameters"}
    assert described - contract.seen == set()


def fail_with(exception):
    def fail(*_args, **_kwargs):
        raise exception
    return fail


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/Users", 401), ("POST", "/Groups", 401), ("DELETE", "/Users/x", 401), ("GET", "/Schemas", 401),
    ("POST", "/Users", 413), ("POST", "/Groups/.search", 413), ("POST", "/Bulk", 413),
    ("POST", "/.search", 415), ("PUT", "/Users/x", 415),
])
def test_refusals_before_the_view_match_the_document(app, checked, contract, method, path, status):
    app.config["MAX_CONTENT_LENGTH"] = 100
    headers = {"Authorization": "Bearer wrong"} if status == 401 else {}
    if status == 415:
        headers["Content-Type"] = "text/csv"
    data = "{" + " " * 200 + "}"
    response = checked.request(method, path, data=data, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == status and (method, re.sub("/x$", "/{id}", path)) in contract.seen


def test_too_many_failed_logins_is_a_documented_429(app, checked, contract):
    app.config["SCIM_AUTH_FAILURE_LIMIT"] = 2
    statuses = [checked.get("/Users", headers={"Authorization": "Bearer wrong"}).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


@pytest.mark.parametrize("exception, status", [
    (RuntimeError("boom"), 500),
    (OperationalError("SELECT 1", {}, Exception("server closed the connection")), 503),
])
def test_failures_inside_the_service_match_the_document(app, checked, monkeypatch, exception, status):
    import scim.users
    app.config["PROPAGATE_EXCEPTIONS"] = False
    monkeypatch.setattr(scim.users, "normalize_resource", fail_with(exception))
    assert checked.post("/Users", json=user_body("x@example.com")).status_code == status


def test_a_method_a_path_does_not_offer_is_405_with_allow(checked):
    response = checked.request("DELETE", "/Users")
    assert response.status_code == 405 and set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert response.json["status"] == "405" and response.mimetype == "application/scim+json"


# schemathesis: generated requests for every operation, in-process over WSGI

def build_document() -> dict:
    """The document as served, built at import time: schemathesis makes one test per operation from it."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SCIM_BEARER_TOKEN": TOKEN})
    with app.test_request_context():
        return openapi_document(app.config)


generated = schemathesis.openapi.from_dict(build_document())
generated.config.update(headers=AUTH)


def test_the_generated_tests_use_the_served_document(client):
    assert fetch_document(client) == generated.raw_schema


CALLS = itertools.count()


def live_id(path: str) -> str:
    """The id of an existing User or Group, made if there is none: random ids would only ever find 404."""
    model = Group if path.startswith("/Groups") else User
    found = db.session.scalar(select(model.id).limit(1))
    if found is None:
        named = {"user_name": "live@example.com"} if model is User else {"display_name": "Live"}
        found = model(tenant_id=DEFAULT_TENANT_ID, **named)  # the bootstrap token's tenant
        db.session.add(found)
        db.session.commit()
        found = found.id
    return found


@generated.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_server_error_and_match_the_document(case, app):
    with app.app_context():  # one context per request, as in production (see CheckedApi)
        call = next(CALLS)
        if "id" in (case.path_parameters or {}) and call % 4:  # one in four keeps its random id
            case.path_parameters["id"] = live_id(case.path)
        if case.headers and call % 2:  # a random If-Match would make every other write a 412
            case.headers.pop("If-Match", None)
    with app.app_context():
        response = case.call(app=app, headers=AUTH)
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance,
              response_headers_conformance]
    if response.status_code != 501:  # /Me answers 501 Not Implemented, as documented
        checks.append(not_a_server_error)
    case.validate_response(response, checks=checks)
