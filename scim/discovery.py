"""Discovery (RFC 7644 §4): /ServiceProviderConfig, /ResourceTypes, /Schemas; and /Me, which is not supported.

The /Schemas documents are generated from the attribute tables in scim.schema, the same tables request bodies
are checked against, so what the service advertises cannot drift from what it enforces. Only what the tables
cannot say (descriptions, uniqueness, reference types, suggested values) is written down here.
"""

from flask import current_app, request

from scim import bp
from scim.errors import forbidden, not_found, not_implemented
from scim.requests import base_url
from scim.responses import scim_response
from scim.schema import COMMON, ENTERPRISE_USER, GROUP, USER, Attr, extensions
from scim.serialize import LIST_SCHEMA

SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

# (table, name, description) of every schema served, in the order /Schemas lists them (RFC 7643 §8.7).
SCHEMAS = (
    (USER, "User", "User Account"),
    (ENTERPRISE_USER, "EnterpriseUser", "Enterprise User"),
    (GROUP, "Group", "Group"),
)
# (name, endpoint, table, description) of every resource type (RFC 7643 §6, §8.6).
RESOURCE_TYPES = (
    ("User", "/Users", USER, "User Account"),
    ("Group", "/Groups", GROUP, "Group"),
)

# RFC 7643 §7: id, externalId and meta are common attributes, described once in §3.1, not in each schema.
COMMON_NAMES = {attr.name for attr in COMMON}

# RFC 7643 §4.1.1: userName is unique across the service; models.py enforces it with a unique index on
# lower(user_name). Nothing else is unique.
SERVER_UNIQUE = {"User": {"userName"}, "Group": {"displayName"}}

# RFC 7643 §8.7.1 and §4.3.
REFERENCE_TYPES = {
    "profileUrl": ["external"],
    "photos.value": ["external"],
    "groups.$ref": ["User", "Group"],
    "members.$ref": ["User", "Group"],
    "manager.$ref": ["User"],
}

# Suggested values from RFC 7643 §4.1.2, §4.2 and §8.7.1; the service accepts others too.
CANONICAL_VALUES = {
    "emails.type": ["work", "home", "other"],
    "phoneNumbers.type": ["work", "home", "mobile", "fax", "pager", "other"],
    "ims.type": ["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
    "photos.type": ["photo", "thumbnail"],
    "addresses.type": ["work", "home", "other"],
    "groups.type": ["direct", "indirect"],
    "members.type": ["User", "Group"],
}

DESCRIPTIONS = {
    "userName": "Unique identifier for the user, typically used to sign in; unique, not case-sensitive",
    "name": "The components of the user's real name",
    "name.formatted": "The full name, formatted for display",
    "name.familyName": "The family name (last name in most Western languages)",
    "name.givenName": "The given name (first name in most Western languages)",
    "name.middleName": "The middle name(s)",
    "name.honorificPrefix": "The honorific prefix(es), or title, e.g. 'Ms.'",
    "name.honorificSuffix": "The honorific suffix(es), e.g. 'III'",
    "displayName": "The name to display to end users",
    "nickName": "The casual way to address the user",
    "profileUrl": "A URL of the user's online profile",
    "title": "The user's title, e.g. 'Vice President'",
    "userType": "The relationship between the organization and the user, e.g. 'Employee'",
    "preferredLanguage": "The user's preferred written or spoken language, e.g. 'en-US'",
    "locale": "The user's default location, for localizing dates, currency and numbers",
    "timezone": "The user's time zone, in IANA Time Zone database format",
    "active": "Whether the user's account is active",
    "password": "The user's clear-text password; stored hashed, never returned",
    "emails": "Email addresses of the user",
    "emails.value": "An email address",
    "phoneNumbers": "Phone numbers of the user",
    "phoneNumbers.value": "A phone number",
    "ims": "Instant messaging addresses of the user",
    "ims.value": "An instant messaging address",
    "photos": "URLs of images of the user",
    "photos.value": "The URL of an image of the user",
    "addresses": "Physical mailing addresses of the user",
    "addresses.formatted": "The full mailing address, formatted for display",
    "addresses.streetAddress": "The street address, with house number and street name",
    "addresses.locality": "The city or locality",
    "addresses.region": "The state or region",
    "addresses.postalCode": "The zip code or postal code",
    "addresses.country": "The country, as an ISO 3166-1 alpha-2 code",
    "groups": "The groups the user belongs to, derived from group membership",
    "groups.value": "The id of the group",
    "groups.$ref": "The URI of the group",
    "groups.display": "The group's displayName",
    "groups.type": "Whether the membership is direct or through another group",
    "entitlements": "Entitlements of the user",
    "roles": "Roles of the user",
    "x509Certificates": "X.509 certificates issued to the user, DER-encoded in base64",
    "employeeNumber": "An identifier assigned by the organization",
    "costCenter": "The name of a cost center",
    "organization": "The name of an organization",
    "division": "The name of a division",
    "department": "The name of a department",
    "manager": "The user's manager",
    "manager.value": "The id of the manager's User resource",
    "manager.$ref": "The URI of the manager's User resource",
    "manager.displayName": "The manager's displayName",
    "members": "The members of the group",
    "members.value": "The id of the member",
    "members.$ref": "The URI of the member",
    "members.display": "The member's display name",
    "members.type": "Whether the member is a User or a Group",
}
# Group.displayName differs from User.displayName: keyed by schema name first.
SCHEMA_DESCRIPTIONS = {"Group": {"displayName": "A human-readable name for the group"}}
# The usual sub-attributes of a multi-valued attribute (RFC 7643 §2.4), when nothing more specific is written.
GENERIC_SUB_DESCRIPTIONS = {
    "value": "The value of the {} entry",
    "display": "A human-readable name for the {} entry, for display only",
    "type": "A label for the {} entry's function, e.g. 'work' or 'home'",
    "primary": "Whether this is the preferred {} entry",
}

AUTHENTICATION_SCHEMES = [
    {"type": "oauthbearertoken", "name": "OAuth Bearer Token",
     "description": "Authentication with a bearer token in the Authorization header",
     "specUri": "https://www.rfc-editor.org/info/rfc6750", "primary": True},
    {"type": "httpbasic", "name": "HTTP Basic",
     "description": "Authentication with a user/password pair created by `manage.py tokens create --basic`",
     "specUri": "https://www.rfc-editor.org/info/rfc7617", "primary": False},
]


def url(path: str) -> str:
    return base_url() + path


def describe(schema_name: str, path: str) -> str | None:
    """The written description of an attribute ("name.givenName" for a sub-attribute), None if there is none."""
    specific = SCHEMA_DESCRIPTIONS.get(schema_name, {}).get(path) or DESCRIPTIONS.get(path)
    if specific:
        return specific
    parent, _, name = path.rpartition(".")
    template = GENERIC_SUB_DESCRIPTIONS.get(name) if parent else None
    return template.format(parent) if template else None


def attribute_to_scim(schema_name: str, attr: Attr, parent: str = "") -> dict:
    """One attribute definition (RFC 7643 §7), read off the table entry the service validates with."""
    path = f"{parent}.{attr.name}" if parent else attr.name
    body = {
        "name": attr.name,
        "type": attr.type,
        "multiValued": attr.multi,
        "description": describe(schema_name, path) or attr.name,
        "required": attr.required,
        "caseExact": attr.case_exact,
        "mutability": attr.mutability,
        "returned": attr.returned,
        "uniqueness": "server" if path in SERVER_UNIQUE.get(schema_name, ()) else "none",
    }
    if path in CANONICAL_VALUES:
        body["canonicalValues"] = CANONICAL_VALUES[path]
    if attr.type == "reference":
        body["referenceTypes"] = REFERENCE_TYPES.get(path, ["external"])
    if attr.sub:
        body["subAttributes"] = [attribute_to_scim(schema_name, sub, path) for sub in attr.sub]
    return body


def schema_to_scim(table: Attr, name: str, description: str) -> dict:
    return {
        "schemas": [SCHEMA_SCHEMA],
        "id": table.name,
        "name": name,
        "description": description,
        "attributes": [attribute_to_scim(name, attr) for attr in table.sub if attr.name not in COMMON_NAMES],
        "meta": {"resourceType": "Schema", "location": url(f"Schemas/{table.name}")},
    }


def resource_type_to_scim(name: str, endpoint: str, table: Attr, description: str) -> dict:
    return {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": name,
        "name": name,
        "endpoint": endpoint,
        "description": description,
        "schema": table.name,
        # Extensions are optional on every resource: schema.normalize_resource never requires one.
        "schemaExtensions": [{"schema": ext.name, "required": False} for ext in extensions(table)],
        "meta": {"resourceType": "ResourceType", "location": url(f"ResourceTypes/{name}")},
    }


def pagination(config) -> dict:
    """RFC 9865 §4: both paging methods, index paging the default (RFC 9865 §2.4: what clients that predate
    cursors, Okta and Entra ID among them, expect). The sizes and the timeout are positive integers when
    given, so a setting of 0 is left out."""
    advertised = {"cursor": True, "index": True, "defaultPaginationMethod": "index"}
    sizes = {"defaultPageSize": min(config["SCIM_DEFAULT_PAGE_SIZE"], config["SCIM_MAX_PAGE_SIZE"]),
             "maxPageSize": config["SCIM_MAX_PAGE_SIZE"], "cursorTimeout": config["SCIM_CURSOR_TIMEOUT"]}
    return advertised | {name: value for name, value in sizes.items() if value > 0}


def service_provider_config() -> dict:
    config = current_app.config
    return {
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": True},
        "bulk": {"supported": True,
                 "maxOperations": config["SCIM_BULK_MAX_OPERATIONS"],
                 "maxPayloadSize": config["SCIM_BULK_MAX_PAYLOAD"]},
        # A list never returns more than SCIM_MAX_PAGE_SIZE resources at once (requests.page_args).
        "filter": {"supported": True, "maxResults": config["SCIM_MAX_PAGE_SIZE"]},
        "pagination": pagination(config),
        "changePassword": {"supported": True},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": AUTHENTICATION_SCHEMES,
        "meta": {"resourceType": "ServiceProviderConfig", "location": url("ServiceProviderConfig")},
    }


def discovery_list(resources: list[dict]):
    """RFC 7644 §4: filtering, sorting and paging are ignored here, and a filter SHOULD get 403 so that a
    client cannot believe its conditions were applied."""
    if "filter" in request.args:
        raise forbidden("filters are not supported on discovery endpoints; omit the filter")
    body = {"schemas": [LIST_SCHEMA], "totalResults": len(resources), "startIndex": 1,
            "itemsPerPage": len(resources), "Resources": resources}
    return scim_response(body)


def pick(entries: tuple, identify, wanted: str, kind: str) -> tuple:
    """The entry `identify` names `wanted` (ignoring case), or 404."""
    for entry in entries:
        if identify(entry).lower() == wanted.lower():
            return entry
    raise not_found(kind, wanted)


@bp.get("/ServiceProviderConfig")
def get_service_provider_config():
    return scim_response(service_provider_config())


@bp.get("/ResourceTypes")
def list_resource_types():
    return discovery_list([resource_type_to_scim(*entry) for entry in RESOURCE_TYPES])


@bp.get("/ResourceTypes/<name>")
def get_resource_type(name: str):
    return scim_response(resource_type_to_scim(*pick(RESOURCE_TYPES, lambda e: e[0], name, "resource type")))


def all_schemas() -> tuple:
    """The built-in schemas, then the custom extensions declared in configuration: their attributes are
    stored as sent, so none are listed."""
    custom = tuple((ext, ext.name.split(":")[-2] if ext.name.count(":") > 1 else ext.name,
                    "Custom extension declared in configuration; attributes are stored as sent")
                   for resource in (USER, GROUP) for ext in extensions(resource) if ext.open)
    return SCHEMAS + custom


@bp.get("/Schemas")
def list_schemas():
    return discovery_list([schema_to_scim(*entry) for entry in all_schemas()])


@bp.get("/Schemas/<urn>")
def get_schema(urn: str):
    return scim_response(schema_to_scim(*pick(all_schemas(), lambda e: e[0].name, urn, "schema")))


@bp.route("/Me", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def me():
    # RFC 7644 §3.11: a service provider that does not support /Me SHOULD answer 501 (Not Implemented).
    raise not_implemented("/Me is not supported: tokens here identify a provisioning client (an identity "
                         "provider), not a user; use /Users/{id}")
