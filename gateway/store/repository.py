"""Reads and writes of the store. Each function runs inside a transaction its caller opens
(``db.write(fn)`` / ``db.read(fn)``), on a store thread.

Callers compose them so that a status change, its timeline event, its dedupe mark and the
outbox row for the next stage commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway import metrics
from gateway.domain.consent import ConsentRecord
from gateway.domain.receipt import Receipt
from gateway.domain.status import IN_FLIGHT, MessageStatus, Stage, check_transition
from gateway.sealing import SealBroken
from gateway.store import audit_chain
from gateway.store.tables import (
    audit_log,
    consents,
    delivery_attempts,
    handled,
    inbox,
    message_events,
    messages,
    outbox,
    plan_versions,
    receipts,
)


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
    canonical: str | None
    reason: str | None
    received_at: dt.datetime
    updated_at: dt.datetime
    attempts: int = 0
    failures: int = 0
    resends: int = 0
    next_attempt_at: dt.datetime | None = None
    sender_her_id: int | None = None
    parent_id: str | None = None

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


#: every column but the raw body: rows are read often, the body only to validate it
_ROW = [c for c in messages.c if c.name != "raw"]

log = logging.getLogger(__name__)


def _each_that_opens(conn: Connection, query: Any, key: Any = messages.c.id) -> list[Any]:
    """The rows of a query over several messages (or outbox records: ``key``), without those
    whose sealed content does not open (altered, or under a key no longer configured): one
    such row must not stop a KE's inbox, the recovery sweep or the outbox relay for every
    other. Each one left out is logged by id (once per process); reading a message alone
    (:func:`get_message`) raises :class:`~gateway.sealing.SealBroken`.

    Only for lists where leaving a row out is safe: where a decision needs every row (a
    person's consents, a plan's parties), the reader stays strict and fails loudly instead.
    """
    try:
        return list(conn.execute(query).all())
    except SealBroken:
        pass
    keys = conn.execute(query.with_only_columns(key, maintain_column_froms=True))
    out = []
    for value in keys.scalars().all():
        try:
            out.append(conn.execute(query.where(key == value)).one())
        except SealBroken as e:
            if (key.table.name, value) not in _unreadable:
                _unreadable.add((key.table.name, value))
                log.error(
                    "%s %s left out: its stored content does not open (%s)",
                    key.table.name,
                    value,
                    e,
                )
    return out


#: rows already reported as not opening: each is logged once, not at every poll
_unreadable: set[tuple[str, Any]] = set()


# Built once: executing a prebuilt statement with parameters reuses its compiled form.
_INSERT_MESSAGE = insert(messages)
_INSERT_EVENT = insert(message_events)
_INSERT_OUTBOX = insert(outbox)


def _insert_ignore(conn: Connection, table: Any) -> Any:
    """INSERT that skips a row whose key exists, in the dialect at hand."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"no insert-ignore for {dialect}")


# --------------------------------------------------------------------------- messages


def insert_message(
    conn: Connection,
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
    conn.execute(
        _INSERT_MESSAGE,
        {
            "id": message_id,
            "kind": kind,
            "status": status.value,
            "generation": 0,
            "sender_endpoint": sender_endpoint,
            "sender_message_id": sender_message_id,
            "patient_pseudonym": patient_pseudonym,
            "content_type": content_type,
            "raw": raw,
            "reason": reason,
            "received_at": at,
            "updated_at": at,
        },
    )
    add_event(conn, message_id, Stage.INGEST, status, detail, actor, at=at)
    return message_id


#: the content type of a message the gateway made itself: its canonical JSON is all it has
_CANONICAL_ONLY = "application/json"


def insert_child(
    conn: Connection,
    parent: MessageRow,
    *,
    canonical: str,
    recipient_her_id: int,
    detail: str,
    actor: str,
    kind: str | None = None,
    message_id: str | None = None,
) -> MessageRow:
    """A message the gateway makes from ``parent`` for one unit (a party's copy of a plan, a
    status message about it), born VALIDATED.

    It has no body of its own (``raw`` is empty) and no sender reference: the sender's
    reference stays on the parent, which answers the sender.
    """
    message_id = message_id or str(uuid.uuid4())
    kind = kind or parent.kind
    at = now()
    row = {
        "id": message_id,
        "kind": kind,
        "status": MessageStatus.VALIDATED.value,
        "generation": 0,
        "patient_pseudonym": parent.patient_pseudonym,
        "content_type": _CANONICAL_ONLY,
        "raw": b"",
        "canonical": canonical,
        "recipient_her_id": recipient_her_id,
        "parent_id": parent.id,
        "received_at": at,
        "updated_at": at,
    }
    conn.execute(_INSERT_MESSAGE, row)
    add_event(conn, message_id, Stage.ROUTE, MessageStatus.VALIDATED, detail, actor, at=at)
    return MessageRow(
        id=message_id,
        kind=kind,
        status=MessageStatus.VALIDATED,
        generation=0,
        sender_endpoint=None,
        sender_message_id=None,
        recipient_kommune=None,
        recipient_her_id=recipient_her_id,
        recipient_adapter=None,
        patient_pseudonym=parent.patient_pseudonym,
        content_type=_CANONICAL_ONLY,
        canonical=canonical,
        reason=None,
        received_at=at,
        updated_at=at,
        parent_id=parent.id,
    )


def children_of(conn: Connection, parent_id: str) -> list[MessageRow]:
    rows = conn.execute(
        select(*_ROW).where(messages.c.parent_id == parent_id).order_by(messages.c.received_at)
    )
    return [MessageRow.from_row(r) for r in rows]


def get_message(conn: Connection, message_id: str) -> MessageRow | None:
    row = conn.execute(select(*_ROW).where(messages.c.id == message_id)).first()
    return MessageRow.from_row(row) if row else None


def get_messages(conn: Connection, ids: Sequence[str]) -> dict[str, MessageRow]:
    rows = conn.execute(select(*_ROW).where(messages.c.id.in_(ids)))
    return {r.id: MessageRow.from_row(r) for r in rows}


def get_raws(conn: Connection, ids: Sequence[str]) -> dict[str, bytes]:
    rows = conn.execute(select(messages.c.id, messages.c.raw).where(messages.c.id.in_(ids)))
    return {r.id: bytes(r.raw) for r in rows}


def get_raw(conn: Connection, message_id: str) -> bytes | None:
    """The body exactly as received."""
    raw = conn.execute(select(messages.c.raw).where(messages.c.id == message_id)).scalar()
    return bytes(raw) if raw is not None else None


def find_by_sender_ref(
    conn: Connection, sender_endpoint: str, sender_message_id: str
) -> MessageRow | None:
    row = (
        conn.execute(
            select(*_ROW).where(
                messages.c.sender_endpoint == sender_endpoint,
                messages.c.sender_message_id == sender_message_id,
            )
        )
    ).first()
    return MessageRow.from_row(row) if row else None


def set_status(
    conn: Connection,
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
    result = conn.execute(
        update(messages)
        .where(messages.c.id == message.id, messages.c.status == message.status.value)
        .values(status=new.value, updated_at=at, **fields)
    )
    if result.rowcount != 1:
        raise StaleStatus(message.id)
    add_event(conn, message.id, stage, new, detail, actor, at=at)
    changed = {"status": new, "updated_at": at, **fields}
    after = MessageRow(**{**message.__dict__, **changed})
    metrics.status_changed(
        stage,
        new,
        message.kind,
        received_at=message.received_at,
        at=at,
        kommune=after.recipient_kommune,
    )
    return after


def update_in_status(
    conn: Connection,
    message: MessageRow,
    stage: Stage,
    detail: str,
    actor: str,
    **fields: Any,
) -> MessageRow:
    """Change a message's fields (and record why) while it stays in its status, e.g. a
    RETRYING message moving on to its next retry tier; conditional like :func:`set_status`."""
    at = now()
    result = conn.execute(
        update(messages)
        .where(messages.c.id == message.id, messages.c.status == message.status.value)
        .values(updated_at=at, **fields)
    )
    if result.rowcount != 1:
        raise StaleStatus(message.id)
    add_event(conn, message.id, stage, None, detail, actor, at=at)
    return MessageRow(**{**message.__dict__, "updated_at": at, **fields})


def add_event(
    conn: Connection,
    message_id: str,
    stage: Stage,
    status: MessageStatus | None,
    detail: str,
    actor: str,
    *,
    at: dt.datetime | None = None,
) -> None:
    conn.execute(
        _INSERT_EVENT,
        {
            "message_id": message_id,
            "at": at or now(),
            "stage": stage.value,
            "status": status.value if status else None,
            "detail": detail,
            "actor": actor,
        },
    )


def received_by(conn: Connection, message_id: str) -> str | None:
    """Who sent a message in: the actor of its first timeline event (ingest's ``received``)."""
    return conn.execute(
        select(message_events.c.actor)
        .where(message_events.c.message_id == message_id)
        .order_by(message_events.c.id)
        .limit(1)
    ).scalar_one_or_none()


def events_of(conn: Connection, message_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(message_events)
        .where(message_events.c.message_id == message_id)
        .order_by(message_events.c.id)
    )
    return [dict(r._mapping) for r in rows]


def in_flight(conn: Connection, limit: int, after_id: str = "") -> list[MessageRow]:
    rows = _each_that_opens(
        conn,
        select(*_ROW)
        .where(messages.c.status.in_([s.value for s in IN_FLIGHT]), messages.c.id > after_id)
        .order_by(messages.c.id)
        .limit(limit),
    )
    return [MessageRow.from_row(r) for r in rows]


def status_kind_counts(conn: Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        select(messages.c.status, messages.c.kind, func.count()).group_by(
            messages.c.status, messages.c.kind
        )
    )
    return {(status, kind): n for status, kind, n in rows}


def oldest_unacknowledged(conn: Connection) -> dict[str, dt.datetime]:
    """When each recipient's oldest DELIVERED (not yet acknowledged) message got there (its
    last change: a resend starts the wait anew), by kommune number, or ``her:<HER-id>`` for a
    unit without one. A plan update handed to its parties has no recipient and is left out:
    its parties' copies are counted."""
    oldest: dict[str, dt.datetime] = {}
    for (kommune, her_id), at in _oldest_delivered(conn).items():
        if kommune is None and her_id is None:
            continue
        key = kommune or f"her:{her_id}"
        oldest[key] = min(at, oldest.get(key, at))
    return oldest


def _oldest_delivered(conn: Connection) -> dict[tuple[str | None, int | None], dt.datetime]:
    rows = conn.execute(
        select(
            messages.c.recipient_kommune,
            messages.c.recipient_her_id,
            func.min(messages.c.updated_at),
        )
        .where(messages.c.status == MessageStatus.DELIVERED.value)
        .group_by(messages.c.recipient_kommune, messages.c.recipient_her_id)
    )
    return {(k, h): at for k, h, at in rows if at is not None}


def oldest_outbox(conn: Connection) -> dt.datetime | None:
    return conn.execute(select(func.min(outbox.c.created_at))).scalar()


def status_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(messages.c.status, func.count()).group_by(messages.c.status))
    return {status: count for status, count in rows}


# --------------------------------------------------------------------------- delivery attempts


@dataclass(frozen=True)
class AttemptRecord:
    message_id: str
    generation: int
    attempt: int
    adapter: str
    outcome: str
    duration_ms: int
    cause: str | None = None
    code: str | None = None
    detail: str | None = None
    remote_ref: str | None = None


_INSERT_ATTEMPT = insert(delivery_attempts)


def add_attempt(conn: Connection, record: AttemptRecord) -> None:
    conn.execute(_INSERT_ATTEMPT, {**record.__dict__, "at": now()})


def attempts_of(conn: Connection, message_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(delivery_attempts)
        .where(delivery_attempts.c.message_id == message_id)
        .order_by(delivery_attempts.c.id)
    )
    return [dict(r._mapping) for r in rows]


# --------------------------------------------------------------------------- plan history


def transfers_of(
    conn: Connection, kommune_nr: str, her_id: int, limit: int
) -> tuple[list[MessageRow], list[MessageRow]]:
    """Plan transfers to a kommune (incoming) and from its KE (outgoing), newest first."""

    def query(condition: Any) -> list[MessageRow]:
        rows = _each_that_opens(
            conn,
            select(*_ROW)
            .where(messages.c.kind == "plan-transfer", condition)
            .order_by(messages.c.received_at.desc())
            .limit(limit),
        )
        return [MessageRow.from_row(r) for r in rows]

    return (
        query(messages.c.recipient_kommune == kommune_nr),
        query(messages.c.sender_her_id == her_id),
    )


def plan_versions_of(conn: Connection, plan_id: str) -> list[tuple[int, str]]:
    """(version, version id) of every version of the plan a message carried."""
    rows = conn.execute(
        select(plan_versions.c.version, plan_versions.c.version_id).where(
            plan_versions.c.plan_id == plan_id
        )
    )
    return [(r.version, r.version_id) for r in rows]


def add_plan_version(
    conn: Connection, plan_id: str, version: int, version_id: str, message_id: str
) -> None:
    conn.execute(
        insert(plan_versions).values(
            plan_id=plan_id,
            version=version,
            version_id=version_id,
            message_id=message_id,
            recorded_at=now(),
        )
    )


# --------------------------------------------------------------------------- outbox, dedupe


def add_outbox(conn: Connection, record: OutboxRecord) -> None:
    conn.execute(
        _INSERT_OUTBOX,
        {
            "topic": record.topic,
            "key": record.key,
            "value": record.value,
            "headers": orjson.dumps(list(record.headers)).decode(),
            "created_at": now(),
        },
    )


def pending_outbox(conn: Connection, limit: int) -> list[tuple[int, OutboxRecord]]:
    rows = _each_that_opens(conn, select(outbox).order_by(outbox.c.id).limit(limit), outbox.c.id)
    return [
        (
            r.id,
            OutboxRecord(r.topic, r.key, r.value, [tuple(h) for h in orjson.loads(r.headers)]),
        )
        for r in rows
    ]


def delete_outbox(conn: Connection, ids: Sequence[int]) -> None:
    conn.execute(delete(outbox).where(outbox.c.id.in_(ids)))


def outbox_depth(conn: Connection) -> int:
    return int((conn.execute(select(func.count()).select_from(outbox))).scalar_one())


def claim(conn: Connection, consumer: str, ref: str) -> bool:
    """Mark ``ref`` handled by ``consumer``; False when it already was (a redelivery)."""
    result = conn.execute(
        _insert_ignore(conn, handled).values(consumer=consumer, ref=ref, at=now())
    )
    return bool(result.rowcount == 1)


# --------------------------------------------------------------------------- KE inbox


def put_in_inbox(conn: Connection, message_id: str, kommune_nr: str) -> bool:
    """Idempotent: a message is in an inbox at most once, however often it is delivered."""
    result = conn.execute(
        _insert_ignore(conn, inbox).values(
            message_id=message_id, kommune_nr=kommune_nr, delivered_at=now()
        )
    )
    return bool(result.rowcount == 1)


def open_inbox(
    conn: Connection, kommune_nr: str, limit: int
) -> list[tuple[MessageRow, dt.datetime]]:
    rows = _each_that_opens(
        conn,
        select(*_ROW, inbox.c.delivered_at)
        .join(inbox, inbox.c.message_id == messages.c.id)
        .where(inbox.c.kommune_nr == kommune_nr, inbox.c.acked_at.is_(None))
        .order_by(inbox.c.delivered_at, inbox.c.message_id)
        .limit(limit),
    )
    out = []
    for r in rows:
        data = dict(r._mapping)
        delivered_at = data.pop("delivered_at")
        data["status"] = MessageStatus(data["status"])
        out.append((MessageRow(**data), delivered_at))
    return out


def inbox_entry(conn: Connection, kommune_nr: str, message_id: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(inbox).where(
                and_(inbox.c.kommune_nr == kommune_nr, inbox.c.message_id == message_id)
            )
        )
    ).first()
    return dict(row._mapping) if row else None


def mark_acked(conn: Connection, message_id: str) -> None:
    conn.execute(update(inbox).where(inbox.c.message_id == message_id).values(acked_at=now()))


def inbox_depths(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        select(inbox.c.kommune_nr, func.count())
        .where(inbox.c.acked_at.is_(None))
        .group_by(inbox.c.kommune_nr)
    )
    return {k: n for k, n in rows}


# --------------------------------------------------------------------------- receipts


def save_receipt(conn: Connection, message_id: str, receipt: Receipt) -> bool:
    """Keep the receipt whole (the model): JSON and AppRec XML are both rendered from it.

    One receipt per message: the same answer again is ignored (False); a different one (a
    dead message retried and then acknowledged) replaces it, since the latest answer stands.
    """
    earlier = conn.execute(
        select(receipts.c.status).where(receipts.c.message_id == message_id)
    ).scalar_one_or_none()
    if earlier is not None:
        if earlier == receipt.status.value:
            return False
        conn.execute(
            update(receipts)
            .where(receipts.c.message_id == message_id)
            .values(status=receipt.status.value, body=receipt.model_dump_json(), created_at=now())
        )
        return True
    result = conn.execute(
        _insert_ignore(conn, receipts).values(
            message_id=message_id,
            status=receipt.status.value,
            body=receipt.model_dump_json(),
            created_at=now(),
        )
    )
    return bool(result.rowcount == 1)


def get_receipt(conn: Connection, message_id: str) -> Receipt | None:
    body = (
        conn.execute(select(receipts.c.body).where(receipts.c.message_id == message_id))
    ).scalar_one_or_none()
    return Receipt.model_validate_json(body) if body else None


# --------------------------------------------------------------------------- consents


def save_consent(conn: Connection, pseudonym: str, record: ConsentRecord, source: str) -> bool:
    """File a consent under the person's pseudonym; a known id is replaced (a withdrawal, a
    new period). True when it was new or changed."""
    body = record.model_dump_json()
    known = conn.execute(
        select(consents.c.id, consents.c.record).where(
            consents.c.patient_pseudonym == pseudonym, consents.c.consent_id == record.id
        )
    ).first()
    if known is None:
        conn.execute(
            insert(consents).values(
                consent_id=record.id,
                patient_pseudonym=pseudonym,
                record=body,
                source=source[:64],
                recorded_at=record.recorded_at,
            )
        )
        return True
    if known.record == body:
        return False
    conn.execute(
        update(consents)
        .where(consents.c.id == known.id)
        .values(record=body, source=source[:64], recorded_at=record.recorded_at)
    )
    return True


def consents_for(conn: Connection, pseudonym: str) -> list[ConsentRecord]:
    rows = conn.execute(
        select(consents.c.record)
        .where(consents.c.patient_pseudonym == pseudonym)
        .order_by(consents.c.recorded_at, consents.c.id)
    )
    return [ConsentRecord.model_validate_json(r) for (r,) in rows]


def messages_of_person(
    conn: Connection, pseudonym: str, statuses: Sequence[MessageStatus]
) -> list[MessageRow]:
    """The person's messages in ``statuses`` (e.g. held for consent), oldest first."""
    rows = _each_that_opens(
        conn,
        select(*_ROW)
        .where(
            messages.c.patient_pseudonym == pseudonym,
            messages.c.status.in_([s.value for s in statuses]),
        )
        .order_by(messages.c.received_at),
    )
    return [MessageRow.from_row(r) for r in rows]


def held_before(conn: Connection, status: MessageStatus, before: dt.datetime) -> list[MessageRow]:
    """Messages that have been in ``status`` since before ``before`` (hold expiry)."""
    rows = _each_that_opens(
        conn,
        select(*_ROW)
        .where(messages.c.status == status.value, messages.c.updated_at < before)
        .order_by(messages.c.updated_at)
        .limit(500),
    )
    return [MessageRow.from_row(r) for r in rows]


# ---- operator queries


@dataclass(frozen=True)
class MessageFilter:
    """What an operator narrows a list or a bulk retry to; a field left empty does not narrow."""

    statuses: tuple[MessageStatus, ...] = ()
    kommune: str | None = None
    kind: str | None = None
    adapter: str | None = None
    #: on updated_at: from ``since`` (inclusive) to ``until`` (exclusive)
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    #: the sending organisation's HER-id, and the sender's own id for the message (its
    #: MessageHeader.id / MsgId: what the sender's conversation knows it by)
    sender_her_id: int | None = None
    sender_ref: str | None = None
    #: a conversation's first message: it and every message made from it (its copies to the
    #: plan's parties, its status messages)
    conversation: str | None = None


@dataclass(frozen=True)
class MessageSummary:
    """A message as the operator's list shows it: metadata only. No content, no raw body, no
    pseudonym, so a list can be handed around without carrying person data."""

    id: str
    kind: str
    status: MessageStatus
    recipient_kommune: str | None
    recipient_adapter: str | None
    reason: str | None
    received_at: dt.datetime
    updated_at: dt.datetime


_SUMMARY = [
    messages.c.id,
    messages.c.kind,
    messages.c.status,
    messages.c.recipient_kommune,
    messages.c.recipient_adapter,
    messages.c.reason,
    messages.c.received_at,
    messages.c.updated_at,
]


def list_messages(
    conn: Connection,
    flt: MessageFilter,
    limit: int,
    after: tuple[dt.datetime, str] | None = None,
) -> list[MessageSummary]:
    """Newest change first, up to ``limit`` rows past the keyset ``after`` (updated_at and id
    of the last row already seen): unlike an offset, pages do not shift while messages change,
    and a deep page costs what the first one does.

    Each status is a branch of its own, ordered by updated_at, so that it walks
    ix_messages_status_updated in order and stops after ``limit`` rows instead of sorting every
    DEAD message; the branches are then merged and cut to ``limit``. Without a status there is
    no index to walk and the store sorts what the other filters leave.
    """
    where: list[Any] = []
    if flt.kommune is not None:
        where.append(messages.c.recipient_kommune == flt.kommune)
    if flt.kind is not None:
        where.append(messages.c.kind == flt.kind)
    if flt.adapter is not None:
        where.append(messages.c.recipient_adapter == flt.adapter)
    if flt.sender_her_id is not None:
        where.append(messages.c.sender_her_id == flt.sender_her_id)
    if flt.sender_ref is not None:
        where.append(messages.c.sender_message_id == flt.sender_ref)
    if flt.conversation is not None:
        where.append(
            or_(messages.c.id == flt.conversation, messages.c.parent_id == flt.conversation)
        )
    if flt.since is not None:
        where.append(messages.c.updated_at >= flt.since)
    if flt.until is not None:
        where.append(messages.c.updated_at < flt.until)
    if after is not None:
        at, last_id = after
        # a plain range on updated_at first, which the index can seek to; then the tie-break
        # for rows changed in the same microsecond
        where.append(messages.c.updated_at <= at)
        where.append((messages.c.updated_at < at) | (messages.c.id < last_id))
    newest_first = (messages.c.updated_at.desc(), messages.c.id.desc())
    statuses = list(dict.fromkeys(flt.statuses))
    if len(statuses) <= 1:
        query = (
            select(*_SUMMARY)
            .where(*where, *(messages.c.status == s.value for s in statuses))
            .order_by(*newest_first)
            .limit(limit)
        )
        rows = conn.execute(query)
    else:
        branches = [
            select(*_SUMMARY)
            .where(*where, messages.c.status == s.value)
            .order_by(*newest_first)
            .limit(limit)
            .subquery()
            for s in statuses
        ]
        merged = select(*branches[0].c).union_all(*(select(*b.c) for b in branches[1:])).subquery()
        rows = conn.execute(
            select(*merged.c).order_by(merged.c.updated_at.desc(), merged.c.id.desc()).limit(limit)
        )
    return [MessageSummary(**{**r._mapping, "status": MessageStatus(r.status)}) for r in rows]


# --------------------------------------------------------------------------- console


#: the advisory lock that makes PostgreSQL writers of the audit log take turns, so no two
#: entries link to the same one (SQLite writers take turns anyway)
_AUDIT_LOCK = 0x1B5A0D17


def audit(
    conn: Connection, actor: str, action: str, target: str | None, reason: str | None
) -> None:
    """Append an entry, linked by hash to the newest one (gateway/store/audit_chain.py).

    Cut to the columns' sizes here, so an over-long id from a caller cannot make the entry
    fail to be written (and the refusal it records go unrecorded).
    """
    actor, action, target = actor[:128], action[:32], target[:64] if target else target
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_AUDIT_LOCK)))
    prev = conn.execute(
        select(audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
    ).scalar_one_or_none()
    prev = prev or audit_chain.GENESIS
    at = now()
    conn.execute(
        insert(audit_log).values(
            at=at,
            actor=actor,
            action=action,
            target=target,
            reason=reason,
            prev_hash=prev,
            hash=audit_chain.entry_hash(prev, at, actor, action, target, reason),
        )
    )


def person_target(pseudonym: str) -> str:
    """How an audit entry names the person it was about: the pseudonym's first characters,
    enough to tell entries about one person from another's, never the person id."""
    return f"pseudonym:{pseudonym[:12]}"


def audit_chain_entries(conn: Connection, after_id: int, limit: int) -> list[audit_chain.Entry]:
    """The log in id order, a page at a time (a verify walks all of it)."""
    rows = conn.execute(
        select(audit_log).where(audit_log.c.id > after_id).order_by(audit_log.c.id).limit(limit)
    )
    return [audit_chain.Entry(**r._mapping) for r in rows]


def audit_entries(conn: Connection, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


def changes_since(conn: Connection, since: dt.datetime) -> dict[tuple[str, str], int]:
    """Messages moved since ``since`` per (stage, status), from the timeline's events."""
    rows = conn.execute(
        select(message_events.c.stage, message_events.c.status, func.count())
        .where(message_events.c.at >= since, message_events.c.status.is_not(None))
        .group_by(message_events.c.stage, message_events.c.status)
    )
    return {(stage, status): n for stage, status, n in rows}


def attempts_since(conn: Connection, since: dt.datetime) -> dict[tuple[str, str], int]:
    """Delivery tries since ``since`` per (adapter, outcome)."""
    rows = conn.execute(
        select(delivery_attempts.c.adapter, delivery_attempts.c.outcome, func.count())
        .where(delivery_attempts.c.at >= since)
        .group_by(delivery_attempts.c.adapter, delivery_attempts.c.outcome)
    )
    return {(adapter, outcome): n for adapter, outcome, n in rows}
