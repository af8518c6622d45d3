"""Seeding: users, groups and memberships written straight through the app's data layer, fast.

The rows are those scim.writes and scim.store.write_group would write: each user's Okta-shaped body goes
through the app's own normalize_resource, then password and active are taken out of `data` exactly as
scim.writes does; users, user_emails, groups and link rows are inserted with SQLAlchemy Core in batches,
inside create_app()'s app context. Users are deterministic: user i always has the same id and userName.
"""

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select, text

from models import DEFAULT_TENANT_ID, Group, Link, Tenant, User, UserEmail, db
from scenarios import GROUP_SCHEMA, okta_user_body
from scim.schema import GROUP, USER, normalize_resource

BATCH = 5000
GIVEN = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis",
         "Radia", "Tim", "Shafi", "Leslie", "Sophie", "Niklaus", "Katherine", "John", "Hedy", "Guido"]
FAMILY = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
          "Ritchie", "Perlman", "Berners-Lee", "Goldwasser", "Lamport", "Wilson", "Wirth", "Johnson",
          "McCarthy", "Lamarr", "Rossum"]
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def user_id(i: int) -> str:
    return str(uuid.UUID(int=random.Random(i).getrandbits(128), version=4))


def user_name(i: int) -> str:
    return f"{GIVEN[i % 20]}.{FAMILY[i // 20 % 20]}{i}@example.com"


def user_body(i: int) -> dict:
    """User i as Okta would POST it (without a password: Okta sends one only with password sync on)."""
    return okta_user_body(user_name(i), GIVEN[i % 20], FAMILY[i // 20 % 20], f"00u{i:017x}")


def stored_user(i: int) -> tuple[dict, bool]:
    """(data, active) as scim.writes stores them: normalized, password and active taken out."""
    data = normalize_resource(USER, user_body(i))
    data.pop("password", None)
    return data, data.pop("active", True)


def user_rows(i: int, tenant_id: int = DEFAULT_TENANT_ID) -> tuple[dict, list[dict]]:
    data, active = stored_user(i)
    name = data.get("name", {})
    at = EPOCH + timedelta(milliseconds=i)  # creation order = index order, as page order is (created, id)
    row = {
        "id": user_id(i), "tenant_id": tenant_id, "external_id": data.get("externalId"), "created": at,
        "last_modified": at,
        "version": 1, "data": data, "user_name": data["userName"], "display_name": data.get("displayName"),
        "given_name": name.get("givenName"), "family_name": name.get("familyName"), "active": active,
        "password_hash": None,
    }
    emails = [{"user_id": row["id"], "value": e.get("value"), "type": e.get("type"),
               "is_primary": bool(e.get("primary"))} for e in data.get("emails", [])]
    return row, emails


def seed_users(plan: "GroupPlan", start: int, stop: int) -> None:
    """Users start..stop-1 with their emails, each in its tenant, committed in batches."""
    for low in range(start, stop, BATCH):
        users, emails = [], []
        for i in range(low, min(stop, low + BATCH)):
            row, rows = user_rows(i, plan.tenant_ids[plan.tenant_of(i)])
            users.append(row)
            emails.extend(rows)
        db.session.execute(insert(User.__table__), users)
        db.session.execute(insert(UserEmail.__table__), emails)
        db.session.commit()


@dataclass
class GroupPlan:
    """The tenants and the groups the scenarios use.

    Tenants: a band of `big` users in the middle of the set (the special groups' members) and every N-th
    of the others are the default tenant's (index 0), so that the group scenarios find their members and
    the users they add in one tenant; the others are dealt round the N tenants (user i in tenant i % N).
    With one tenant everyone is the default tenant's, as before tenants existed.

    Groups: each tenant has M / N ordinary groups (group k is tenant k % N's), and each user belongs to one
    of its tenant's; the special groups are the default tenant's and take their members from the band, so
    that the users outside it each belong to exactly one group. The band sits in the middle so that a first
    page and a page deep in the set hold users of the same shape (one group each, the band's users four or
    five), and past the first tenth (the lookups at 10,000 users)."""
    users: int
    ordinary: int  # M, a multiple of N
    mid: int  # members of the "5,000" group
    big: int  # members of the "10,000" groups
    batch: int  # members one PATCH adds or removes
    tenants: int = 1  # N
    tenant_ids: list = field(default_factory=lambda: [DEFAULT_TENANT_ID])  # index -> tenants.id (seed_tenants)

    @property
    def band(self) -> range:
        start = (self.users - self.big) // 2
        return range(start, start + self.big)

    def tenant_of(self, i: int) -> int:
        return 0 if i in self.band else i % self.tenants

    def ordinary_group(self, i: int) -> int:
        return self.tenant_of(i) + self.tenants * (i // self.tenants % (self.ordinary // self.tenants))

    def tenant_sizes(self) -> list[int]:
        sizes = [0] * self.tenants
        for i in range(self.users):
            sizes[self.tenant_of(i)] += 1
        return sizes

    def special(self) -> dict[str, range]:
        band = self.band
        return {"get-5000": band[:self.mid], "get-10000": band,
                "okta-empty": range(0), "okta-10000": band,
                "entra-empty": range(0), "entra-10000": band}

    def one_group_users(self) -> list[int]:
        band = self.band
        return [*range(band.start), *range(band.stop, self.users)]


def group_row(index: int, name: str, tenant_id: int = DEFAULT_TENANT_ID) -> dict:
    data = normalize_resource(GROUP, {"schemas": [GROUP_SCHEMA], "displayName": name, "members": []})
    data.pop("members", None)  # as write_group: membership lives in the link table
    at = EPOCH + timedelta(seconds=index)
    return {"id": group_id(index), "tenant_id": tenant_id, "external_id": None, "created": at,
            "last_modified": at, "version": 1,
            "data": data, "display_name": name}


def group_id(index: int) -> str:
    return str(uuid.UUID(int=random.Random(f"group-{index}").getrandbits(128), version=4))


def seed_tenants(plan: GroupPlan) -> None:
    """Tenants 1..N-1 (index 0 is the default tenant, which always exists); their ids into the plan."""
    plan.tenant_ids = [DEFAULT_TENANT_ID]
    for index in range(1, plan.tenants):
        tenant = Tenant(name=f"bench-tenant-{index}")
        db.session.add(tenant)
        db.session.flush()
        plan.tenant_ids.append(tenant.id)
    db.session.commit()


def seed_ordinary_groups(plan: GroupPlan) -> None:
    db.session.execute(insert(Group.__table__), [
        group_row(k, f"Bench Group {k:04d}", plan.tenant_ids[k % plan.tenants]) for k in range(plan.ordinary)])
    db.session.commit()


def link_ordinary(plan: GroupPlan, start: int, stop: int) -> None:
    """Users start..stop-1 into their ordinary group."""
    if plan.ordinary:
        insert_batched(Link.__table__, ({"group_id": group_id(plan.ordinary_group(i)), "user_id": user_id(i)}
                                        for i in range(start, stop)))
    db.session.commit()


def seed_special_groups(plan: GroupPlan) -> dict[str, str]:
    """The 5,000- and 10,000-member groups and the PATCH targets; returns role -> group id."""
    special = plan.special()
    rows = [group_row(plan.ordinary + k, f"bench-{role}") for k, role in enumerate(special)]
    db.session.execute(insert(Group.__table__), rows)
    ids = {role: row["id"] for role, row in zip(special, rows, strict=True)}
    for role, members in special.items():
        insert_batched(Link.__table__, ({"group_id": ids[role], "user_id": user_id(i)} for i in members))
    db.session.commit()
    return ids


def insert_batched(table, rows) -> None:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            db.session.execute(insert(table), batch)
            batch = []
    if batch:
        db.session.execute(insert(table), batch)


def delete_users_named(prefix: str) -> int:
    """Users whose userName starts with `prefix` (what the POST scenarios created); their emails and
    memberships go with them (ON DELETE CASCADE)."""
    deleted = db.session.execute(delete(User).where(User.user_name.startswith(prefix, autoescape=True))).rowcount
    db.session.commit()
    return deleted


def vacuum_analyze() -> None:
    """Fresh planner statistics and visibility map, as a database some hours old would have."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("users", "user_emails", "groups", "link"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))


def counts() -> dict:
    return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (User, UserEmail, Group, Link)}
