"""Tenants: one per customer's IdP connection. Plain arguments in, rows out; no Flask request.

A tenant's credentials decide every request's tenant (scim.auth); its users, groups, credentials and audit
rows reference it and go with it when it is deleted (ON DELETE CASCADE, one transaction). Disabling a tenant
refuses its credentials in every worker within the credential cache's bound (scim/credentials.py), at once
on PostgreSQL, and keeps its data.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from models import DEFAULT_TENANT_ID, AuditEntry, Group, Tenant, Token, User, begin_write, db, durable_commit, utcnow
from scim.tokens import changed


class TenantError(ValueError):
    """A tenant command that cannot be done as asked (the message says why)."""


@dataclass(frozen=True)
class TenantSummary:
    name: str
    created: datetime
    disabled: datetime | None
    users: int
    groups: int
    tokens: int
    last_request: datetime | None


def find_tenant(name: str) -> Tenant:
    tenant = db.session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        raise TenantError(f"no tenant named {name!r}")
    return tenant


def create_tenant(name: str) -> Tenant:
    name = name.strip()
    if not name or len(name) > 100:
        raise TenantError("a tenant's name is 1 to 100 characters")
    begin_write()
    if db.session.scalar(select(Tenant.id).where(Tenant.name == name)) is not None:
        raise TenantError(f"a tenant named {name!r} already exists")
    tenant = Tenant(name=name)
    db.session.add(tenant)
    durable_commit()
    return tenant


def set_disabled(name: str, disabled: bool) -> Tenant:
    """Refuse (or accept again) every credential of the tenant; its data stays."""
    begin_write()
    tenant = find_tenant(name)
    if tenant.id == DEFAULT_TENANT_ID and disabled:
        raise TenantError("the default tenant cannot be disabled: revoke its tokens instead")
    tenant.disabled = (tenant.disabled or utcnow()) if disabled else None
    changed()  # every worker reads its credentials afresh
    durable_commit()
    return tenant


def delete_tenant(name: str) -> dict[str, int]:
    """The tenant and everything that is its, in one transaction; what was deleted, counted."""
    begin_write()
    tenant = find_tenant(name)
    if tenant.id == DEFAULT_TENANT_ID:
        raise TenantError("the default tenant always exists: delete its users and groups through the SCIM API")
    counts = {label: db.session.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant.id))
              for label, model in (("users", User), ("groups", Group), ("tokens", Token), ("audit rows", AuditEntry))}
    # Its users, groups, tokens and audit rows go with it, and their link and user_emails rows with them
    # (ON DELETE CASCADE, on either database): one statement.
    db.session.execute(delete(Tenant).where(Tenant.id == tenant.id))
    changed()
    durable_commit()
    return counts


def tenant_summaries() -> list[TenantSummary]:
    """Every tenant with its counts and its last request, in order of creation: one statement."""
    def counted(model):
        return (select(func.count()).select_from(model).where(model.tenant_id == Tenant.id)
                .correlate(Tenant).scalar_subquery())
    last = select(func.max(AuditEntry.at)).where(AuditEntry.tenant_id == Tenant.id).correlate(Tenant).scalar_subquery()
    rows = db.session.execute(select(Tenant.name, Tenant.created, Tenant.disabled, counted(User), counted(Group),
                                     counted(Token), last).order_by(Tenant.created, Tenant.id))
    return [TenantSummary(*row) for row in rows]


def tenant_names() -> dict[int, str]:
    return dict(db.session.execute(select(Tenant.id, Tenant.name)).all())
