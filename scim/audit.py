"""The audit trail: one row per SCIM request (refused ones too), and one JSON log line on stdout.

A write's row is committed in the write's own transaction (commit); a read's or a failure's after it
(record); the hot path's reads hand theirs to scim/batching.py. A failure to write a row is logged and never
changes the answer the client gets.
"""

import json
import logging
import random
import re
import sys
import time
from datetime import timedelta
from urllib.parse import parse_qsl, unquote_plus, urlencode

from flask import Response, current_app, g, request
from sqlalchemy import bindparam, delete, insert
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from metrics import count_request
from models import AuditEntry, db, durable_commit, utcnow
from scim import events
from scim.reads import Prepared
from scim.requests import parse_json

log = logging.getLogger(__name__)
# A key or query parameter whose name (trimmed, without case, after any URN prefix or dotted parent) contains
# one of these holds a secret: "password", " Password ", "urn:...:core:2.0:User:password", "newPassword",
# "access_token", "apikey", "client_secret"...
SECRET_WORDS = ("password", "passwd", "secret", "token", "authorization", "apikey", "api_key", "api-key",
                "credential")
REDACTED = "[redacted]"
MAX_BODY = 64 * 1024
OPERATIONS = {"POST": "create", "PUT": "replace", "PATCH": "patch", "DELETE": "delete"}
SECRETS_KEY = "scim.secrets"  # request.environ: the secret values this request applied (shared with Bulk)


AUDIT_COLUMNS = ("at", "tenant_id", "token_name", "client_ip", "user_agent", "method", "path", "resource_type",
                 "resource_id", "operation", "status", "scim_type", "detail", "duration_ms", "request_body")
# One INSERT for every request's row, built once, whichever path (Flask's or the hot path) answered it.
AUDIT_INSERT = Prepared(lambda _dialect: insert(AuditEntry.__table__).values(
    {column: bindparam(column) for column in AUDIT_COLUMNS}))
# PostgreSQL: a write's events and its audit row in one statement (the events as a CTE).
AUDIT_WITH_EVENTS = Prepared(lambda dialect: AUDIT_INSERT.statement(dialect).add_cte(
    events.FROM_JSON.statement(dialect).cte("new_events")))


def _bare(name: str) -> str:
    """A key or path as the service resolves it: trimmed, lower-cased, without a value filter, the last part
    of a URN-qualified or dotted name."""
    name = name.strip().lower().split("[", 1)[0]
    return name.replace(":", ".").rsplit(".", 1)[-1].strip()


def is_secret_name(name) -> bool:
    if not isinstance(name, str):
        return False
    bare = _bare(name)
    return any(word in bare for word in SECRET_WORDS)


def redact(value):
    """The body with every secret replaced: keys that name a secret in any spelling the service accepts,
    and the value of an operation whose path (any key spelled "path", in any case, with spaces) names one:
    PATCH reads keys without case and takes the last of duplicates, so each is looked at."""
    if isinstance(value, list):
        return [redact(item) for item in value]
    if not isinstance(value, dict):
        return value
    clean = {k: REDACTED if is_secret_name(k) else redact(v) for k, v in value.items()}
    if any(k.strip().lower() == "path" and is_secret_name(v) for k, v in value.items()):
        clean = {k: REDACTED if k.strip().lower() == "value" else v for k, v in clean.items()}
    return clean


def note_secret(value) -> None:
    """Remember a secret the request applies (the password a create, replace or PATCH sets), whatever form it
    came in: the stored body is scrubbed of it afterwards, a second wall behind redact()."""
    if isinstance(value, str) and value:
        request.environ.setdefault(SECRETS_KEY, []).append(value)


def scrub(value, secrets: list[str]):
    """Every string in a parsed document with the given secret values replaced."""
    if isinstance(value, list):
        return [scrub(item, secrets) for item in value]
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
    return value


def not_read(size: int | None) -> str:
    return f"[not read: {size} bytes]" if size is not None else "[not read: length not given]"


def stored_body() -> str | None:
    """The body as the audit trail keeps it: parsed, redacted, scrubbed of applied secrets, cut to 64 KiB.
    A request whose credential was refused, or whose body is over the size limit, is not read at all: only
    its size is recorded, so that an oversized or unauthenticated body costs nothing."""
    size = request.content_length
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if not g.get("authenticated"):
        return not_read(size) if size or chunked else None
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit and size and size > limit:
        return not_read(size)
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        return not_read(size)
    if not raw:
        return None
    try:
        body = redact(parse_json(raw))
    except (ValueError, RecursionError):
        return f"[not JSON: {len(raw)} bytes]"  # unparsed text may hold anything: never stored
    secrets = request.environ.get(SECRETS_KEY)
    return json.dumps(scrub(body, secrets) if secrets else body)[:MAX_BODY]


def resource_of(req, response: Response) -> tuple[str | None, str | None]:
    parts = req.path.split("/")  # ["", "scim", "v2", "Users", "<id>"]
    kind = parts[3] if len(parts) > 3 else None
    resource_id = parts[4] if len(parts) > 4 else None
    if resource_id is None and response.status_code == 201 and "Location" in response.headers:
        resource_id = response.headers["Location"].rsplit("/", 1)[-1]
    return kind, resource_id


def operation_of(method: str, resource_id: str | None) -> str:
    if method == "GET":
        return "read" if resource_id else "list"
    return OPERATIONS.get(method, method.lower())


# Query parameters that carry a credential by convention, whatever their name says.
SECRET_PARAMETERS = {"key", "code", "sig", "signature", "auth"}
SECRET_HINTS = (*SECRET_WORDS, *SECRET_PARAMETERS)  # one of these appears in any query that names a secret


def redact_query(query: str) -> str:
    """The query string with every credential-like parameter's value replaced (?access_token=, ?apikey=...)."""
    lowered = unquote_plus(query).lower()
    if not any(word in lowered for word in SECRET_HINTS):  # no parameter name can be one (the common case)
        return query

    def secret(name: str) -> bool:
        return is_secret_name(name) or name.strip().lower() in SECRET_PARAMETERS
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(secret(k) for k, _ in pairs):
        return query
    return urlencode([(k, REDACTED if secret(k) else v) for k, v in pairs])


class RedactQueryStrings(logging.Filter):
    """For a logger that prints request lines (the development server's): credential-like query
    parameters replaced, as in the audit trail."""

    QUERY = re.compile(r"\?([^\s\"]*)")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.QUERY.sub(lambda m: "?" + redact_query(m.group(1)), arg)
                                if isinstance(arg, str) else arg for arg in record.args)
        return True


def start_clock() -> None:
    g.audit_started = time.perf_counter()


def facts(response: Response) -> dict:
    """The audit row of this Flask request, without its body."""
    return request_facts(request, response, g.get("auth_name", "anonymous"),
                         g.get("audit_started", time.perf_counter()),
                         g.get("tenant_id", g.get("refused_tenant_id")))


def request_facts(req, response: Response, token_name: str, started: float, tenant_id: int | None) -> dict:
    """The audit row of a werkzeug request (Flask's, or the hot path's) and its response, without its body.
    `tenant_id`: the credential's tenant (None when none was recognised)."""
    kind, resource_id = resource_of(req, response)
    scim_type = detail = None
    if response.status_code >= 400 and response.is_json:
        answer = response.get_json(silent=True) or {}
        scim_type, detail = answer.get("scimType"), answer.get("detail")
    query = redact_query(req.query_string.decode(errors="replace"))
    return {key: value.replace("\x00", "") if isinstance(value, str) else value for key, value in {
        "at": utcnow(),
        "tenant_id": tenant_id,
        "token_name": token_name,
        "client_ip": req.remote_addr,
        "user_agent": (req.user_agent.string or "")[:255] or None,
        "method": req.method[:10],
        "path": (req.path + ("?" + query if query else ""))[:2048],
        "resource_type": kind[:20] if kind else None,
        "resource_id": resource_id[:64] if resource_id else None,
        "operation": operation_of(req.method, resource_id),
        "status": response.status_code,
        "scim_type": scim_type,
        "detail": str(detail)[:500] if detail else None,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
    }.items()}  # no NUL: a text column cannot hold one


def add_to_transaction(response: Response, pending: list[dict]) -> bool:
    """A successful write carries its events and its audit row in its own transaction: one commit for all
    (on PostgreSQL one statement for the events and the row). Every value fits its column, so the row cannot
    make the write fail; if it cannot even be built, the write and its events go on and after_request tries
    again."""
    try:
        g.audit_facts = facts(response)  # after_request logs the same facts, not built twice
        row = {**g.audit_facts, "request_body": stored_body()}
    except Exception:
        log.exception("could not build the audit row")
        events.write(pending)
        return False
    dialect = db.engine.dialect.name
    if pending and dialect == "postgresql":
        db.session.execute(AUDIT_WITH_EVENTS.statement(dialect), {**row, **events.parameters(pending)})
    else:
        events.write(pending)
        db.session.execute(AUDIT_INSERT.statement(dialect), row)  # no unit-of-work bookkeeping
    return True


def commit(response: Response) -> Response:
    """Commit the request's transaction, with its events and audit row, once its response is built: nothing
    after the commit touches the database, so a client is never told "error" about a write that was made."""
    audited = add_to_transaction(response, events.take_pending())
    durable_commit()
    g.audited = audited
    return response


def record(response: Response) -> Response:
    """after_request: the log line, and the audit row unless the write's transaction carried it.
    Never raises: a failure to audit is logged and never changes the answer."""
    try:
        audited = g.pop("audited", False)
        row = g.pop("audit_facts", None) if audited else None
        row = row or facts(response)
        report(row)
        if audited or g.get("database_misconfigured"):
            return response  # carried by the write's transaction, or no database to keep it (errors.py)
        if db.engine.dialect.name == "sqlite":
            db.session.rollback()  # SQLite: a read transaction cannot always turn into a write one
        # Elsewhere a read request's own transaction carries the row (commits of the trail are asynchronous).
        db.session.execute(AUDIT_INSERT.statement(db.engine.dialect.name), {**row, "request_body": stored_body()})
        db.session.commit()
        one_in = current_app.config["SCIM_AUDIT_PRUNE_ONE_IN"]
        if one_in and random.randrange(one_in) == 0:  # now and then, so no cron job is needed
            prune(current_app.config["SCIM_AUDIT_RETENTION_DAYS"])
            events.prune(current_app.config["SCIM_EVENT_RETENTION_DAYS"])
    except SQLAlchemyError as exc:
        log.warning("could not write the audit row: %s", getattr(exc, "orig", exc))
        db.session.rollback()
    except Exception:
        log.exception("could not write the audit row")
        db.session.rollback()
    return response


def report(row: dict) -> None:
    """The request counted in the metrics, and its JSON line on stdout when SCIM_ACCESS_LOG is on."""
    count_request(row)
    if current_app.config["SCIM_ACCESS_LOG"]:
        line = {"event": "scim_request", **row, "at": row["at"].isoformat()}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


def prune(days: int) -> int:
    """Delete audit rows older than the retention period; returns how many."""
    if not days or days <= 0:
        return 0
    result = db.session.execute(delete(AuditEntry).where(AuditEntry.at < utcnow() - timedelta(days=days)))
    db.session.commit()
    return result.rowcount
