"""operator console: the audit log of looks at person data and operator actions; indexes for
the overview's last hour and day

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_index("ix_message_events_at", "message_events", ["at"], unique=False)
    op.create_index("ix_delivery_attempts_at", "delivery_attempts", ["at"], unique=False)
    with op.batch_alter_table("messages") as batch:
        batch.create_index("ix_messages_sender_ref", ["sender_message_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_sender_ref")
    op.drop_index("ix_delivery_attempts_at", table_name="delivery_attempts")
    op.drop_index("ix_message_events_at", table_name="message_events")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
