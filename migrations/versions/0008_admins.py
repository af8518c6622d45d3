"""admins: the console's accounts, and their login attempts; an audit row keeps its error's detail

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "admins",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("tenants", sa.JSON(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_admins"),
        sa.UniqueConstraint("email", name="uq_admins_email"),
    )
    op.create_table(
        "admin_logins",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_admin_logins"),
    )
    op.create_index("ix_admin_logins_email_at", "admin_logins", ["email", "at"])
    op.create_index("ix_admin_logins_client_ip_at", "admin_logins", ["client_ip", "at"])
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("detail", sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("detail")
    op.drop_index("ix_admin_logins_client_ip_at", table_name="admin_logins")
    op.drop_index("ix_admin_logins_email_at", table_name="admin_logins")
    op.drop_table("admin_logins")
    op.drop_table("admins")
