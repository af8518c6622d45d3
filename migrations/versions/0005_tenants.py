"""tenants: every user, group, credential and audit row belongs to one; what exists moves to "default"

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DEFAULT_TENANT_ID = 1  # models.DEFAULT_TENANT_ID
OWNED = ("users", "groups", "tokens")  # a tenant_id required
# (name, table, columns) of the indexes that become per tenant: before, after (the tenant leads).
REKEYED = [
    ("uq_users_user_name_lower", "uq_users_tenant_id_user_name_lower", "users", ["lower(user_name)"], True),
    ("ix_users_display_name_lower", "ix_users_tenant_id_display_name_lower", "users", ["lower(display_name)"],
     False),
    ("ix_users_external_id", "ix_users_tenant_id_external_id", "users", ["external_id"], False),
    ("ix_users_created_id", "ix_users_tenant_id_created_id", "users", ["created", "id"], False),
    ("uq_groups_display_name_lower", "uq_groups_tenant_id_display_name_lower", "groups", ["lower(display_name)"],
     True),
    ("ix_groups_external_id", "ix_groups_tenant_id_external_id", "groups", ["external_id"], False),
    ("ix_groups_created_id", "ix_groups_tenant_id_created_id", "groups", ["created", "id"], False),
]


def _columns(names: list[str]) -> list:
    return [sa.text(name) if "(" in name else name for name in names]


def upgrade():
    tenants = op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.bulk_insert(tenants, [{"id": DEFAULT_TENANT_ID, "name": "default", "created": datetime.now(UTC)}])
    if op.get_bind().dialect.name == "postgresql":  # the next tenant made gets id 2
        op.execute("SELECT setval(pg_get_serial_sequence('tenants', 'id'), 1)")
    for old, _new, table, *_rest in REKEYED:
        op.drop_index(old, table_name=table)
    # Everything that exists belongs to the one customer the deployment served: the default tenant.
    for table in (*OWNED, "audit"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("tenant_id", sa.Integer(), nullable=table == "audit",
                                       server_default=None if table == "audit" else str(DEFAULT_TENANT_ID)))
            batch.create_foreign_key(f"fk_{table}_tenant_id_tenants", "tenants", ["tenant_id"], ["id"],
                                     ondelete="CASCADE")
        if table != "audit":
            with op.batch_alter_table(table) as batch:  # from now on every row names its tenant
                batch.alter_column("tenant_id", server_default=None, existing_type=sa.Integer(),
                                   existing_nullable=False)
    op.execute(f"UPDATE audit SET tenant_id = {DEFAULT_TENANT_ID}")
    for _old, new, table, columns, unique in REKEYED:
        op.create_index(new, table, ["tenant_id", *_columns(columns)], unique=unique)
    op.create_index("ix_audit_tenant_id_at", "audit", ["tenant_id", "at"])


def downgrade():
    # Only a deployment with one tenant can go back: names unique per tenant may collide once merged.
    others = op.get_bind().execute(sa.text(f"SELECT count(*) FROM tenants WHERE id <> {DEFAULT_TENANT_ID}"))
    if others.scalar():
        raise RuntimeError("delete every tenant but 'default' (manage.py tenants delete NAME) before this downgrade")
    op.drop_index("ix_audit_tenant_id_at", table_name="audit")
    for _old, new, table, *_rest in REKEYED:
        op.drop_index(new, table_name=table)
    for table in (*OWNED, "audit"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_tenant_id_tenants", type_="foreignkey")
            batch.drop_column("tenant_id")
    for old, _new, table, columns, unique in REKEYED:
        op.create_index(old, table, _columns(columns), unique=unique)
    op.drop_table("tenants")
