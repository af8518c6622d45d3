"""group displayName unique regardless of case

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    # Microsoft Entra ID requires group names to be unique; Okta links pushed groups by name.
    op.drop_index("ix_groups_display_name_lower", table_name="groups")
    op.create_index("uq_groups_display_name_lower", "groups", [sa.text("lower(display_name)")], unique=True)


def downgrade():
    op.drop_index("uq_groups_display_name_lower", table_name="groups")
    op.create_index("ix_groups_display_name_lower", "groups", [sa.text("lower(display_name)")])
