"""The hot path: a thin WSGI dispatcher in front of Flask for the reads IdPs send most, on PostgreSQL.

Okta and Entra look a user up (`GET /Users?filter=userName eq "..."`, or `externalId eq`) before each change,
read it back by id (`GET /Users/<id>`) after, and import users by pages (`GET /Users?startIndex=&count=`, or
an RFC 9865 walk: `GET /Users?cursor=&count=`).
For exactly those requests, from a credential this worker
already holds, this answers without Flask's request machinery or an ORM session: the same credential check
(scim.auth.identify), the same statements (scim.reads, compiled once and run on a cursor of this thread's
own connection), the same rendering (scim.serialize, scim.responses) and the same audit row
(scim.audit.request_facts and AUDIT_INSERT; written in batches off the request path, scim/batching.py).
Anything else, or anything unusual about the request (another parameter, a precondition header, a body, a
credential not yet held, a user not found), goes on to Flask untouched, which answers it as it answers
everything else. tests/test_hotpath.py checks that both paths give the same status, headers, body and
audit row.
"""

import logging
import random
import threading
import time

import psycopg
from werkzeug.wrappers import Request

from models import User, db
from scim import SECURITY_HEADERS
from scim.audit import AUDIT_COLUMNS, AUDIT_INSERT, report, request_facts
from scim.auth import Identity, identify
from scim.batching import AuditBatch
from scim.errors import ScimError
from scim.filters import USER_MAP, lookup_filter
from scim.listing import list_digest, page_cursors
from scim.reads import LOOKUP_ATTRIBUTES, lookup, user_with_groups, users_page, users_past
from scim.requests import base_url, check_filter_length, cursor_key, cursor_paging_of, page_bounds
from scim.resources import render_user, render_users
from scim.responses import scim_response
from scim.serialize import list_body

log = logging.getLogger(__name__)
USERS = "/scim/v2/Users"
LIST_PARAMETERS = {"filter", "startIndex", "count"}
CURSOR_PARAMETERS = {"cursor", "count"}
# A request with any of these is answered by Flask: conditional requests, bodies, CORS preflights.
FLASK_HEADERS = ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING")


class CursorRunner:
    """Runs prepared statements on this thread's own pooled connection, in autocommit (no BEGIN, no COMMIT, no
    ping). A connection the database dropped is replaced and the statement run once more."""

    def __init__(self, engine):
        self.engine = engine
        self.local = threading.local()
        self.held: list = []  # every thread's connection, for close()

    def _connection(self):
        fairy = getattr(self.local, "fairy", None)
        if fairy is None:
            fairy = self.local.fairy = self.engine.raw_connection()
            fairy.driver_connection.autocommit = True
            self.held.append(fairy)
        return fairy

    def close(self) -> None:
        """Give the connections back, closed (an app that is done: the tests' teardown)."""
        for fairy in self.held:
            fairy.invalidate()
        self.held = []
        self.local = threading.local()

    def copy(self, table: str, columns: tuple, rows: list[dict]) -> None:
        """Write `rows` (dicts with those columns) into a table with one COPY, in one transaction: the cheapest
        way PostgreSQL takes many rows."""
        fairy = self._connection()
        connection = fairy.driver_connection
        try:
            with connection.transaction(), connection.cursor() as cursor:
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([row[column] for column in columns])
        except psycopg.OperationalError:
            if connection.broken:
                self.local.fairy = None
                self.held.remove(fairy)
                fairy.invalidate()
            raise

    def rows(self, prepared, params: dict) -> list:
        sql, defaults, returns_rows = prepared.sql(self.engine.dialect)
        for attempt in (1, 2):
            fairy = self._connection()
            try:
                with fairy.driver_connection.cursor() as cursor:
                    cursor.execute(sql, {**defaults, **params})
                    return cursor.fetchall() if returns_rows else []
            except psycopg.OperationalError:
                if not fairy.driver_connection.broken or attempt == 2:
                    raise  # a statement timeout, say: Flask's path answers it
                self.local.fairy = None
                self.held.remove(fairy)
                fairy.invalidate()  # the pool renews its older connections too
        raise AssertionError("unreachable")


class HotPath:
    def __init__(self, app, fallback):
        self.app, self.fallback = app, fallback
        self.runner = None  # made on the first request, in the worker process
        self.batch = None  # the reads' audit rows, written off the request path (scim/batching.py)
        self.enabled = True
        self.answered = 0  # requests this process answered here (tests read it)

    def close(self) -> None:
        if self.batch is not None:
            self.batch.flush()
        if self.runner is not None:
            self.runner.close()

    def __call__(self, environ, start_response):
        if self.enabled and environ["REQUEST_METHOD"] == "GET" and environ.get("PATH_INFO", "").startswith(USERS):
            try:
                response = self.answer(environ)
            except Exception:  # never an unrendered failure: Flask answers, and renders any error it meets
                log.exception("the hot path passes the request on after an unexpected error")
                response = None
            if response is not None:
                self.answered += 1
                return response(environ, start_response)
        return self.fallback(environ, start_response)

    def answer(self, environ):
        """The response, or None for Flask to answer."""
        if any(environ.get(header) not in (None, "", "0") for header in FLASK_HEADERS):
            return None
        with self.app.app_context():
            if self.runner is None:
                if db.engine.dialect.name != "postgresql":
                    self.enabled = False  # on SQLite every request goes to Flask: the hot path is PostgreSQL's
                    return None
                self.runner = CursorRunner(db.engine)
                seconds = self.app.config["SCIM_AUDIT_FLUSH_SECONDS"]
                if seconds > 0:
                    self.batch = AuditBatch(lambda rows: self.runner.copy("audit", AUDIT_COLUMNS, rows), seconds)
            one_in = self.app.config["SCIM_AUDIT_PRUNE_ONE_IN"]
            if one_in and random.randrange(one_in) == 0:
                return None  # this request prunes the audit trail: Flask's path does it
            started = time.perf_counter()
            request = Request(environ)
            who = identify(request.headers.get("Authorization"), read=False)
            if not isinstance(who, Identity):
                return None
            try:
                response = self.read(request, who.tenant_id)
            except (ScimError, psycopg.Error) as exc:
                log.debug("hot path passes the request on: %s", exc)
                return None
            if response is not None:
                self.audit(request, response, who, started)
            return response

    def read(self, request, tenant: int):
        path, args = request.path, request.args
        base = base_url(request)
        if path.startswith(USERS + "/") and "/" not in path[len(USERS) + 1:] and not args:
            body = render_user(*user_with_groups(tenant, path[len(USERS) + 1:], self.runner), base)
            return scim_response(body, 200, {"ETag": body["meta"]["version"]})
        if path != USERS or any(len(v) > 1 for v in args.listvalues()):
            return None
        if "cursor" in args:
            return self.cursor_page(tenant, args, base) if set(args) <= CURSOR_PARAMETERS else None
        if set(args) - LIST_PARAMETERS:
            return None
        start, count = page_bounds(args.get("startIndex"), args.get("count"), self.app.config)
        text = check_filter_length("filter", args.get("filter"))
        if text is None:  # a page of an import
            rows, total = users_page(tenant, start, count, True, self.runner)
        else:
            found = lookup_filter(text, USER_MAP, LOOKUP_ATTRIBUTES)
            if found is None:
                return None
            rows, total = lookup(tenant, *found, start, count, True, self.runner)
        return scim_response(list_body(render_users(rows, base), total, start))

    def cursor_page(self, tenant: int, args, base: str):
        """An RFC 9865 page of all users (no filter, no sortBy), as scim.listing.cursor_list answers it."""
        query = list_digest(User, tenant, None, None, None)  # the list of all the tenant's users
        paging = cursor_paging_of(args["cursor"], None, args.get("count"), query, self.app.config)
        cursor = paging.cursor
        result = users_past(tenant, cursor and cursor.position, cursor is not None and cursor.backward,
                            paging.count, True, self.runner)
        next_cursor, previous_cursor = page_cursors(result, paging, query, cursor_key())
        return scim_response(list_body(render_users(result.rows, base), result.total, None, next_cursor,
                                       previous_cursor))

    def audit(self, request, response, who: Identity, started: float) -> None:
        """The request's audit row, as Flask's path writes it; a failure to write it is logged (scim.audit)."""
        response.headers.update(SECURITY_HEADERS)
        try:
            row = request_facts(request, response, who.name, started, who.tenant_id)
            report(row)
            row["request_body"] = None  # a GET's body is never read
            if self.batch is not None:
                self.batch.add(row)
            else:
                self.runner.rows(AUDIT_INSERT, row)
        except Exception as exc:
            log.warning("could not write the audit row: %s", exc)
