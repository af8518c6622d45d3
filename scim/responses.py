"""HTTP responses of the SCIM API: the media type, ETags, 304 and 201 headers, attribute selection."""

import json

from flask import Response, request

from scim.errors import SCIM_MEDIA_TYPE
from scim.requests import not_modified, selection
from scim.serialize import list_body, select_attributes


def scim_response(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype=SCIM_MEDIA_TYPE)
    response.headers.update(headers or {})
    return response


def no_content(version: str | None = None) -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body, so no media type
    if version:
        response.headers["ETag"] = version
    return response


def selected(body: dict) -> dict:
    """RFC 7644 §3.4.2.5 and §3.9: the body with the request's attributes/excludedAttributes applied."""
    return select_attributes(body, selection("attributes"), selection("excludedAttributes"))


def resource_response(body: dict, status: int = 200) -> Response:
    """A single resource with its ETag (RFC 7644 §3.14); 201 answers also carry Location (§3.3)."""
    headers = {"ETag": body["meta"]["version"]}
    if request.method == "GET" and not_modified(body["meta"]["version"]):
        return Response(status=304, headers=headers)
    if status == 201:
        headers["Location"] = body["meta"]["location"]
    return scim_response(selected(body), status, headers)


def list_response(resources: list[dict], total: int, start: int | None = None, next_cursor: str | None = None,
                  previous_cursor: str | None = None) -> Response:
    included, excluded = selection("attributes"), selection("excludedAttributes")  # once for the whole page
    if included or excluded:
        resources = [select_attributes(r, included, excluded) for r in resources]
    return scim_response(list_body(resources, total, start, next_cursor, previous_cursor))
