"""encryption at rest: person data sealed with AES-GCM (gateway/sealing.py)

Seals what earlier versions stored in clear: message bodies, canonical content, reasons and
timeline details, receipts, consents and the outbox's records. PostgreSQL's text columns
become bytea; SQLite keeps the declared types (see gateway/store/sealed.py) and stores the
sealed values as BLOBs, with ``secure_delete`` on so the clear text is overwritten, not left
in free pages.

Needs the key ring: ``Database.migrate`` hands it over in ``config.attributes["keyring"]``.
Runs in the migration's one transaction: on a large store, expect it to take a while (about
10 µs per value plus the store's own update cost).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from gateway.sealing import KeyRing

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: (table, primary key, column, holds text, nullable): frozen here, as a migration must be
SEALED = (
    ("messages", "id", "raw", False, False),
    ("messages", "id", "canonical", True, True),
    ("messages", "id", "reason", True, True),
    ("message_events", "id", "detail", True, True),
    ("receipts", "message_id", "body", True, False),
    ("consents", "id", "record", True, False),
    ("outbox", "id", "value", False, False),
)

PAGE = 1000


def _keyring() -> KeyRing:
    config = op.get_context().config
    keyring = config.attributes.get("keyring") if config is not None else None
    if not isinstance(keyring, KeyRing):
        raise RuntimeError("migration 0008 seals data: run it through Database.migrate")
    return keyring


def _rewrite(table: str, pk: str, column: str, change: Any) -> None:
    """``change(value) -> new value`` for every non-NULL value of ``table.column``, page by
    page in primary key order (memory stays bounded on a large store)."""
    bind = op.get_bind()
    t = sa.table(table, sa.column(pk), sa.column(column))
    update = (
        sa.update(t).where(t.c[pk] == sa.bindparam("_pk")).values({column: sa.bindparam("_value")})
    )
    after: Any = None
    while True:
        query = sa.select(t.c[pk], t.c[column]).where(t.c[column].is_not(None))
        if after is not None:
            query = query.where(t.c[pk] > after)
        rows = bind.execute(query.order_by(t.c[pk]).limit(PAGE)).all()
        if not rows:
            return
        bind.execute(update, [{"_pk": key, "_value": change(value)} for key, value in rows])
        after = rows[-1][0]


def _as_bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _secure_delete(on: int) -> int:
    """SQLite: set ``secure_delete`` on this connection; the setting it had."""
    if op.get_bind().dialect.name != "sqlite":
        return 0
    before = int(op.get_bind().exec_driver_sql("PRAGMA secure_delete").scalar() or 0)
    op.get_bind().exec_driver_sql(f"PRAGMA secure_delete={int(on)}")
    return before


def upgrade() -> None:
    keyring = _keyring()
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, _, column, text, nullable in SEALED:
        if text and postgres:
            op.alter_column(
                table,
                column,
                type_=sa.LargeBinary(),
                existing_type=sa.Text(),
                existing_nullable=nullable,
                postgresql_using=f"convert_to({column}, 'UTF8')",
            )
    before = _secure_delete(1)
    for table, pk, column, _, _ in SEALED:
        context = f"{table}.{column}".encode()
        _rewrite(table, pk, column, lambda v, c=context: keyring.seal(_as_bytes(v), context=c))
    _secure_delete(before)


def downgrade() -> None:
    keyring = _keyring()
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, pk, column, text, _ in SEALED:
        context = f"{table}.{column}".encode()

        def clear(value: Any, c: bytes = context, text: bool = text) -> Any:
            opened = keyring.open(_as_bytes(value), context=c)
            return opened.decode() if text and not postgres else opened

        _rewrite(table, pk, column, clear)
    for table, _, column, text, nullable in SEALED:
        if text and postgres:
            op.alter_column(
                table,
                column,
                type_=sa.Text(),
                existing_type=sa.LargeBinary(),
                existing_nullable=nullable,
                postgresql_using=f"convert_from({column}, 'UTF8')",
            )
