"""events: every change's events, written with it; credentials get a scope (the SCIM API or the event feed)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tokens") as batch:  # every credential so far is an IdP's
        batch.add_column(sa.Column("scope", sa.String(length=10), nullable=False, server_default="scim"))
    with op.batch_alter_table("tokens") as batch:
        batch.alter_column("scope", server_default=None, existing_type=sa.String(length=10), existing_nullable=False)
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("occurred", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resource_type", sa.String(length=20), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_events_tenant_id_tenants", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("event_id", name="uq_events_event_id"),
    )
    op.create_index("ix_events_occurred", "events", ["occurred"])
    op.create_index("ix_events_tenant_id_txid_id", "events", ["tenant_id", "txid", "id"])


def downgrade():
    op.drop_index("ix_events_tenant_id_txid_id", table_name="events")
    op.drop_index("ix_events_occurred", table_name="events")
    op.drop_table("events")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("scope")
