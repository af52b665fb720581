"""plan parties: a plan message handed to each party of the plan as a child message

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 17:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(length=36), nullable=True))
        batch.create_index("ix_messages_parent", ["parent_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_parent")
        batch.drop_column("parent_id")
