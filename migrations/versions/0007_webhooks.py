"""webhooks: destinations of a tenant's events, and one delivery row per event and destination

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# PostgreSQL: the delivery workers LISTEN on this channel; every statement that writes events wakes them.
NOTIFY = """
CREATE FUNCTION scim_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('scim_events', '');
  RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION scim_events_notify();
"""


def upgrade():
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=True),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("after_txid", sa.BigInteger(), nullable=False),
        sa.Column("after_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_webhooks_tenant_id_tenants",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("event_id", ROW_ID, nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("delivered", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name="fk_deliveries_event_id_events", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhooks.id"], name="fk_deliveries_webhook_id_webhooks",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
    )
    op.create_index("ix_deliveries_state_next_attempt", "deliveries", ["state", "next_attempt"])
    op.create_index("ix_deliveries_webhook_id_resource_id_id", "deliveries", ["webhook_id", "resource_id", "id"])
    op.create_index("ix_deliveries_event_id", "deliveries", ["event_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER events_notify ON events")
        op.execute("DROP FUNCTION scim_events_notify()")
    op.drop_index("ix_deliveries_event_id", table_name="deliveries")
    op.drop_index("ix_deliveries_webhook_id_resource_id_id", table_name="deliveries")
    op.drop_index("ix_deliveries_state_next_attempt", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("webhooks")
