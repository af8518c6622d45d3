"""Tables, constraints and indexes. No SCIM JSON is built here."""

import uuid
from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    event,
    func,
    literal_column,
    true,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

# Named constraints, so that migrations can refer to them on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    pass


Base.metadata.naming_convention = NAMING
db = SQLAlchemy(model_class=Base)


# PostgreSQL: this transaction's commit waits until it is on disk (SET LOCAL synchronous_commit = on), as an
# expression a write statement can carry, so that the durable commit costs no statement of its own.
SYNCHRONOUS_COMMIT = func.set_config(literal_column("'synchronous_commit'"), literal_column("'on'"), true())
DURABLE = "durable_transaction"  # session.info: the transaction whose statements set SYNCHRONOUS_COMMIT


def made_durable() -> None:
    """Note that a statement of this transaction evaluated SYNCHRONOUS_COMMIT (scim.writes does)."""
    db.session.info[DURABLE] = db.session().get_transaction()


def durable_commit() -> None:
    """Commit and wait until it is on disk. PostgreSQL connections here commit asynchronously by default
    (reads and their audit rows: a crash may lose the trail's last milliseconds); data changes never do.
    A transaction rolled back and begun again is a new one: its commit asks again."""
    marked = db.session.info.pop(DURABLE, None)
    asked = marked is not None and marked is db.session().get_transaction()
    if db.session.get_bind().dialect.name == "postgresql" and not asked:
        db.session.connection().exec_driver_sql("SET LOCAL synchronous_commit = on")
    db.session.info["committing"] = True  # from here on, a dropped connection leaves the outcome unknown
    db.session.commit()
    db.session.info["committing"] = False


def begin_write() -> None:
    """Start a transaction that will write. On SQLite it takes the write lock at once (BEGIN IMMEDIATE): a
    transaction that read first and wrote later would fail with "database is locked" whenever another process
    wrote in between. Anything the session had open is ended first (it only read)."""
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.rollback()
        db.session.connection(execution_options={SQLITE_BEGIN: "IMMEDIATE"})


def autocommit_reads() -> None:
    """A request that only reads runs each statement as its own transaction on PostgreSQL: no BEGIN and no
    COMMIT round trips (its audit row commits by itself, asynchronously). Each statement sees a consistent
    snapshot, which is all READ COMMITTED gives a transaction anyway. Marked, so that a statement whose
    connection was dropped may be run again on a new one (scim.reads.SessionRunner)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.rollback()  # nothing to lose: a fresh request's session has nothing open
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        db.session.info["reads_only"] = True


def once_more_if_dropped(run):
    """run(), and if the database had dropped the connection it used (a restart, a failover), run() again on a
    new one, so that no connection needs a ping per request to find out first. Safe because nothing of the
    first attempt remains: a read changes nothing, and a write's transaction that never reached COMMIT was
    discarded with its connection. A failure during COMMIT is not retried (the write may have been made).
    The failed connection also invalidates the pool's older ones, which are replaced as they are used."""
    try:
        return run()
    except DBAPIError as exc:
        if not exc.connection_invalidated or db.session.info.get("committing"):
            raise
        reads_only = db.session.info.get("reads_only")
        db.session.rollback()
        if reads_only:
            autocommit_reads()
        else:
            begin_write()
        return run()


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Tenant(db.Model):
    """One customer's IdP connection (an Okta org, an Entra tenant): the users, groups, credentials and audit
    rows that belong to it are seen by its credentials only."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # its credentials refused since


# The tenant every deployment has (made by migration 0005): SCIM_BEARER_TOKEN and every credential created
# without --tenant belong to it, so a deployment that serves one customer never names one.
DEFAULT_TENANT_ID = 1
DEFAULT_TENANT = "default"


def tenant_column() -> Mapped[int]:
    """The owning tenant: required, and its rows go with it (tenants delete)."""
    return mapped_column(Integer, ForeignKey("tenants.id", ondelete="CASCADE"))


class Resource:
    """Columns every SCIM resource shares: its tenant, id, externalId and the facts behind `meta`."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[int] = tenant_column()
    external_id: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_modified: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    version: Mapped[int] = mapped_column(Integer)
    # The resource as SCIM JSON, minus id, meta, password and what is derived (groups, members).
    data: Mapped[dict] = mapped_column(JSON, default=dict)

    @declared_attr.directive
    def __mapper_args__(cls):
        # Every ORM UPDATE says "WHERE version = <the version read>" and bumps it: a concurrent writer that
        # read an older version fails (StaleDataError) instead of silently overwriting (RFC 7644 §3.14).
        # scim.writes, which writes users with Core statements, does the same in its own UPDATEs.
        return {"version_id_col": cls.__table__.c.version}


class User(Resource, db.Model):
    __tablename__ = "users"

    # Indexed projections of `data`, written only by scim.writes.
    user_name: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    given_name: Mapped[str | None] = mapped_column(String(255))
    family_name: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        # RFC 7643 §4.1.1: userName is unique and not case-exact, within a tenant; the database enforces it.
        # Every index leads with the tenant: each query of a tenant's users reads its own part only.
        Index("uq_users_tenant_id_user_name_lower", "tenant_id", func.lower(user_name), unique=True),
        Index("ix_users_tenant_id_display_name_lower", "tenant_id", func.lower(display_name)),
        Index("ix_users_tenant_id_external_id", "tenant_id", "external_id"),
        Index("ix_users_tenant_id_created_id", "tenant_id", "created", "id"),
    )


class UserEmail(db.Model):
    """One row per entry of a user's `emails`, so that filters on them use an index."""

    __tablename__ = "user_emails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    value: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str | None] = mapped_column(String(64))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_user_emails_value_lower", func.lower(value)),)


class Group(Resource, db.Model):
    __tablename__ = "groups"

    display_name: Mapped[str] = mapped_column(String(255))

    __table_args__ = (
        Index("uq_groups_tenant_id_display_name_lower", "tenant_id", func.lower(display_name), unique=True),
        Index("ix_groups_tenant_id_external_id", "tenant_id", "external_id"),
        Index("ix_groups_tenant_id_created_id", "tenant_id", "created", "id"),
    )


class Link(db.Model):
    """Group membership: one row per (group, user) pair."""

    __tablename__ = "link"

    group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # RFC 7643 §2.4: a member's `display` is set by the client when the member is added and never updated;
    # NULL when none was sent (then the user's own name is shown).
    display: Mapped[str | None] = mapped_column(Text)


SQLITE_BEGIN = "sqlite_begin"  # execution option: "IMMEDIATE" for a transaction that will write


@event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection, _record):
    """SQLite: enforce foreign keys (and so ON DELETE CASCADE); write-ahead logging, so that readers and
    the one writer do not block each other; and transactions begun by us, not by the driver."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # LIKE compares case as PostgreSQL does: sw/ew/co on caseExact attributes (externalId) respect case;
        # the others compare lower() with lower().
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection):
    """A writing request takes SQLite's write lock when it begins (BEGIN IMMEDIATE), so that what it reads
    (a version, a membership) cannot change before it writes: concurrent writers queue, as with the row
    locks PostgreSQL takes."""
    if connection.dialect.name == "sqlite":
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Token(db.Model):
    """A credential an IdP presents: a bearer token, or an HTTP Basic user and password. Only hashes are kept."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = tenant_column()  # the tenant every request with this credential reads and writes
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="bearer")  # bearer | basic
    basic_user: Mapped[str | None] = mapped_column(String(255))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What it may call: "scim" (an IdP: the SCIM API) or "events" (the application: the event feed).
    scope: Mapped[str] = mapped_column(String(10), default="scim")


SCOPES = ("scim", "events")
# A row id on both databases (SQLite makes only an INTEGER PRIMARY KEY its rowid, numbered for us).
ROW_ID = BigInteger().with_variant(Integer, "sqlite")


class Event(db.Model):
    """One change, written in the transaction of the change (scim/events.py). The feed reads a tenant's
    events in (txid, id) order: the writing transaction's id on PostgreSQL (0 on SQLite, whose writers take
    turns), then the row's position."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = tenant_column()
    txid: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)  # the public id, and the feed's cursor
    type: Mapped[str] = mapped_column(String(40))
    occurred: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    resource_type: Mapped[str] = mapped_column(String(20))
    resource_id: Mapped[str] = mapped_column(String(64))
    attributes: Mapped[list | None] = mapped_column(JSON)  # the attributes an update changed
    data: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (Index("ix_events_tenant_id_txid_id", "tenant_id", "txid", "id"),)


class Webhook(db.Model):
    """A destination the delivery worker POSTs a tenant's events to (scim/webhooks.py). Its signing secret is
    not stored: it is derived from `salt` and SCIM_TOKEN_PEPPER, which stays out of the database."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = tenant_column()
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list | None] = mapped_column(JSON)  # the types or families it takes; None: every event
    salt: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The feed position up to which its deliveries exist: (txid, id) of the last event considered.
    after_txid: Mapped[int] = mapped_column(BigInteger, default=0)
    after_id: Mapped[int] = mapped_column(BigInteger, default=0)


class Delivery(db.Model):
    """One event for one webhook: pending until delivered, or failed (the dead letter) once its retry period
    has passed. A worker holds it by a lease (`leased_until`), never by a transaction left open."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(Integer, ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ROW_ID, ForeignKey("events.id", ondelete="CASCADE"))
    resource_id: Mapped[str] = mapped_column(String(64))  # a resource's events are delivered in order
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | delivered | failed
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's HTTP status; None: no answer
    last_error: Mapped[str | None] = mapped_column(String(300))
    delivered: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_deliveries_state_next_attempt", "state", "next_attempt"),
                      Index("ix_deliveries_webhook_id_resource_id_id", "webhook_id", "resource_id", "id"),
                      Index("ix_deliveries_event_id", "event_id"))


class AuditEntry(db.Model):
    """One row per SCIM request, refused ones included. Request bodies are stored with secrets redacted."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    # The credential's tenant; NULL for a request refused before any credential was recognised.
    tenant_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("tenants.id", ondelete="CASCADE"))
    token_name: Mapped[str] = mapped_column(String(120))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2048))
    resource_type: Mapped[str | None] = mapped_column(String(20))
    resource_id: Mapped[str | None] = mapped_column(String(64), index=True)
    operation: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[int] = mapped_column(Integer)
    scim_type: Mapped[str | None] = mapped_column(String(30))
    detail: Mapped[str | None] = mapped_column(String(500))  # an error answer's detail
    duration_ms: Mapped[float] = mapped_column(Float)
    request_body: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_audit_client_ip_status_at", "client_ip", "status", "at"),
                      Index("ix_audit_tenant_id_at", "tenant_id", "at"))


class Admin(db.Model):
    """A person who may use the console at /admin: never a SCIM or event credential. Only a salted hash of
    the password is kept."""

    __tablename__ = "admins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # kept in lower case
    password_hash: Mapped[str] = mapped_column(String(255))
    tenants: Mapped[list | None] = mapped_column(JSON)  # the ids of the tenants it may see; None: every tenant
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Moved on by a logout: a session cookie carries the epoch it was made in, and an older one is refused.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)


class AdminLogin(db.Model):
    """Every attempt to log in to the console: the login throttle counts the failed ones."""

    __tablename__ = "admin_logins"

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    email: Mapped[str] = mapped_column(String(254))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (Index("ix_admin_logins_email_at", "email", "at"),
                      Index("ix_admin_logins_client_ip_at", "client_ip", "at"))
