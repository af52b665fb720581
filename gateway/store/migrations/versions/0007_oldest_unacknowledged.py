"""a covering index for the oldest unacknowledged message per recipient (the console's overview
and the metrics scrape: the DELIVERED rows are read from the index alone) and for the messages
per status and kind (the metrics scrape: 1.7 s -> 0.46 s at a million messages)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 18:30:00
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.create_index(
            "ix_messages_status_recipient",
            ["status", "recipient_kommune", "recipient_her_id", "updated_at", "kind"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_status_recipient")
