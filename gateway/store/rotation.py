"""Key rotation: which key seals what (``ipgw keys status``), and re-sealing every value that
is not under the current key (``ipgw keys rotate``).

Runs beside a running gateway: each page of values is its own short transaction (on SQLite a
few milliseconds of the one writer's time), and each value is replaced only if it is still
the one that was read, so a gateway that changed it meanwhile (under the current key) wins.
Restartable: a second run finds only what the first did not do.

Works on the stored bytes, not through the sealed column types: it must see which key a
value is under, and must not open values it does not need to.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.sealing import MAX_HEADER, KeyRing, SealBroken, header_of
from gateway.store.database import Database
from gateway.store.sealed import Sealed, SealedText
from gateway.store.tables import metadata

#: what ``keys status`` counts a value as when it is not sealed at all (stored before 0008
#: by a store that was not migrated, or written around the store)
NOT_SEALED = "(not sealed)"


@dataclass(frozen=True)
class SealedColumn:
    table: str
    pk: str
    column: str

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    @property
    def context(self) -> bytes:
        return self.name.encode()

    def light(self) -> Any:
        """The table with only these two columns, untyped: the stored bytes as they are."""
        return sa.table(self.table, sa.column(self.pk), sa.column(self.column))


def sealed_columns() -> list[SealedColumn]:
    """Every sealed column of the schema, found from the table definitions."""
    out = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, Sealed | SealedText):
                (pk,) = table.primary_key.columns
                assert column.type.context == f"{table.name}.{column.name}", column.type.context
                out.append(SealedColumn(table.name, pk.name, column.name))
    return out


# --------------------------------------------------------------------------- status


async def key_status(db: Database, *, page: int = 5000) -> dict[str, Counter[str]]:
    """Values per key id, for each sealed column (nothing is decrypted)."""
    out: dict[str, Counter[str]] = {}
    for col in sealed_columns():
        counts: Counter[str] = Counter()
        after: Any = None
        while True:
            after, more = await db.read(_status_page, col, after, page, counts)
            if not more:
                break
        out[col.name] = counts
    return out


def _status_page(
    conn: Connection, col: SealedColumn, after: Any, page: int, counts: Counter[str]
) -> tuple[Any, bool]:
    t = col.light()
    query = sa.select(t.c[col.pk], sa.func.substr(t.c[col.column], 1, MAX_HEADER)).where(
        t.c[col.column].is_not(None)
    )
    if after is not None:
        query = query.where(t.c[col.pk] > after)
    rows = conn.execute(query.order_by(t.c[col.pk]).limit(page)).all()
    for _, head in rows:
        try:
            counts[header_of(head).key_id if isinstance(head, bytes) else NOT_SEALED] += 1
        except SealBroken:
            counts[NOT_SEALED] += 1
    return (rows[-1][0] if rows else after), len(rows) == page


# --------------------------------------------------------------------------- rotation


@dataclass
class Rotated:
    """What a rotation did to one column."""

    resealed: int = 0
    #: changed by the gateway between our read and our write: already under the current key
    skipped: int = 0
    #: values that do not open (unknown key, altered, not sealed): their primary keys, so an
    #: operator can look at them (ids, never content)
    unreadable: list[str] = field(default_factory=list)


async def rotate(
    db: Database,
    *,
    batch: int = 500,
    pause: float = 0.0,
    progress: Callable[[str, Rotated], None] | None = None,
) -> dict[str, Rotated]:
    """Re-seal under the current key every value sealed under another, ``batch`` values per
    transaction, sleeping ``pause`` seconds between transactions."""
    out: dict[str, Rotated] = {}
    for col in sealed_columns():
        done = out[col.name] = Rotated()
        after: Any = None
        while True:
            after, more = await db.write(_rotate_page, col, db.keyring, after, batch, done)
            if progress:
                progress(col.name, done)
            if not more:
                break
            if pause:
                await asyncio.sleep(pause)
    await db.checkpoint()
    return out


def _rotate_page(
    conn: Connection, col: SealedColumn, keyring: KeyRing, after: Any, batch: int, done: Rotated
) -> tuple[Any, bool]:
    t = col.light()
    prefix = sa.bindparam("prefix", keyring.current_prefix, type_=sa.LargeBinary)
    query = sa.select(t.c[col.pk], t.c[col.column]).where(
        t.c[col.column].is_not(None),
        sa.func.substr(t.c[col.column], 1, len(keyring.current_prefix)) != prefix,
    )
    if after is not None:
        query = query.where(t.c[col.pk] > after)
    rows = conn.execute(query.order_by(t.c[col.pk]).limit(batch)).all()
    updates = []
    for key, value in rows:
        if not isinstance(value, bytes):  # text in clear: not ours to seal here (0008 does)
            done.unreadable.append(str(key))
            continue
        try:
            plain = keyring.open(value, context=col.context)
        except SealBroken:
            done.unreadable.append(str(key))
            continue
        updates.append((key, value, keyring.seal(plain, context=col.context)))
    # one statement per value, compare-and-set on the value read: its row count says whether
    # the gateway changed the value meanwhile
    swap = (
        sa.update(t)
        .where(
            t.c[col.pk] == sa.bindparam("_pk"),
            t.c[col.column] == sa.bindparam("_old", type_=sa.LargeBinary),
        )
        .values({col.column: sa.bindparam("_new", type_=sa.LargeBinary)})
    )
    for key, old, new in updates:
        result = conn.execute(swap, {"_pk": key, "_old": old, "_new": new})
        if result.rowcount == 1:
            done.resealed += 1
        else:
            done.skipped += 1
    return (rows[-1][0] if rows else after), len(rows) == batch
