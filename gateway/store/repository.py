"""Reads and writes of the store. Each function runs inside a transaction its caller opens.

Callers compose them so that a status change, its timeline event, its dedupe mark and the
outbox row for the next stage commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.status import IN_FLIGHT, MessageStatus, Stage, check_transition
from gateway.store.tables import handled, inbox, message_events, messages, outbox, receipts


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StaleStatus(Exception):
    """The message changed status under us (another worker got there first)."""


@dataclass(frozen=True)
class MessageRow:
    id: str
    kind: str
    status: MessageStatus
    generation: int
    sender_endpoint: str | None
    sender_message_id: str | None
    recipient_kommune: str | None
    recipient_her_id: int | None
    recipient_adapter: str | None
    patient_pseudonym: str | None
    content_type: str
    raw: bytes
    canonical: str | None
    reason: str | None
    received_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> MessageRow:
        data = dict(row._mapping)
        data["status"] = MessageStatus(data["status"])
        return cls(**data)


@dataclass(frozen=True)
class OutboxRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, str]] = ()


def _insert_ignore(conn: AsyncConnection, table: Any) -> Any:
    """INSERT that skips a row whose key exists, in the dialect at hand."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"no insert-ignore for {dialect}")


# --------------------------------------------------------------------------- messages


async def insert_message(
    conn: AsyncConnection,
    *,
    kind: str,
    status: MessageStatus,
    content_type: str,
    raw: bytes,
    actor: str,
    detail: str,
    sender_endpoint: str | None = None,
    sender_message_id: str | None = None,
    patient_pseudonym: str | None = None,
    reason: str | None = None,
    message_id: str | None = None,
) -> str:
    message_id = message_id or str(uuid.uuid4())
    at = now()
    await conn.execute(
        insert(messages).values(
            id=message_id,
            kind=kind,
            status=status.value,
            generation=0,
            sender_endpoint=sender_endpoint,
            sender_message_id=sender_message_id,
            patient_pseudonym=patient_pseudonym,
            content_type=content_type,
            raw=raw,
            reason=reason,
            received_at=at,
            updated_at=at,
        )
    )
    await add_event(conn, message_id, Stage.INGEST, status, detail, actor, at=at)
    return message_id


async def get_message(conn: AsyncConnection, message_id: str) -> MessageRow | None:
    row = (await conn.execute(select(messages).where(messages.c.id == message_id))).first()
    return MessageRow.from_row(row) if row else None


async def find_by_sender_ref(
    conn: AsyncConnection, sender_endpoint: str, sender_message_id: str
) -> MessageRow | None:
    row = (
        await conn.execute(
            select(messages).where(
                messages.c.sender_endpoint == sender_endpoint,
                messages.c.sender_message_id == sender_message_id,
            )
        )
    ).first()
    return MessageRow.from_row(row) if row else None


async def set_status(
    conn: AsyncConnection,
    message: MessageRow,
    new: MessageStatus,
    stage: Stage,
    detail: str,
    actor: str,
    **fields: Any,
) -> MessageRow:
    """Move a message to ``new`` (checked against the status machine) and record the event.

    The update is conditional on the status the caller read, so two workers racing on one
    message cannot both move it.
    """
    check_transition(message.status, new)
    at = now()
    result = await conn.execute(
        update(messages)
        .where(messages.c.id == message.id, messages.c.status == message.status.value)
        .values(status=new.value, updated_at=at, **fields)
    )
    if result.rowcount != 1:
        raise StaleStatus(message.id)
    await add_event(conn, message.id, stage, new, detail, actor, at=at)
    changed = {"status": new, "updated_at": at, **fields}
    return MessageRow(**{**message.__dict__, **changed})


async def add_event(
    conn: AsyncConnection,
    message_id: str,
    stage: Stage,
    status: MessageStatus | None,
    detail: str,
    actor: str,
    *,
    at: dt.datetime | None = None,
) -> None:
    await conn.execute(
        insert(message_events).values(
            message_id=message_id,
            at=at or now(),
            stage=stage.value,
            status=status.value if status else None,
            detail=detail,
            actor=actor,
        )
    )


async def events_of(conn: AsyncConnection, message_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(message_events)
        .where(message_events.c.message_id == message_id)
        .order_by(message_events.c.id)
    )
    return [dict(r._mapping) for r in rows]


async def in_flight(conn: AsyncConnection, limit: int, after_id: str = "") -> list[MessageRow]:
    rows = await conn.execute(
        select(messages)
        .where(messages.c.status.in_([s.value for s in IN_FLIGHT]), messages.c.id > after_id)
        .order_by(messages.c.id)
        .limit(limit)
    )
    return [MessageRow.from_row(r) for r in rows]


async def status_counts(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(messages.c.status, func.count()).group_by(messages.c.status))
    return {status: count for status, count in rows.tuples()}


# --------------------------------------------------------------------------- outbox, dedupe


async def add_outbox(conn: AsyncConnection, record: OutboxRecord) -> None:
    await conn.execute(
        insert(outbox).values(
            topic=record.topic,
            key=record.key,
            value=record.value,
            headers=orjson.dumps(list(record.headers)).decode(),
            created_at=now(),
        )
    )


async def pending_outbox(conn: AsyncConnection, limit: int) -> list[tuple[int, OutboxRecord]]:
    rows = await conn.execute(select(outbox).order_by(outbox.c.id).limit(limit))
    return [
        (
            r.id,
            OutboxRecord(r.topic, r.key, r.value, [tuple(h) for h in orjson.loads(r.headers)]),
        )
        for r in rows
    ]


async def delete_outbox(conn: AsyncConnection, ids: Sequence[int]) -> None:
    await conn.execute(delete(outbox).where(outbox.c.id.in_(ids)))


async def outbox_depth(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(outbox))).scalar_one())


async def claim(conn: AsyncConnection, consumer: str, ref: str) -> bool:
    """Mark ``ref`` handled by ``consumer``; False when it already was (a redelivery)."""
    result = await conn.execute(
        _insert_ignore(conn, handled).values(consumer=consumer, ref=ref, at=now())
    )
    return bool(result.rowcount == 1)


# --------------------------------------------------------------------------- KE inbox


async def put_in_inbox(conn: AsyncConnection, message_id: str, kommune_nr: str) -> bool:
    """Idempotent: a message is in an inbox at most once, however often it is delivered."""
    result = await conn.execute(
        _insert_ignore(conn, inbox).values(
            message_id=message_id, kommune_nr=kommune_nr, delivered_at=now()
        )
    )
    return bool(result.rowcount == 1)


async def open_inbox(
    conn: AsyncConnection, kommune_nr: str, limit: int
) -> list[tuple[MessageRow, dt.datetime]]:
    rows = await conn.execute(
        select(messages, inbox.c.delivered_at)
        .join(inbox, inbox.c.message_id == messages.c.id)
        .where(inbox.c.kommune_nr == kommune_nr, inbox.c.acked_at.is_(None))
        .order_by(inbox.c.delivered_at, inbox.c.message_id)
        .limit(limit)
    )
    out = []
    for r in rows:
        data = dict(r._mapping)
        delivered_at = data.pop("delivered_at")
        data["status"] = MessageStatus(data["status"])
        out.append((MessageRow(**data), delivered_at))
    return out


async def inbox_entry(
    conn: AsyncConnection, kommune_nr: str, message_id: str
) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(inbox).where(
                and_(inbox.c.kommune_nr == kommune_nr, inbox.c.message_id == message_id)
            )
        )
    ).first()
    return dict(row._mapping) if row else None


async def mark_acked(conn: AsyncConnection, message_id: str) -> None:
    await conn.execute(update(inbox).where(inbox.c.message_id == message_id).values(acked_at=now()))


async def inbox_depths(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(
        select(inbox.c.kommune_nr, func.count())
        .where(inbox.c.acked_at.is_(None))
        .group_by(inbox.c.kommune_nr)
    )
    return {k: n for k, n in rows.tuples()}


# --------------------------------------------------------------------------- receipts


async def save_receipt(
    conn: AsyncConnection, message_id: str, status: str, body: dict[str, Any]
) -> bool:
    result = await conn.execute(
        _insert_ignore(conn, receipts).values(
            message_id=message_id, status=status, body=orjson.dumps(body).decode(), created_at=now()
        )
    )
    return bool(result.rowcount == 1)


async def get_receipt(conn: AsyncConnection, message_id: str) -> dict[str, Any] | None:
    body = (
        await conn.execute(select(receipts.c.body).where(receipts.c.message_id == message_id))
    ).scalar_one_or_none()
    return orjson.loads(body) if body else None
