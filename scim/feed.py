"""GET /api/events: a tenant's events, for the application behind the service (docs/events.md).

Outside /scim/v2, and for another credential: a token made with `tokens create NAME --tenant T --scope
events`. It reads its tenant's events and nothing else; an IdP's token (scope scim) is refused here, and an
events token is refused by the SCIM API.

`after` is the id of the last event a consumer handled (absent: from the oldest kept); `limit` 1-1000 (100);
`type` a comma-separated list of types or families (`user.created,group.*`). The answer holds the events in
feed order and `next`, the `after` to send next: the last event's id, or the same `after` when there is
nothing new yet. Following `next` sees every event once.
"""

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from models import Tenant, db
from scim import events
from scim.auth import CHALLENGE, Identity, identify
from scim.errors import invalid_value, unauthorized

feed = Blueprint("events", __name__, url_prefix="/api")
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
FAMILIES = {kind.split(".")[0] for kind in events.TYPES}


def _limit() -> int:
    text = request.args.get("limit", str(DEFAULT_LIMIT))
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT):
        raise invalid_value(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def patterns(text: str | None) -> list[str]:
    """The types asked for: each an event type or a family (`user.*`)."""
    found = [part.strip() for part in (text or "").split(",") if part.strip()]
    for pattern in found:
        if pattern not in events.TYPES and not (pattern.endswith(".*") and pattern[:-2] in FAMILIES):
            raise invalid_value(f"unknown event type {pattern!r}; the types are {', '.join(events.TYPES)}, "
                                "or a family such as user.* or group.*")
    return found


@feed.get("/events")
def list_events():
    who = identify(request.headers.get("Authorization"), scope="events")
    if not isinstance(who, Identity):
        raise unauthorized(who.detail, CHALLENGE)
    limit, kinds, after = _limit(), patterns(request.args.get("type")), request.args.get("after") or None
    position = None
    if after is not None:
        position = events.position_of(who.tenant_id, after) if len(after) <= 64 else None
        if position is None:
            raise invalid_value("after names no event of this feed (an id it returned, still within "
                                f"{current_app.config['SCIM_EVENT_RETENTION_DAYS']} days); send no after to "
                                "start from the oldest event kept")
    found = events.page(who.tenant_id, position, limit, kinds)
    name = db.session.scalar(select(Tenant.name).where(Tenant.id == who.tenant_id))
    db.session.rollback()  # a read: nothing to keep
    body = {"data": [events.as_json(event, name) for event in found], "next": found[-1].event_id if found else after}
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
