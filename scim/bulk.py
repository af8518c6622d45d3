"""POST /Bulk (RFC 7644 §3.7): many operations in one request.

Each operation runs through the app exactly as a request of its own would (validation, If-Match from its
`version`, errors, its own audit row), in its own application context and so its own transaction: one
failing operation leaves the others as they are. `bulkId:<id>` references are replaced by the ids the
earlier POSTs were given; an operation whose reference is not yet known waits until it is.
"""

import json
import re
import time

from flask import current_app, request
from werkzeug.test import Client, EnvironBuilder

from models import db
from scim import PREFIX, bp
from scim.audit import SECRETS_KEY
from scim.errors import ScimType, error_body, invalid_syntax, invalid_value, too_large
from scim.requests import read_json
from scim.responses import scim_response

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
METHODS = {"POST", "PUT", "PATCH", "DELETE"}
PATH = re.compile(r"^/(Users|Groups)(/[^/]+)?$")
BULK_ID = re.compile(r"bulkId:([A-Za-z0-9._~-]+)")


def _check_limits() -> None:
    """maxPayloadSize against the body itself, chunked ones too: Content-Length first, so an announced
    oversized body is refused unread, then the bytes actually read."""
    limit = current_app.config["SCIM_BULK_MAX_PAYLOAD"]
    oversized = too_large(f"the bulk request is larger than maxPayloadSize ({limit} bytes)")
    if (request.content_length or 0) > limit or len(request.get_data(cache=True)) > limit:
        raise oversized


def _operations(body: dict) -> list[dict]:
    schemas = body.get("schemas")
    if schemas is not None and BULK_REQUEST not in (schemas if isinstance(schemas, list) else [schemas]):
        raise invalid_syntax(f"schemas must contain {BULK_REQUEST}")
    operations = next((v for k, v in body.items() if k.lower() == "operations"), None)
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise invalid_syntax("Operations must be an array of objects")
    limit = current_app.config["SCIM_BULK_MAX_OPERATIONS"]
    if len(operations) > limit:
        raise too_large(f"the bulk request has more than maxOperations ({limit}) operations")
    return operations


def _fail_on_errors(body: dict) -> int | None:
    value = body.get("failOnErrors")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise invalid_value("failOnErrors must be a positive integer")
    return value


def _resolve(value, created: dict[str, str]):
    """`value` with every known bulkId reference replaced; raises KeyError naming an unknown one."""
    text = json.dumps(value)
    for reference in BULK_ID.findall(text):
        if reference not in created:
            raise KeyError(reference)
    return json.loads(BULK_ID.sub(lambda m: created[m.group(1)], text))


def _dispatch(method: str, path: str, data, version: str | None):
    """Run one operation through the whole app (auth, checks, audit) in a context of its own."""
    headers = {"Authorization": request.headers.get("Authorization", ""),
               "Content-Type": "application/scim+json", "User-Agent": request.user_agent.string}
    if version:
        headers["If-Match"] = version
    builder = EnvironBuilder(path=PREFIX + path, method=method, base_url=request.host_url, headers=headers,
                             data=json.dumps(data) if data is not None else None,
                             # the secrets each operation applies scrub this request's stored body too
                             environ_base={"REMOTE_ADDR": request.remote_addr,
                                           SECRETS_KEY: request.environ.setdefault(SECRETS_KEY, [])})
    with current_app.app_context():
        response = Client(current_app.wsgi_app).open(builder)
        return response.status_code, response.get_json(silent=True) or {}, response.headers


def _check_operation(operation: dict) -> tuple[str, str]:
    method = str(operation.get("method", "")).upper()
    path = operation.get("path")
    match = PATH.match(path.split("?")[0]) if isinstance(path, str) else None
    if method not in METHODS or not match:
        raise ValueError("each operation needs a method (POST, PUT, PATCH, DELETE) and a path such as "
                         "/Users or /Groups/<id>")
    if (method == "POST") != (match.group(2) is None):
        raise ValueError("POST goes to /Users or /Groups; PUT, PATCH and DELETE to /Users/<id> or /Groups/<id>")
    if method == "POST" and not operation.get("bulkId"):
        raise ValueError("a POST operation needs a bulkId")
    if operation.get("bulkId") is not None and not isinstance(operation["bulkId"], str):
        raise ValueError("bulkId must be a string")  # RFC 7644 §3.7.1; a list would not even be hashable
    version = operation.get("version")
    if version is not None and not (isinstance(version, str) and version.isascii() and version.isprintable()):
        raise ValueError("version must be an ETag such as W/\"3\"")  # it becomes the If-Match header
    return method, path


def _run(operation: dict, created: dict[str, str]) -> dict:
    result = {"method": str(operation.get("method", "")).upper()}
    if operation.get("bulkId") and isinstance(operation["bulkId"], str):
        result["bulkId"] = operation["bulkId"]
    try:
        method, path = _check_operation(operation)
    except ValueError as exc:
        return {**result, "status": "400", "response": error_body(400, str(exc), ScimType.INVALID_SYNTAX)}
    path, data = _resolve(path, created), _resolve(operation.get("data"), created)
    status, body, headers = _dispatch(method, path, data, operation.get("version"))
    result["status"] = str(status)
    if status >= 400:
        result["response"] = body
    else:
        if method != "DELETE":
            result["location"] = body.get("meta", {}).get("location") or headers.get("Location")
            result["version"] = headers.get("ETag")
        else:
            result["location"] = request.host_url.rstrip("/") + PREFIX + path
        if method == "POST":
            created[operation["bulkId"]] = body.get("id")
    return result


def _out_of_time(operation: dict) -> dict:
    result = {"method": str(operation.get("method", "")).upper(), "status": "503",
              "response": error_body(503, "not run: the bulk request used up its time budget "
                                      "(SCIM_BULK_TIME_BUDGET); send this operation again")}
    if isinstance(operation.get("bulkId"), str):
        result["bulkId"] = operation["bulkId"]
    return result


def run_bulk(operations: list[dict], fail_on_errors: int | None, budget: float) -> list[dict]:
    """Run the operations; once `budget` seconds have passed, the ones not started are answered 503, so a
    bulk request always ends well within the worker's timeout, with a row for every operation it ran."""
    deadline = time.monotonic() + budget
    created: dict[str, str] = {}
    results: dict[int, dict] = {}
    pending = list(range(len(operations)))
    errors = 0
    while pending:
        waiting = []
        for index in pending:
            if time.monotonic() > deadline:
                results[index] = _out_of_time(operations[index])
                continue
            try:
                results[index] = _run(operations[index], created)
            except KeyError:
                waiting.append(index)  # refers to a bulkId created later in the request
                continue
            errors += int(results[index]["status"]) >= 400
            if fail_on_errors and errors >= fail_on_errors:
                return [results[i] for i in sorted(results)]
        if len(waiting) == len(pending):
            for index in waiting:  # circular or dangling references: nothing more can be resolved
                results[index] = {"method": str(operations[index].get("method", "")).upper(),
                                  "bulkId": operations[index].get("bulkId"), "status": "409",
                                  "response": error_body(409, "unresolvable bulkId reference", ScimType.INVALID_VALUE)}
            break
        pending = waiting
    return [results[i] for i in sorted(results)]


@bp.post("/Bulk")
def bulk():
    _check_limits()
    body = read_json()
    db.session.rollback()  # the operations run in transactions of their own; this one holds no lock meanwhile
    results = run_bulk(_operations(body), _fail_on_errors(body), current_app.config["SCIM_BULK_TIME_BUDGET"])
    return scim_response({"schemas": [BULK_RESPONSE], "Operations": results})
