"""The console's accounts (`manage.py admins ...`): a password kept as a salted scrypt hash, the tenants an
admin may see, and the login throttle. No Flask request here: plain arguments in."""

import functools
from datetime import timedelta

from sqlalchemy import delete, func, or_, select
from werkzeug.security import check_password_hash, generate_password_hash

from models import Admin, AdminLogin, Tenant, begin_write, db, durable_commit, utcnow

MIN_PASSWORD_LENGTH = 12
THROTTLE_WINDOW = timedelta(minutes=15)


@functools.cache
def unknown_hash() -> str:
    """A hash to check a password against when the email names no admin: the answer takes as long either way."""
    return generate_password_hash("no admin has this password")


class AccountError(ValueError):
    """An account command that cannot be done as asked."""


def normal(email: str) -> str:
    return email.strip().lower()


def create_admin(email: str, password: str, tenant_names: list[str] | None = None) -> Admin:
    email = normal(email)
    if "@" not in email or len(email) > 254:
        raise AccountError(f"{email!r} is not an email address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    begin_write()
    if db.session.scalar(select(Admin.id).where(Admin.email == email)) is not None:
        raise AccountError(f"an admin {email!r} exists already")
    tenants = None
    if tenant_names:
        found = dict(db.session.execute(select(Tenant.name, Tenant.id).where(Tenant.name.in_(tenant_names))).all())
        missing = sorted(set(tenant_names) - set(found))
        if missing:
            raise AccountError(f"no tenant {', '.join(missing)}")
        tenants = sorted(found.values())
    admin = Admin(email=email, password_hash=generate_password_hash(password), tenants=tenants)
    db.session.add(admin)
    durable_commit()
    return admin


def all_admins() -> list[Admin]:
    return list(db.session.scalars(select(Admin).order_by(Admin.email)))


def remove_admin(email: str) -> bool:
    begin_write()
    admin = db.session.scalar(select(Admin).where(Admin.email == normal(email)))
    if admin is None:
        return False
    db.session.delete(admin)
    durable_commit()
    return True


def throttled(email: str, client_ip: str | None, limit: int) -> bool:
    """Too many failed logins lately for this email, or from this address."""
    if limit <= 0:
        return False
    since = utcnow() - THROTTLE_WINDOW
    failures = db.session.scalar(select(func.count()).select_from(AdminLogin).where(
        AdminLogin.ok.is_(False), AdminLogin.at >= since,
        or_(AdminLogin.email == normal(email), AdminLogin.client_ip == client_ip)))
    return failures >= limit


def log_in(email: str, password: str, client_ip: str | None, keep_days: int) -> Admin | None:
    """The admin these credentials are, or None; either way the attempt is recorded, and attempts older than
    `keep_days` (the audit trail's retention; 0: forever) are deleted."""
    begin_write()
    admin = db.session.scalar(select(Admin).where(Admin.email == normal(email)))
    ok = check_password_hash(admin.password_hash if admin else unknown_hash(), password) and admin is not None
    if keep_days > 0:
        db.session.execute(delete(AdminLogin).where(AdminLogin.at < utcnow() - timedelta(days=keep_days)))
    db.session.add(AdminLogin(email=normal(email)[:254], client_ip=client_ip, ok=ok))
    if ok:
        admin.last_login = utcnow()
    durable_commit()
    return admin if ok else None


def log_out(admin_id: int) -> None:
    """Every session of this admin ends (their cookies name an older epoch)."""
    begin_write()
    admin = db.session.get(Admin, admin_id)
    if admin is not None:
        admin.session_epoch += 1
    durable_commit()


def visible_tenants(admin: Admin) -> list[Tenant]:
    query = select(Tenant).order_by(Tenant.id)
    if admin.tenants is not None:
        query = query.where(Tenant.id.in_(admin.tenants))
    return list(db.session.scalars(query))
