"""The User and Group schemas (RFC 7643 §4, §8.7.1) and the check that turns a request body into a clean resource.

Bodies are checked against these tables rather than a strict model, so that what Okta and Entra really send
(emails at `.local` domains, `"False"` as a string, `groups: []` and `meta` on create) is accepted.
"""

from dataclasses import dataclass, field

from flask import current_app

from scim.errors import invalid_syntax, invalid_value

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


@dataclass(frozen=True)
class Attr:
    name: str
    type: str = "string"  # string | boolean | complex | reference | binary | dateTime
    multi: bool = False
    sub: tuple["Attr", ...] = ()
    mutability: str = "readWrite"  # readWrite | readOnly | writeOnly | immutable
    returned: str = "default"  # default | always | never
    case_exact: bool = False
    required: bool = False
    open: bool = False  # a declared custom extension: its attributes are stored as sent
    by_name: dict = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "by_name", {a.name.lower(): a for a in self.sub})

    def child(self, name: str) -> "Attr | None":
        if self.open:
            return Attr(name, "any")
        return self.by_name.get(name.lower())


def _multi(name: str, value_type: str = "string", **kw) -> Attr:
    """The usual shape of a multi-valued attribute: value, display, type, primary (RFC 7643 §2.4)."""
    # RFC 7643 §2.3.6: binary values are case exact (erratum 6000 corrects §8.7.1's x509Certificates.value).
    sub = (Attr("value", value_type, case_exact=value_type == "binary"), Attr("display"), Attr("type"),
           Attr("primary", "boolean"))
    return Attr(name, "complex", multi=True, sub=sub, **kw)


COMMON = (
    Attr("id", mutability="readOnly", returned="always", case_exact=True),
    Attr("externalId", case_exact=True),
    Attr("meta", "complex", mutability="readOnly"),
)

NAME = Attr("name", "complex", sub=tuple(Attr(n) for n in (
    "formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix")))

ADDRESS = Attr("addresses", "complex", multi=True, sub=tuple(Attr(n) for n in (
    "formatted", "streetAddress", "locality", "region", "postalCode", "country", "type"))
    + (Attr("primary", "boolean"),))

USER = Attr(USER_SCHEMA, "complex", sub=COMMON + (
    Attr("userName", required=True),
    NAME,
    Attr("displayName"), Attr("nickName"), Attr("profileUrl", "reference"), Attr("title"),
    Attr("userType"), Attr("preferredLanguage"), Attr("locale"), Attr("timezone"),
    Attr("active", "boolean"),
    Attr("password", mutability="writeOnly", returned="never"),
    _multi("emails"), _multi("phoneNumbers"), _multi("ims"), _multi("photos", "reference"),
    ADDRESS,
    Attr("groups", "complex", multi=True, mutability="readOnly", sub=(
        Attr("value"), Attr("$ref", "reference"), Attr("display"), Attr("type"))),
    _multi("entitlements"), _multi("roles"), _multi("x509Certificates", "binary"),
))

ENTERPRISE_USER = Attr(ENTERPRISE_SCHEMA, "complex", sub=(
    Attr("employeeNumber"), Attr("costCenter"), Attr("organization"), Attr("division"),
    Attr("department"),
    Attr("manager", "complex", sub=(
        Attr("value"), Attr("$ref", "reference"), Attr("displayName", mutability="readOnly"))),
))

GROUP = Attr(GROUP_SCHEMA, "complex", sub=COMMON + (
    Attr("displayName", required=True),
    Attr("members", "complex", multi=True, sub=(
        Attr("value", mutability="immutable"), Attr("$ref", "reference"), Attr("display"),
        Attr("type"))),
))

EXTENSIONS = {USER_SCHEMA: (ENTERPRISE_USER,), GROUP_SCHEMA: ()}
CUSTOM_EXTENSION_SETTINGS = {USER_SCHEMA: "SCIM_USER_EXTENSIONS", GROUP_SCHEMA: "SCIM_GROUP_EXTENSIONS"}


def extensions(resource: Attr) -> tuple[Attr, ...]:
    """The resource's extension schemas: the enterprise User extension, then the custom ones declared in
    configuration (e.g. Okta app profile attributes, urn:ietf:params:scim:schemas:extension:<name>:2.0:User)."""
    declared = current_app.config[CUSTOM_EXTENSION_SETTINGS[resource.name]]
    return EXTENSIONS[resource.name] + tuple(Attr(urn, "complex", open=True) for urn in declared)
TRUE_FALSE = {"true": True, "false": False}


def is_unassigned(value) -> bool:
    return value is None or value == [] or value == {} or value == ""


def coerce(attr: Attr, value, where: str):
    """One value of `attr`, checked and normalised. Raises 400 invalidValue on a wrong type."""
    if attr.type == "any":
        return value
    if attr.type == "boolean":
        if isinstance(value, bool):
            return value
        # Entra ID sends booleans as "True"/"False" strings unless the aadOptscim062020 flag is set.
        if isinstance(value, str) and value.lower() in TRUE_FALSE:
            return TRUE_FALSE[value.lower()]
        raise invalid_value(f"{where} must be a boolean")
    if attr.type == "complex":
        if isinstance(value, str) and not attr.multi and attr.child("value"):
            # Entra ID sends the enterprise manager as the bare id: "manager": "<user id>".
            value = {"value": value}
        if not isinstance(value, dict):
            raise invalid_value(f"{where} must be an object")
        return normalize(attr, value, where)
    if not isinstance(value, str):
        raise invalid_value(f"{where} must be a string")
    return value


def coerce_any(attr: Attr, value, where: str):
    """A whole attribute value: a list of coerced items when multi-valued, one coerced value otherwise."""
    if is_unassigned(value):
        return None
    if not attr.multi:
        return coerce(attr, value, where)
    if not isinstance(value, list):
        raise invalid_value(f"{where} must be an array")
    items = [coerce(attr, item, f"{where}[{i}]") for i, item in enumerate(value)]
    return [item for item in items if not is_unassigned(item)] or None


def normalize(parent: Attr, body: dict, where: str = "") -> dict:
    """Keep the attributes `parent` declares, under their canonical names (RFC 7643 §2.1: names are
    case-insensitive), drop readOnly ones (RFC 7644 §3.5.1: ignored when sent) and unknown ones."""
    if parent.open:
        return dict(body)
    clean = {}
    for key, value in body.items():
        attr = parent.child(key)
        if attr is None or attr.mutability == "readOnly":
            continue
        value = coerce_any(attr, value, f"{where}{attr.name}")
        if value is not None:
            clean[attr.name] = value
    return clean


def normalize_resource(resource: Attr, body: dict) -> dict:
    """A request body as the clean resource dict stored in `data` (core attributes and known extensions)."""
    if not isinstance(body, dict):
        raise invalid_syntax("the request body must be a JSON object")
    clean = normalize(resource, body)
    for extension in extensions(resource):
        for key, value in body.items():
            if key.lower() == extension.name.lower() and not is_unassigned(value):
                part = coerce(extension, value, extension.name)
                if part:
                    clean[extension.name] = part
    for attr in resource.sub:
        if attr.required and not clean.get(attr.name, "").strip():
            raise invalid_value(f"{attr.name} is required")
    return clean


def find_attr(resource: Attr, name: str) -> Attr | None:
    """A top-level attribute by name, or a whole extension by its URN."""
    attr = resource.child(name)
    if attr:
        return attr
    return next((e for e in extensions(resource) if e.name.lower() == name.lower()), None)
