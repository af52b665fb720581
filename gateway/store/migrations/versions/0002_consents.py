"""consent registry: consents by person pseudonym

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("patient_pseudonym", sa.String(length=64), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_pseudonym", "consent_id", name="uq_consents_person_consent"),
    )
    op.create_index(
        "ix_consents_patient", "consents", ["patient_pseudonym", "recorded_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_consents_patient", table_name="consents")
    op.drop_table("consents")
