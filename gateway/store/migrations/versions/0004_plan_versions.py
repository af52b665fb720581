"""plan history: every plan version a message carried; the sender's HER-id on messages

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 15:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_plan_versions_plan", "plan_versions", ["plan_id", "version"], unique=False)
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("sender_her_id", sa.Integer(), nullable=True))
        batch.create_index("ix_messages_kind_sender", ["kind", "sender_her_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_kind_sender")
        batch.drop_column("sender_her_id")
    op.drop_index("ix_plan_versions_plan", table_name="plan_versions")
    op.drop_table("plan_versions")
