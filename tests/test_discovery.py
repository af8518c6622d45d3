"""Discovery (RFC 7644 §4): /ServiceProviderConfig, /ResourceTypes, /Schemas, and /Me answered with 501."""

import pytest

from scim import discovery
from scim.schema import COMMON, ENTERPRISE_SCHEMA, ENTERPRISE_USER, GROUP, GROUP_SCHEMA, USER, USER_SCHEMA
from tests.conftest import AUTH
from tests.test_errors import assert_scim_error

BASE = "http://localhost/scim/v2"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SPC = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
TABLES = {USER_SCHEMA: USER, ENTERPRISE_SCHEMA: ENTERPRISE_USER, GROUP_SCHEMA: GROUP}
DISCOVERY_PATHS = ["/ServiceProviderConfig", "/ResourceTypes", "/ResourceTypes/User", "/Schemas",
                   f"/Schemas/{USER_SCHEMA}"]


def assert_scim_json(response, status=200):
    assert response.status_code == status, response.json
    assert response.headers["Content-Type"] == "application/scim+json"


def attribute(api, urn, path):
    """The definition of "name" or "name.sub" in the schema served at /Schemas/{urn}."""
    attributes = api.get(f"/Schemas/{urn}").json["attributes"]
    for name in path.split("."):
        found = next(a for a in attributes if a["name"] == name)
        attributes = found.get("subAttributes", [])
    return found


def walk(table, parent=""):
    """(path, Attr) for every attribute and sub-attribute of a schema table, common attributes left out."""
    for attr in table.sub:
        if parent or attr.name not in {c.name for c in COMMON}:
            path = f"{parent}.{attr.name}" if parent else attr.name
            yield path, attr
            yield from walk(attr, path)


# ServiceProviderConfig

def test_service_provider_config_advertises_the_features(api):
    response = api.get("/ServiceProviderConfig")
    assert_scim_json(response)
    body = response.json
    assert body["schemas"] == [SPC]
    assert body["patch"] == {"supported": True}
    for feature in ("changePassword", "sort", "etag"):
        assert body[feature] == {"supported": True}
    assert body["filter"]["supported"] is True
    assert body["meta"] == {"resourceType": "ServiceProviderConfig", "location": f"{BASE}/ServiceProviderConfig"}


def test_service_provider_config_lists_bearer_as_the_primary_scheme_and_basic(api):
    schemes = api.get("/ServiceProviderConfig").json["authenticationSchemes"]
    assert [s["type"] for s in schemes] == ["oauthbearertoken", "httpbasic"]
    assert schemes[0]["name"] == "OAuth Bearer Token"
    assert schemes[0]["description"] == "Authentication with a bearer token in the Authorization header"
    assert schemes[0]["primary"] is True
    assert schemes[1]["name"] == "HTTP Basic" and schemes[1]["description"]
    assert schemes[1]["primary"] is False


def test_filter_max_results_is_the_configured_page_size(app, api):
    app.config["SCIM_MAX_PAGE_SIZE"] = 37
    assert api.get("/ServiceProviderConfig").json["filter"] == {"supported": True, "maxResults": 37}


def test_bulk_limits_come_from_the_configuration(app, api):
    app.config.update(SCIM_BULK_MAX_OPERATIONS=50, SCIM_BULK_MAX_PAYLOAD=65536)
    bulk = api.get("/ServiceProviderConfig").json["bulk"]
    assert bulk == {"supported": True, "maxOperations": 50, "maxPayloadSize": 65536}


def test_bulk_limits_have_defaults_the_service_can_honour(make_app):
    # 100 creations with passwords (the costliest operation: a salted hash each) fit the time budget.
    other = make_app()
    bulk = other.test_client().get("/scim/v2/ServiceProviderConfig", headers=AUTH).json["bulk"]
    assert bulk == {"supported": True, "maxOperations": 100, "maxPayloadSize": 1048576}


# ResourceTypes

def test_resource_types_are_a_list_of_user_and_group(api):
    response = api.get("/ResourceTypes")
    assert_scim_json(response)
    body = response.json
    assert body["schemas"] == [LIST]
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (2, 1, 2)
    assert [r["id"] for r in body["Resources"]] == ["User", "Group"]


def test_user_resource_type_names_its_endpoint_schema_and_enterprise_extension(api):
    response = api.get("/ResourceTypes/User")
    assert_scim_json(response)
    body = response.json
    assert body["schemas"] == [RESOURCE_TYPE]
    assert (body["id"], body["name"], body["endpoint"], body["schema"]) == ("User", "User", "/Users", USER_SCHEMA)
    assert body["schemaExtensions"] == [{"schema": ENTERPRISE_SCHEMA, "required": False}]
    assert body["meta"] == {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/User"}


def test_group_resource_type_has_no_extensions(api):
    body = api.get("/ResourceTypes/Group").json
    assert (body["id"], body["name"], body["endpoint"], body["schema"]) == ("Group", "Group", "/Groups",
                                                                            GROUP_SCHEMA)
    assert body["schemaExtensions"] == []
    assert body["meta"]["location"] == f"{BASE}/ResourceTypes/Group"


def test_listed_resource_types_equal_the_single_ones(api):
    listed = api.get("/ResourceTypes").json["Resources"]
    assert listed == [api.get("/ResourceTypes/User").json, api.get("/ResourceTypes/Group").json]


def test_resource_type_names_ignore_case(api):
    assert api.get("/ResourceTypes/user").json["id"] == "User"


def test_unknown_resource_type_is_404(api):
    assert_scim_error(api.get("/ResourceTypes/Device"), 404)


# Schemas

def test_schemas_are_a_list_of_user_enterprise_user_and_group(api):
    response = api.get("/Schemas")
    assert_scim_json(response)
    body = response.json
    assert body["schemas"] == [LIST]
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (3, 1, 3)
    assert [(s["id"], s["name"]) for s in body["Resources"]] == [
        (USER_SCHEMA, "User"), (ENTERPRISE_SCHEMA, "EnterpriseUser"), (GROUP_SCHEMA, "Group")]
    assert body["Resources"] == [api.get(f"/Schemas/{urn}").json for urn in TABLES]


@pytest.mark.parametrize("urn", list(TABLES))
def test_each_schema_is_served_at_its_urn(api, urn):
    response = api.get(f"/Schemas/{urn}")
    assert_scim_json(response)
    body = response.json
    assert body["schemas"] == [SCHEMA]
    assert body["id"] == urn
    assert body["description"]
    assert body["meta"] == {"resourceType": "Schema", "location": f"{BASE}/Schemas/{urn}"}


@pytest.mark.parametrize("urn", [
    "urn:ietf:params:scim:schemas:core:2.0:Device", "User", "urn:ietf:params:scim:schemas:core:2.0:Schema"])
def test_unknown_schema_is_404(api, urn):
    assert_scim_error(api.get(f"/Schemas/{urn}"), 404)


@pytest.mark.parametrize("urn, path, expected", [
    (USER_SCHEMA, "userName", {"type": "string", "required": True, "uniqueness": "server", "caseExact": False,
                               "mutability": "readWrite", "returned": "default", "multiValued": False}),
    (USER_SCHEMA, "password", {"mutability": "writeOnly", "returned": "never", "uniqueness": "none"}),
    (USER_SCHEMA, "groups", {"mutability": "readOnly", "multiValued": True, "type": "complex"}),
    (USER_SCHEMA, "active", {"type": "boolean", "required": False}),
    (USER_SCHEMA, "emails", {"type": "complex", "multiValued": True}),
    (USER_SCHEMA, "emails.type", {"canonicalValues": ["work", "home", "other"]}),
    (USER_SCHEMA, "profileUrl", {"type": "reference", "referenceTypes": ["external"]}),
    (USER_SCHEMA, "photos.value", {"type": "reference", "referenceTypes": ["external"]}),
    (USER_SCHEMA, "groups.$ref", {"type": "reference", "referenceTypes": ["User", "Group"]}),
    (USER_SCHEMA, "x509Certificates.value", {"type": "binary"}),
    (ENTERPRISE_SCHEMA, "manager.$ref", {"type": "reference", "referenceTypes": ["User"]}),
    (ENTERPRISE_SCHEMA, "manager.displayName", {"mutability": "readOnly"}),
    (GROUP_SCHEMA, "displayName", {"required": True, "uniqueness": "server"}),
    (GROUP_SCHEMA, "members", {"type": "complex", "multiValued": True, "mutability": "readWrite"}),
    (GROUP_SCHEMA, "members.value", {"mutability": "immutable"}),
    (GROUP_SCHEMA, "members.$ref", {"type": "reference", "referenceTypes": ["User", "Group"]}),
    (GROUP_SCHEMA, "members.type", {"canonicalValues": ["User", "Group"]}),
])
def test_attribute_characteristics(api, urn, path, expected):
    definition = attribute(api, urn, path)
    assert {key: definition.get(key) for key in expected} == expected


@pytest.mark.parametrize("urn, path, subs", [
    (GROUP_SCHEMA, "members", ["value", "$ref", "display", "type"]),
    (ENTERPRISE_SCHEMA, "manager", ["value", "$ref", "displayName"]),
    (USER_SCHEMA, "name", ["formatted", "familyName", "givenName", "middleName", "honorificPrefix",
                           "honorificSuffix"]),
    (USER_SCHEMA, "emails", ["value", "display", "type", "primary"]),
])
def test_complex_attributes_list_their_sub_attributes(api, urn, path, subs):
    assert [s["name"] for s in attribute(api, urn, path)["subAttributes"]] == subs


@pytest.mark.parametrize("urn", list(TABLES))
def test_common_attributes_are_not_repeated_in_the_schemas(api, urn):
    names = {a["name"] for a in api.get(f"/Schemas/{urn}").json["attributes"]}
    assert not names & {"id", "externalId", "meta"}


@pytest.mark.parametrize("urn, table", list(TABLES.items()))
def test_every_attribute_the_service_validates_is_described_as_validated(api, urn, table):
    """Generated from the scim.schema tables, not copied: each attribute appears with the table's traits."""
    expected = {path: attr for path, attr in walk(table)}
    served = {path: attribute(api, urn, path) for path in expected}
    assert len(expected) > 5
    for path, attr in expected.items():
        definition = served[path]
        assert definition["name"] == attr.name
        assert (definition["type"], definition["multiValued"], definition["required"]) == (
            attr.type, attr.multi, attr.required), path
        assert (definition["caseExact"], definition["mutability"], definition["returned"]) == (
            attr.case_exact, attr.mutability, attr.returned), path
        assert [s["name"] for s in definition.get("subAttributes", [])] == [s.name for s in attr.sub], path
    top_level = [a["name"] for a in api.get(f"/Schemas/{urn}").json["attributes"]]
    assert top_level == [path for path in expected if "." not in path]


@pytest.mark.parametrize("table", [USER, ENTERPRISE_USER, GROUP], ids=["User", "EnterpriseUser", "Group"])
def test_every_attribute_has_a_written_description_and_every_reference_its_types(table):
    schema_name = next(name for t, name, _ in discovery.SCHEMAS if t is table)
    for path, attr in walk(table):
        assert discovery.describe(schema_name, path), f"{schema_name} {path} has no description"
        if attr.type == "reference":
            assert path in discovery.REFERENCE_TYPES, f"{schema_name} {path} has no referenceTypes"


# What discovery does not do

@pytest.mark.parametrize("path", ["/ResourceTypes", "/Schemas"])
def test_a_filter_on_a_discovery_list_is_403(api, path):
    assert_scim_error(api.get(path, query_string={"filter": 'name eq "User"'}), 403)


@pytest.mark.parametrize("path", ["/ResourceTypes", "/Schemas"])
def test_paging_and_attribute_parameters_are_ignored_on_discovery_lists(api, path):
    everything = api.get(path).json
    assert api.get(path, query_string={"count": "1", "startIndex": "2", "attributes": "id"}).json == everything


@pytest.mark.parametrize("path", DISCOVERY_PATHS)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_to_discovery_endpoints_are_405(api, method, path):
    response = api.request(method, path, json={"schemas": [SCHEMA]})
    assert_scim_error(response, 405)
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_me_is_not_implemented(api, method):
    response = api.request(method, "/Me", json={} if method in ("POST", "PUT", "PATCH") else None)
    assert_scim_error(response, 501)
    assert "identity provider" in response.json["detail"]


@pytest.mark.parametrize("path", DISCOVERY_PATHS + ["/Me"])
def test_discovery_needs_the_token(client, path):
    response = client.get("/scim/v2" + path)
    assert_scim_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
