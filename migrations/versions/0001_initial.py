"""users, groups, link and user_emails

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def resource_columns():
    """id, externalId and the facts behind meta, shared by users and groups."""
    return [
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    ]


def upgrade():
    op.create_table(
        "users",
        *resource_columns(),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("given_name", sa.String(length=255), nullable=True),
        sa.Column("family_name", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )
    # userName is unique regardless of case: enforced by the database, for every worker at once.
    op.create_index("uq_users_user_name_lower", "users", [sa.text("lower(user_name)")], unique=True)
    op.create_index("ix_users_display_name_lower", "users", [sa.text("lower(display_name)")])
    op.create_index("ix_users_external_id", "users", ["external_id"])
    op.create_index("ix_users_created_id", "users", ["created", "id"])

    op.create_table(
        "groups",
        *resource_columns(),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_groups"),
    )
    op.create_index("ix_groups_display_name_lower", "groups", [sa.text("lower(display_name)")])
    op.create_index("ix_groups_external_id", "groups", ["external_id"])
    op.create_index("ix_groups_created_id", "groups", ["created", "id"])

    op.create_table(
        "link",
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"], name="fk_link_group_id_groups", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_link_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_id", "user_id", name="pk_link"),
    )
    op.create_index("ix_link_user_id", "link", ["user_id"])

    op.create_table(
        "user_emails",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=True),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_emails_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_user_emails"),
    )
    op.create_index("ix_user_emails_user_id", "user_emails", ["user_id"])
    op.create_index("ix_user_emails_value_lower", "user_emails", [sa.text("lower(value)")])


def downgrade():
    op.drop_table("user_emails")
    op.drop_table("link")
    op.drop_table("groups")
    op.drop_table("users")
