"""The error vocabulary: one exception type, one constructor per kind of SCIM error, and the one body builder
(RFC 7644 §3.12). Pure: no Flask here; scim.handlers renders these for every failure."""

from enum import StrEnum

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_MEDIA_TYPE = "application/scim+json"


class ScimType(StrEnum):
    """RFC 7644 §3.12, Table 9; and the cursor paging errors of RFC 9865 §2.1, Table 3."""

    INVALID_FILTER = "invalidFilter"
    TOO_MANY = "tooMany"
    UNIQUENESS = "uniqueness"
    MUTABILITY = "mutability"
    INVALID_SYNTAX = "invalidSyntax"
    INVALID_PATH = "invalidPath"
    NO_TARGET = "noTarget"
    INVALID_VALUE = "invalidValue"
    INVALID_VERS = "invalidVers"
    SENSITIVE = "sensitive"
    INVALID_CURSOR = "invalidCursor"
    EXPIRED_CURSOR = "expiredCursor"
    INVALID_COUNT = "invalidCount"


# Every status the service answers with, and what it means here (the OpenAPI description uses these).
STATUSES = {
    304: "Not modified: If-None-Match names the current version",
    400: "The request is invalid (scimType says how: invalidSyntax, invalidValue, invalidFilter, invalidCursor, ...)",
    401: "Missing or invalid credentials",
    403: "Filters are not supported on discovery endpoints",
    404: "No such resource",
    409: "A resource with this unique attribute already exists (scimType uniqueness)",
    412: "If-Match does not name the current version, or the resource changed meanwhile",
    413: "The body is larger than allowed, or a Bulk or PATCH request has more operations than allowed",
    415: "The body is not application/scim+json or application/json",
    429: "Too many failed authentication attempts from this address",
    500: "Internal server error",
    501: "Not implemented",
    503: "The database is unavailable or not set up; the detail says which",
}


class ScimError(Exception):
    """A failure to report to the client: HTTP status, human detail, and the RFC 7644 scimType if one fits."""

    def __init__(self, status: int, detail: str, scim_type: ScimType | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}


def error_body(status: int, detail: str, scim_type: str | None = None) -> dict:
    body = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = str(scim_type)
    return body


# 400, by scimType
def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, ScimType.INVALID_VALUE)


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, ScimType.INVALID_SYNTAX)


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, ScimType.INVALID_FILTER)


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, ScimType.INVALID_PATH)


def no_target(detail: str) -> ScimError:
    return ScimError(400, detail, ScimType.NO_TARGET)


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, ScimType.MUTABILITY)


def invalid_cursor(detail: str) -> ScimError:
    return ScimError(400, detail, ScimType.INVALID_CURSOR)


def expired_cursor(detail: str) -> ScimError:
    return ScimError(400, detail, ScimType.EXPIRED_CURSOR)


def invalid_count(detail: str) -> ScimError:
    return ScimError(400, detail, ScimType.INVALID_COUNT)


# Other statuses
def unauthorized(detail: str, challenge: dict) -> ScimError:
    return ScimError(401, detail, headers=challenge)


def forbidden(detail: str) -> ScimError:
    return ScimError(403, detail)


def not_found(kind: str, resource_id: str) -> ScimError:
    return ScimError(404, f"{kind} {resource_id} not found")


def uniqueness(detail: str) -> ScimError:
    return ScimError(409, detail, ScimType.UNIQUENESS)


def precondition_failed(detail: str) -> ScimError:
    return ScimError(412, detail)


def too_large(detail: str) -> ScimError:
    return ScimError(413, detail)


def unsupported_media_type(detail: str) -> ScimError:
    return ScimError(415, detail)


def too_many_requests(detail: str, retry_after: int) -> ScimError:
    return ScimError(429, detail, headers={"Retry-After": str(retry_after)})


def internal_error() -> ScimError:
    return ScimError(500, "internal server error")


def not_implemented(detail: str) -> ScimError:
    return ScimError(501, detail)


def unavailable(detail: str, retry_after: int | None = None) -> ScimError:
    """503: with Retry-After for an outage a retry may outlive, without it for what only the operator fixes."""
    return ScimError(503, detail, headers={"Retry-After": str(retry_after)} if retry_after else None)
