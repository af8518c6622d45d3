"""group members keep the display the client sent

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    # Existing members get NULL: their display stays derived from the user's name, as before.
    with op.batch_alter_table("link") as batch:
        batch.add_column(sa.Column("display", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("link") as batch:
        batch.drop_column("display")
