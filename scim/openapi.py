"""The OpenAPI 3.1 description of the SCIM API, served at /scim/v2/openapi.json.

The User, EnterpriseUser and Group schemas are generated from the attribute tables in scim.schema, the tables
request bodies are checked against and /Schemas is generated from (scim.discovery), so the three cannot drift
apart. Each table gives two schemas: the resource as served (exact types, nothing undeclared, `returned:never`
left out) and as accepted (RFC 7644 §3.5.1: null clears, read-only and unknown attributes are ignored).
Paths and the protocol messages are written down here; tests/test_openapi.py keeps them true.
"""

from flask import current_app, jsonify, request

from scim import bp
from scim.bulk import BULK_REQUEST, BULK_RESPONSE, PATH
from scim.discovery import RESOURCE_TYPE_SCHEMA, SCHEMA_SCHEMA, SPC_SCHEMA, describe
from scim.errors import ERROR_SCHEMA, SCIM_MEDIA_TYPE, STATUSES, ScimType
from scim.patch import OPS, PATCH_SCHEMA
from scim.requests import SEARCH_SCHEMA
from scim.schema import ENTERPRISE_USER, GROUP, USER, Attr, extensions
from scim.serialize import LIST_SCHEMA

SCALARS = {"string": "string", "reference": "string", "binary": "string", "boolean": "boolean"}
# Entra ID sends booleans as "True"/"False" unless aadOptscim062020 is set (scim.schema.coerce).
BOOLEAN_WORDS = "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])?$"
ALWAYS = (401, 429, 500, 503)  # any operation: credentials, the auth-failure limit, the unexpected, the database
WITH_BODY = (400, 413, 415)
ERRORS = STATUSES  # one table, in scim.errors


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


# Resources, from the attribute tables

def served(schema_name: str, attr: Attr, path: str = "") -> dict:
    """An attribute as the service returns it."""
    path = f"{path}.{attr.name}" if path else attr.name
    if attr.type == "complex":
        subs = [sub for sub in attr.sub if sub.returned != "never"]
        schema = {"type": "object", "properties": {sub.name: served(schema_name, sub, path) for sub in subs},
                  "additionalProperties": attr.open}
    else:
        schema = {"type": SCALARS.get(attr.type, "string")}
    if attr.multi:
        schema = {"type": "array", "items": schema}
    if attr.mutability == "readOnly":
        schema["readOnly"] = True
    return {"description": describe(schema_name, path) or attr.name, **schema}


def accepted(schema_name: str, attr: Attr, path: str = "") -> dict:
    """An attribute as the service accepts it in POST and PUT bodies (scim.schema.coerce)."""
    path = f"{path}.{attr.name}" if path else attr.name
    if attr.type == "complex":
        subs = [sub for sub in attr.sub if sub.mutability != "readOnly"]
        types = ["object", "null"]
        if not attr.multi and attr.child("value"):
            types.insert(1, "string")  # Entra ID sends the manager as its bare id
        schema = {"type": types, "properties": {sub.name: accepted(schema_name, sub, path) for sub in subs}}
    elif attr.type == "boolean":
        schema = {"type": ["boolean", "string", "null"], "pattern": BOOLEAN_WORDS}
    else:
        schema = {"type": ["string", "null"]}
    if attr.multi:
        schema["type"].remove("null")
        schema = {"type": ["array", "null"], "items": schema}
    if attr.mutability == "writeOnly":
        schema["writeOnly"] = True
    return {"description": describe(schema_name, path) or attr.name, **schema}


def resource_schemas(table: Attr, name: str, required: str | None) -> tuple[dict, dict]:
    """(served, accepted) JSON Schemas of a resource or extension table; core resources carry the
    extensions declared for them, custom ones (configuration) as open objects."""
    attrs = [a for a in table.sub if a.name not in ("id", "meta")]
    out = {"type": "object", "properties": {a.name: served(name, a) for a in attrs if a.returned != "never"},
           "additionalProperties": False}
    into = {"type": "object", "properties": {a.name: accepted(name, a) for a in attrs if a.mutability != "readOnly"}}
    if name == "EnterpriseUser":
        return out, into
    urns = {"type": "array", "items": {"type": "string"}}
    out["properties"] = {"schemas": {**urns, "contains": {"const": table.name}}, "id": {"type": "string"},
                         **out["properties"], "meta": ref("Meta")}
    out["required"] = ["schemas", "id"]  # RFC 7643 §3.1 and §7: returned always
    into["properties"] = {"schemas": urns, **into["properties"]}
    into["required"] = [required]
    into["properties"][required] = {**into["properties"][required], "type": "string", "pattern": "\\S"}
    for ext in extensions(table):
        named = "EnterpriseUser" if ext is ENTERPRISE_USER else None
        out["properties"][ext.name] = ref(named) if named else {"type": "object"}
        into["properties"][ext.name] = ({"anyOf": [ref(named + "Request"), {"type": "null"}]} if named
                                        else {"type": ["object", "null"]})
    return out, into


def resources() -> dict:
    schemas = {}
    for table, name, required in ((USER, "User", "userName"), (ENTERPRISE_USER, "EnterpriseUser", None),
                                  (GROUP, "Group", "displayName")):
        out, into = resource_schemas(table, name, required)
        schemas[name] = {"description": f"A {name} as the service returns it ({table.name})", **out}
        schemas[name + "Request"] = {"description": f"A {name} in a POST or PUT body: null clears an attribute, "
                                     "read-only and unknown attributes are ignored", **into}
    members = schemas["GroupRequest"]["properties"]["members"]["items"]
    members["required"] = ["value"]  # the user id (scim.store.member_ids); only users can be members
    members["properties"]["value"] = {**members["properties"]["value"], "type": "string"}
    members["properties"]["type"] = {**members["properties"]["type"], "enum": ["User"]}
    return schemas


# Protocol messages (RFC 7644 §3.4.2, §3.4.3, §3.5.2, §3.7, §3.12) and discovery (RFC 7643 §5-7)

def urns(urn: str) -> dict:
    return {"type": "array", "items": {"type": "string"}, "contains": {"const": urn}}


def strict(required: list[str], properties: dict, **extra) -> dict:
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False,
            **extra}


def list_of(items: dict, cursors: bool = False) -> dict:
    """A ListResponse: paged by index (startIndex), or, where `cursors`, by cursor (RFC 9865 §2: no startIndex,
    nextCursor on every page but the last, previousCursor where there is one)."""
    count = {"type": "integer", "minimum": 0}
    properties = {"schemas": urns(LIST_SCHEMA), "totalResults": count,
                  "startIndex": {"type": "integer", "minimum": 1}, "itemsPerPage": count,
                  "Resources": {"type": "array", "items": items}}
    if not cursors:
        return strict(["schemas", "totalResults", "startIndex", "itemsPerPage", "Resources"], properties)
    cursor = {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}
    properties.update(nextCursor={**cursor, "description": "The cursor of the next page; absent on the last"},
                      previousCursor={**cursor, "description": "The cursor of the previous page"})
    return strict(["schemas", "totalResults", "itemsPerPage", "Resources"], properties, oneOf=[
        {"required": ["startIndex"], "not": {"anyOf": [{"required": ["nextCursor"]},
                                                         {"required": ["previousCursor"]}]}},
        {"not": {"required": ["startIndex"]}}])


def messages(max_operations: int) -> dict:
    status = {"type": "string", "pattern": "^[1-5][0-9][0-9]$"}
    optional = {"type": ["string", "null"]}
    words = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    op_words = sorted(OPS) + [op.capitalize() for op in sorted(OPS)]  # Entra ID capitalises them
    supported = strict(["supported"], {"supported": {"type": "boolean"}})
    attribute = strict(["name", "type", "multiValued"], {
        "name": {"type": "string"}, "type": {"enum": ["string", "boolean", "complex", "reference", "binary",
                                                      "dateTime", "decimal", "integer"]},
        "multiValued": {"type": "boolean"}, "description": {"type": "string"}, "required": {"type": "boolean"},
        "caseExact": {"type": "boolean"},
        "mutability": {"enum": ["readOnly", "readWrite", "immutable", "writeOnly"]},
        "returned": {"enum": ["always", "never", "default", "request"]},
        "uniqueness": {"enum": ["none", "server", "global"]},
        "canonicalValues": {"type": "array"}, "referenceTypes": {"type": "array", "items": {"type": "string"}},
        "subAttributes": {"type": "array", "items": ref("SchemaAttribute")}})
    return {
        "Meta": strict([], {"resourceType": {"type": "string"}, "created": {"type": "string", "format": "date-time"},
                            "lastModified": {"type": "string", "format": "date-time"},
                            "location": {"type": "string", "format": "uri"},
                            "version": {"type": "string", "pattern": '^W/"[0-9]+"$'}}, readOnly=True),
        "Error": strict(["schemas", "status", "detail"], {
            "schemas": urns(ERROR_SCHEMA), "status": {**status, "description": "The HTTP status, as a string"},
            "detail": {"type": "string"},
            "scimType": {"enum": [str(kind) for kind in ScimType]}}),
        "UserListResponse": list_of(ref("User"), cursors=True),
        "GroupListResponse": list_of(ref("Group"), cursors=True),
        "ResourceListResponse": list_of({"anyOf": [ref("User"), ref("Group")]}),
        "PatchOp": {"type": "object", "required": ["Operations"], "properties": {
            "schemas": urns(PATCH_SCHEMA),
            "Operations": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["op"],
                "properties": {"op": {"enum": op_words}, "path": {"type": "string", "pattern": "\\S"}, "value": {}},
                # RFC 7644 §3.5.2: without a path, add and replace take an object of attributes; remove needs one.
                "anyOf": [{"required": ["path"]},
                          {"properties": {"op": {"enum": [w for w in op_words if w.lower() != "remove"]},
                                          "value": {"type": "object"}}, "required": ["value"]}]}}}},
        "SearchRequest": {"type": "object", "properties": {
            "schemas": urns(SEARCH_SCHEMA), "attributes": words, "excludedAttributes": words,
            "filter": {"type": "string"}, "sortBy": {"type": "string"},
            "sortOrder": {"enum": ["ascending", "descending"]},
            "startIndex": {"type": "integer"}, "count": {"type": "integer"},
            "cursor": {"type": "string", "description": "RFC 9865: empty for the first page, then a nextCursor "
                       "or previousCursor; only on /Users/.search and /Groups/.search"}}},
        "BulkRequest": {"type": "object", "required": ["Operations"], "properties": {
            "schemas": urns(BULK_REQUEST), "failOnErrors": {"type": "integer", "minimum": 1},
            "Operations": {"type": "array", "maxItems": max_operations, "items": {
                "type": "object", "required": ["method", "path"], "properties": {
                    "method": {"enum": ["POST", "PUT", "PATCH", "DELETE"]},
                    "path": {"type": "string", "pattern": PATH.pattern},
                    "bulkId": {"type": "string"}, "version": {"type": "string"}, "data": {"type": "object"}}}}}},
        "BulkResponse": strict(["schemas", "Operations"], {
            "schemas": urns(BULK_RESPONSE),
            "Operations": {"type": "array", "items": strict(["method", "status"], {
                "method": {"type": "string"}, "bulkId": optional, "location": optional, "version": optional,
                "status": status, "response": {"type": "object"}})}}),
        "ServiceProviderConfig": strict(["schemas", "authenticationSchemes"], {
            "schemas": urns(SPC_SCHEMA), "documentationUri": {"type": "string"}, "patch": supported,
            "bulk": strict(["supported"], {"supported": {"type": "boolean"}, "maxOperations": {"type": "integer"},
                                           "maxPayloadSize": {"type": "integer"}}),
            "filter": strict(["supported"], {"supported": {"type": "boolean"}, "maxResults": {"type": "integer"}}),
            "pagination": strict(["cursor", "index"], {
                "cursor": {"type": "boolean"}, "index": {"type": "boolean"},
                "defaultPaginationMethod": {"enum": ["cursor", "index"]},
                "defaultPageSize": {"type": "integer", "minimum": 1}, "maxPageSize": {"type": "integer", "minimum": 1},
                "cursorTimeout": {"type": "integer", "minimum": 1}}),
            "changePassword": supported, "sort": supported, "etag": supported,
            "authenticationSchemes": {"type": "array", "items": strict(["type", "name", "description"], {
                "type": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
                "specUri": {"type": "string"}, "documentationUri": {"type": "string"},
                "primary": {"type": "boolean"}})},
            "meta": ref("Meta")}),
        "ResourceType": strict(["schemas", "id", "name", "endpoint", "schema"], {
            "schemas": urns(RESOURCE_TYPE_SCHEMA), "id": {"type": "string"}, "name": {"type": "string"},
            "endpoint": {"type": "string"}, "description": {"type": "string"}, "schema": {"type": "string"},
            "schemaExtensions": {"type": "array", "items": strict(["schema", "required"], {
                "schema": {"type": "string"}, "required": {"type": "boolean"}})},
            "meta": ref("Meta")}),
        "ResourceTypeListResponse": list_of(ref("ResourceType")),
        "Schema": strict(["schemas", "id", "attributes"], {
            "schemas": urns(SCHEMA_SCHEMA), "id": {"type": "string"}, "name": {"type": "string"},
            "description": {"type": "string"}, "attributes": {"type": "array", "items": ref("SchemaAttribute")},
            "meta": ref("Meta")}),
        "SchemaAttribute": attribute,
        "SchemaListResponse": list_of(ref("Schema")),
    }


# Parameters, headers and responses

def query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def header(name: str, description: str, required: bool = False) -> dict:
    return {"description": description, "required": required, "schema": {"type": "string"}}


PARAMETERS = {
    "filter": query("filter", {"type": "string"}, "RFC 7644 §3.4.2.2 filter, e.g. userName eq \"bjensen\""),
    "startIndex": query("startIndex", {"type": "integer"}, "1-based index of the first result; below 1 means 1"),
    "count": query("count", {"type": "integer"}, "Results per page; below 0 means 0; capped at filter.maxResults "
                   "(with cursor: above pagination.maxPageSize is 400 invalidCount)"),
    "cursor": query("cursor", {"type": "string"}, "RFC 9865 cursor paging instead of startIndex: empty for the "
                    "first page, then the nextCursor or previousCursor of a page"),
    "sortBy": query("sortBy", {"type": "string"}, "Attribute to sort by, e.g. userName or meta.created"),
    "sortOrder": query("sortOrder", {"enum": ["ascending", "descending"]}, "Sort direction (ascending)"),
    "attributes": query("attributes", {"type": "string"}, "Comma-separated attributes to return (with id and "
                        "schemas); applies to POST, PUT and PATCH answers too (RFC 7644 §3.9)"),
    "excludedAttributes": query("excludedAttributes", {"type": "string"}, "Comma-separated attributes to leave out"),
    "discoveryFilter": query("filter", {"type": "string"}, "Not supported here: any filter is answered 403"),
    "ifMatch": {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                "description": "Apply only if the resource is at this version (an ETag such as W/\"3\", or *)"},
    "ifNoneMatch": {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
                    "description": "Answer 304 if the resource is still at this version"},
}
for _name, _description in (("id", "The resource's id"), ("name", "The resource type's name, e.g. User"),
                            ("urn", "The schema's URN")):
    PARAMETERS[_name] = {"name": _name, "in": "path", "required": True, "schema": {"type": "string"},
                         "description": _description}

HEADERS = {
    "ETag": header("ETag", "The resource's version (RFC 7644 §3.14), the same as meta.version", True),
    "Location": header("Location", "The URL of the created resource", True),
    "WWW-Authenticate": header("WWW-Authenticate", "Bearer challenge (RFC 6750 §3)", True),
    "Retry-After": header("Retry-After", "Seconds to wait before retrying"),
}
RESPONSE_HEADERS = {401: ["WWW-Authenticate"], 429: ["Retry-After"], 503: ["Retry-After"]}


def headers(*names: str) -> dict:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def error_responses() -> dict:
    """One response per error status, whose body says that same status (RFC 7644 §3.12)."""
    responses = {}
    for code, description in ERRORS.items():
        if code == 304:
            responses["NotModified"] = {"description": description, "headers": headers("ETag")}
            continue
        schema = {"allOf": [ref("Error"), {"properties": {"status": {"const": str(code)}}}]}
        responses[f"Error{code}"] = {"description": description, "content": {SCIM_MEDIA_TYPE: {"schema": schema}}}
        if code in RESPONSE_HEADERS:
            responses[f"Error{code}"]["headers"] = headers(*RESPONSE_HEADERS[code])
    return responses


def answer(description: str, schema: str | None, *header_names: str) -> dict:
    response = {"description": description}
    if schema:
        response["content"] = {SCIM_MEDIA_TYPE: {"schema": ref(schema)}}
    if header_names:
        response["headers"] = headers(*header_names)
    return response


def operation(op_id: str, summary: str, ok: dict, errors: tuple = (), params: tuple = (), body: str | None = None,
              tag: str | None = None) -> dict:
    responses = dict(ok)
    for code in sorted(set(errors + ALWAYS + (WITH_BODY if body else ()))):
        responses[str(code)] = {"$ref": "#/components/responses/" + ("NotModified" if code == 304 else f"Error{code}")}
    result = {"operationId": op_id, "summary": summary, "tags": [tag or op_id], "responses": responses}
    if params:
        result["parameters"] = [{"$ref": f"#/components/parameters/{p}"} for p in params]
    if body:
        content = {"schema": ref(body)}
        result["requestBody"] = {"required": True, "content": {SCIM_MEDIA_TYPE: content, "application/json": content}}
    return result


# Paths

LIST_PARAMETERS = ("filter", "startIndex", "cursor", "count", "sortBy", "sortOrder", "attributes",
                   "excludedAttributes")
SELECT = ("attributes", "excludedAttributes")
PATH_PARAMETER = {"$ref": "#/components/parameters/id"}


def resource_paths(kind: str) -> dict:
    """/Users or /Groups: list, create, search, and read, replace, patch, delete one (RFC 7644 §3.3-3.6)."""
    plural = kind + "s"
    one = answer(f"The {kind}", kind, "ETag")
    patched = {"200": one}
    if kind == "Group":  # Okta and Entra ID expect 204; the group (all its members) only when asked for
        patched["204"] = answer("Applied; the Group comes back (200) when attributes or excludedAttributes "
                                "ask for it", None, "ETag")
    return {
        f"/{plural}": {
            "get": operation(f"list{plural}", f"List {plural}, filtered, sorted and paged", {
                "200": answer(f"A page of {plural}", f"{kind}ListResponse")}, (400,), LIST_PARAMETERS, tag=plural),
            "post": operation(f"create{kind}", f"Create a {kind}", {
                "201": answer(f"The created {kind}", kind, "ETag", "Location")}, (409,), SELECT, f"{kind}Request",
                plural),
        },
        f"/{plural}/.search": {"post": operation(f"search{plural}", f"Query {plural} with a SearchRequest body", {
            "200": answer(f"A page of {plural}", f"{kind}ListResponse")}, body="SearchRequest", tag=plural)},
        f"/{plural}/{{id}}": {
            "parameters": [PATH_PARAMETER],
            "get": operation(f"get{kind}", f"Read a {kind}", {"200": one}, (304, 404), SELECT + ("ifNoneMatch",),
                             tag=plural),
            "put": operation(f"replace{kind}", f"Replace a {kind}", {"200": one}, (404, 409, 412),
                             SELECT + ("ifMatch",), f"{kind}Request", plural),
            "patch": operation(f"patch{kind}", f"Modify a {kind} (RFC 7644 §3.5.2)", patched, (404, 409, 412),
                               SELECT + ("ifMatch",), "PatchOp", plural),
            "delete": operation(f"delete{kind}", f"Delete a {kind}", {"204": answer("Deleted", None)}, (404, 412),
                                ("ifMatch",), tag=plural),
        },
    }


def discovery_paths() -> dict:
    def read(op_id: str, schema: str, errors: tuple = (), params: tuple = ()) -> dict:
        return {"get": operation(op_id, f"Read {schema}", {"200": answer(schema, schema)}, errors, params,
                                 tag="Discovery")}
    return {
        "/ServiceProviderConfig": read("getServiceProviderConfig", "ServiceProviderConfig"),
        "/ResourceTypes": read("listResourceTypes", "ResourceTypeListResponse", (403,), ("discoveryFilter",)),
        "/ResourceTypes/{name}": {"parameters": [{"$ref": "#/components/parameters/name"}],
                                  **read("getResourceType", "ResourceType", (404,))},
        "/Schemas": read("listSchemas", "SchemaListResponse", (403,), ("discoveryFilter",)),
        "/Schemas/{urn}": {"parameters": [{"$ref": "#/components/parameters/urn"}],
                           **read("getSchema", "Schema", (404,))},
    }


def other_paths() -> dict:
    not_implemented = {"501": {"$ref": "#/components/responses/Error501"}}
    me = {method: operation(f"{method}Me", "/Me is not supported (RFC 7644 §3.11): tokens identify a "
                            "provisioning client, not a user", not_implemented,
                            (415,) if method in ("post", "put", "patch") else (), tag="Me")
          for method in ("get", "post", "put", "patch", "delete")}
    document = {"200": {"description": "This document", "content": {"application/json": {"schema": {
        "type": "object", "required": ["openapi", "info", "paths"]}}}}}
    return {
        "/.search": {"post": operation("search", "Query Users and Groups at once (Users first)", {
            "200": answer("A page of Users and Groups", "ResourceListResponse")}, body="SearchRequest",
            tag="Search")},
        "/Bulk": {"post": operation("bulk", "Run many operations in one request (RFC 7644 §3.7)", {
            "200": answer("The outcome of each operation", "BulkResponse")}, body="BulkRequest", tag="Bulk")},
        "/Me": me,
        "/openapi.json": {"get": operation("getOpenApi", "This OpenAPI description", document, tag="Discovery")},
    }


def openapi_document(config) -> dict:
    """The whole description; `config` is the app's (bulk limits, custom extension schemas)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "SCIM 2.0 provisioning API", "version": "1.0.0",
                 "description": "RFC 7643/7644 service provider for Users and Groups. Every error is an RFC 7644 "
                                "§3.12 body; a method a path does not offer is answered 405 with an Allow header.",
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "servers": [{"url": f"{request.url_root}scim/v2"}],
        "security": [{"bearer": []}, {"basic": []}],
        "paths": {**resource_paths("User"), **resource_paths("Group"), **other_paths(), **discovery_paths()},
        "components": {
            "schemas": {**resources(), **messages(config["SCIM_BULK_MAX_OPERATIONS"])},
            "parameters": PARAMETERS,
            "headers": HEADERS,
            "responses": error_responses(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from `manage.py tokens "
                           "create` or SCIM_BEARER_TOKEN"},
                "basic": {"type": "http", "scheme": "basic", "description": "A pair from `manage.py tokens "
                          "create --basic`"},
            },
        },
    }


@bp.get("/openapi.json")
def get_openapi():
    return jsonify(openapi_document(current_app.config))
