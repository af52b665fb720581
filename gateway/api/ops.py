"""Health, readiness, counts, a message's timeline (metadata only, never content), and the
operator's actions on a message and on the directory."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import logging
from collections.abc import Collection
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import Connection

from gateway import directory_watch
from gateway.api.auth import OperatorActing, OperatorReading, operator_name
from gateway.api.deps import runtime
from gateway.api.problems import Problem
from gateway.domain.content import load_content
from gateway.domain.model import MessageKind
from gateway.domain.receipt import ReceiptError
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline import receipts
from gateway.pipeline.advance import advance
from gateway.runtime import Runtime
from gateway.store import repository as repo

log = logging.getLogger(__name__)

router = APIRouter(tags=["Operations"])


async def operator(caller: OperatorActing) -> str:
    """The actor an operator's action is recorded under: the person acting (the token's
    ``sub``), so the timeline and the audit log say who did it."""
    return operator_name(caller)


Operator = Annotated[str, Depends(operator)]


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Store and broker reachable")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    rt = getattr(request.app.state, "runtime", None)
    if rt is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    try:
        await asyncio.wait_for(rt.db.ping(), 2.0)
        checks["store"] = "ok"
    except Exception as e:
        checks["store"] = type(e).__name__
    try:
        ok = await asyncio.wait_for(rt.broker_check(), 2.0) if rt.broker_check else False
        checks["broker"] = "ok" if ok else "unreachable"
    except Exception as e:
        checks["broker"] = type(e).__name__
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


class Stats(BaseModel):
    statuses: dict[str, int]
    inbox_depth: dict[str, int]
    outbox_depth: int


@router.get("/stats", response_model=Stats, summary="Messages per status, inbox depths")
async def stats(request: Request, _: OperatorReading) -> Stats:
    rt = runtime(request)
    return await rt.db.read(_stats)


def _stats(conn: Connection) -> Stats:
    return Stats(
        statuses=repo.status_counts(conn),
        inbox_depth=repo.inbox_depths(conn),
        outbox_depth=repo.outbox_depth(conn),
    )


class Event(BaseModel):
    at: dt.datetime
    stage: str
    status: str | None
    detail: str | None
    actor: str


class DeliveryAttempt(BaseModel):
    at: dt.datetime
    generation: int
    attempt: int
    adapter: str
    outcome: str
    cause: str | None
    code: str | None
    detail: str | None
    remote_ref: str | None
    duration_ms: int


class PartyCopy(BaseModel):
    """A message the gateway made from this one for one unit (a child): a party's copy of
    a plan (kind ``plan-transfer``) or a status message about it (``plan-status``)."""

    id: str
    kind: str
    recipient_her_id: int | None
    status: str
    reason: str | None


class MessageView(BaseModel):
    id: str
    kind: str
    status: str
    recipient_kommune: str | None
    recipient_her_id: int | None
    received_at: dt.datetime
    updated_at: dt.datetime
    reason: str | None
    #: delivery tries in this generation, failed tries in a row, resends for a missing ack
    attempts: int
    failures: int
    resends: int
    #: when a RETRYING message is due for its next try
    next_attempt_at: dt.datetime | None
    events: list[Event]
    deliveries: list[DeliveryAttempt]
    #: for a copy of a plan for one of its parties: the plan message it came from
    parent_id: str | None = None
    #: for a plan message: its copies for the plan's other parties and the status messages
    #: about it, each with where it stands
    parties: list[PartyCopy] = []


@router.get("/messages/{message_id}", response_model=MessageView, summary="Status and timeline")
async def message(request: Request, message_id: str, _: OperatorReading) -> MessageView:
    rt = runtime(request)
    m, events, deliveries, children = await rt.db.read(_message_and_events, message_id)
    if m is None:
        raise Problem(404, "unknown-message", "No message with this id")
    return MessageView(
        id=m.id,
        kind=m.kind,
        status=m.status.value,
        recipient_kommune=m.recipient_kommune,
        recipient_her_id=m.recipient_her_id,
        received_at=m.received_at,
        updated_at=m.updated_at,
        reason=m.reason,
        attempts=m.attempts,
        failures=m.failures,
        resends=m.resends,
        next_attempt_at=m.next_attempt_at,
        events=[Event(**{k: e[k] for k in Event.model_fields}) for e in events],
        deliveries=[
            DeliveryAttempt(**{k: d[k] for k in DeliveryAttempt.model_fields}) for d in deliveries
        ],
        parent_id=m.parent_id,
        parties=[
            PartyCopy(
                id=c.id,
                kind=c.kind,
                recipient_her_id=c.recipient_her_id,
                status=c.status,
                reason=c.reason,
            )
            for c in children
        ],
    )


def _message_and_events(
    conn: Connection, message_id: str
) -> tuple[
    repo.MessageRow | None, list[dict[str, Any]], list[dict[str, Any]], list[repo.MessageRow]
]:
    m = repo.get_message(conn, message_id)
    if m is None:
        return None, [], [], []
    return (
        m,
        repo.events_of(conn, message_id),
        repo.attempts_of(conn, message_id),
        repo.children_of(conn, message_id),
    )


class RetryResult(BaseModel):
    id: str
    status: str


@router.post(
    "/messages/{message_id}/retry",
    response_model=RetryResult,
    summary="Retry a DEAD message: consent and routing are decided anew",
)
async def retry(request: Request, message_id: str, actor: Operator) -> RetryResult:
    """For a message that went DEAD (no active KE for its kommune, or delivery gave up): once
    the cause is fixed (the directory names the KE), it goes on its way again, as a new
    attempt. 409 for a message that is not DEAD."""
    rt = runtime(request)
    status = await rt.db.write(_retry, rt, message_id, actor)
    rt.committed()
    return RetryResult(id=message_id, status=status.value)


def _retry(conn: Connection, rt: Runtime, message_id: str, actor: str) -> MessageStatus:
    m = acted_on(
        conn, message_id, {MessageStatus.DEAD}, "not-dead", "Only a DEAD message can be retried"
    )
    assert m.canonical is not None
    repo.audit(conn, actor, "retry", m.id, None)
    return decide_anew(conn, rt, m, m.canonical, actor, "retry requested")


def acted_on(
    conn: Connection,
    message_id: str,
    statuses: Collection[MessageStatus],
    code: str,
    title: str,
    *,
    sends_on: bool = True,
) -> repo.MessageRow:
    """The message an operator's action is for: 404 when there is none, 409 ``code`` when it
    stands in none of ``statuses`` (or, for an action that ``sends_on``, has no content)."""
    m = repo.get_message(conn, message_id)
    if m is None:
        raise Problem(404, "unknown-message", "No message with this id")
    if m.status not in statuses or (sends_on and m.canonical is None):
        raise Problem(409, code, title, f"it is {m.status}")
    return m


def decide_anew(
    conn: Connection, rt: Runtime, m: repo.MessageRow, canonical: str, actor: str, detail: str
) -> MessageStatus:
    """The one way an operator sends a message on again (a DEAD one retried alone or in bulk,
    a held one released): the operator's event first, then consent and routing decided as for
    a new notice."""
    repo.add_event(conn, m.id, Stage.OPERATOR, None, detail, actor)
    advance(conn, rt, m, load_content(m.kind, canonical), actor=actor)
    after = repo.get_message(conn, m.id)
    assert after is not None
    return after.status


class DirectoryReload(BaseModel):
    changed: bool
    kommuner: int
    error: str | None


@router.post(
    "/ops/directory/reload",
    response_model=DirectoryReload,
    summary="Load the directory file again now (it is also watched)",
)
async def reload_directory(request: Request, _: OperatorActing) -> DirectoryReload:
    """A file that does not load leaves the directory in force as it was; ``error`` says why."""
    result = directory_watch.reload(runtime(request))
    return DirectoryReload(changed=result.changed, kommuner=result.kommuner, error=result.error)


# --------------------------------------------------------------------------- operator lists

#: most rows one list page, or one bulk retry, may take: a bound on what one request costs
MAX_BATCH = 500


class MessageItem(BaseModel):
    """Metadata only: an operator's list must be safe to paste into a ticket."""

    id: str
    kind: str
    status: str
    recipient_kommune: str | None
    recipient_adapter: str | None
    reason: str | None
    received_at: dt.datetime
    updated_at: dt.datetime


class MessagePage(BaseModel):
    items: list[MessageItem]
    #: pass as ``cursor`` for the next (older) page; null on the last page
    next: str | None


def encode_cursor(row: repo.MessageSummary) -> str:
    """Opaque to the client, so that the keyset behind it may change without breaking them."""
    raw = orjson.dumps([row.updated_at.isoformat(), row.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, message_id = orjson.loads(raw)
        when = dt.datetime.fromisoformat(at)
        if when.tzinfo is None or not isinstance(message_id, str):
            raise ValueError("cursor")
    except (binascii.Error, orjson.JSONDecodeError, TypeError, ValueError) as e:
        raise Problem(400, "bad-cursor", "The cursor is not one this API gave out") from e
    return when, message_id


def page_of(rows: list[repo.MessageSummary], limit: int) -> MessagePage:
    """``rows`` holds up to ``limit + 1`` rows: the extra one only says whether a next page
    exists, so the last page does not send the client on to an empty one."""
    shown = rows[:limit]
    return MessagePage(
        items=[
            MessageItem(
                id=r.id,
                kind=r.kind,
                status=r.status.value,
                recipient_kommune=r.recipient_kommune,
                recipient_adapter=r.recipient_adapter,
                reason=r.reason,
                received_at=r.received_at,
                updated_at=r.updated_at,
            )
            for r in shown
        ],
        next=encode_cursor(shown[-1]) if len(rows) > limit else None,
    )


@router.get(
    "/ops/messages",
    response_model=MessagePage,
    summary="Messages by status, kommune, kind, adapter and time of last change; newest first",
)
async def ops_messages(
    request: Request,
    _: OperatorReading,
    status: Annotated[
        list[MessageStatus] | None, Query(description="repeatable, e.g. DEAD, HELD_CONSENT")
    ] = None,
    kommune: Annotated[
        str | None, Query(pattern=r"^[0-9]{4}$", description="recipient kommune")
    ] = None,
    kind: MessageKind | None = None,
    adapter: Annotated[str | None, Query(max_length=64, description="recipient adapter")] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="updated at or after (ISO, with offset)")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="updated before (ISO, with offset)")
    ] = None,
    sender: Annotated[
        int | None, Query(ge=1, lt=10**9, description="the sending organisation's HER-id")
    ] = None,
    sender_ref: Annotated[
        str | None,
        Query(max_length=64, description="the sender's own id (MessageHeader.id / MsgId)"),
    ] = None,
    conversation: Annotated[
        str | None,
        Query(
            max_length=64,
            description="a gateway message id: the conversation it belongs to (its first "
            "message, and the copies and status messages made from that)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_BATCH)] = 50,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
) -> MessagePage:
    """Where the operator finds what waits for them (DEAD, held) without reading content: the
    list shows metadata only, never the notice or anything about the person."""
    rt = runtime(request)
    if conversation is not None:
        first = await rt.db.read(repo.get_message, conversation)
        if first is None:
            return MessagePage(items=[], next=None)
        conversation = first.parent_id or first.id
    flt = repo.MessageFilter(
        statuses=tuple(status or ()),
        kommune=kommune,
        kind=kind.value if kind else None,
        adapter=adapter,
        since=since,
        until=until,
        sender_her_id=sender,
        sender_ref=sender_ref,
        conversation=conversation,
    )
    after = decode_cursor(cursor) if cursor else None
    rows = await rt.db.read(repo.list_messages, flt, limit + 1, after)
    return page_of(rows, limit)


# --------------------------------------------------------------------------- bulk retry


class FilterBody(BaseModel):
    """The list's filters, for a bulk action."""

    status: list[MessageStatus] = Field(default_factory=list)
    kommune: str | None = Field(None, pattern=r"^[0-9]{4}$")
    kind: MessageKind | None = None
    adapter: str | None = Field(None, max_length=64)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None


class RetryMany(BaseModel):
    """Either ``ids``, or ``filter`` with ``max`` (how many at most: a bulk action names its
    reach). A filter without ``status`` takes DEAD messages, the only ones a retry moves."""

    ids: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, min_length=1, max_length=MAX_BATCH
    )
    filter: FilterBody | None = None
    max: int | None = Field(None, ge=1, le=MAX_BATCH)


class RetryOutcome(BaseModel):
    id: str
    #: the status after the request; null for an unknown id
    status: str | None
    #: null when retried; ``not-dead`` (left as it is), ``unknown-message``, or what failed
    error: str | None


class RetryManyResult(BaseModel):
    results: list[RetryOutcome]


@router.post(
    "/ops/messages/retry",
    response_model=RetryManyResult,
    summary="Retry many DEAD messages, by ids or by filter; an answer per message",
)
async def retry_many(request: Request, actor: Operator, body: RetryMany) -> RetryManyResult:
    """After an outage or a directory fix, many messages are DEAD for the same cause. Each is
    retried in a transaction of its own, so one that fails does not undo the others, and the
    answer says per message what happened."""
    rt = runtime(request)
    if (body.ids is None) == (body.filter is None):
        raise Problem(422, "ids-or-filter", "Give either ids or filter")
    if body.filter is not None:
        if body.max is None:
            raise Problem(422, "max-required", "A filter needs max (at most 500)")
        f = body.filter
        flt = repo.MessageFilter(
            statuses=tuple(f.status or (MessageStatus.DEAD,)),
            kommune=f.kommune,
            kind=f.kind.value if f.kind else None,
            adapter=f.adapter,
            since=f.since,
            until=f.until,
        )
        ids = [r.id for r in await rt.db.read(repo.list_messages, flt, body.max)]
    else:
        assert body.ids is not None
        ids = list(dict.fromkeys(body.ids))
    results: list[RetryOutcome] = []
    for message_id in ids:
        try:
            status, error = await rt.db.write(_retry_one, rt, message_id, actor)
        except Exception as e:  # this message's transaction is undone; the others go on
            log.warning("bulk retry of %s failed: %s", message_id, type(e).__name__)
            error = "status-changed" if isinstance(e, repo.StaleStatus) else "failed"
            status = await rt.db.read(_status_of, message_id)
        else:
            if error is None:
                rt.committed()
        results.append(RetryOutcome(id=message_id, status=status, error=error))
    return RetryManyResult(results=results)


def _retry_one(
    conn: Connection, rt: Runtime, message_id: str, actor: str
) -> tuple[str | None, str | None]:
    """(status after, error): a message that cannot be retried is an answer, not a failure."""
    m = repo.get_message(conn, message_id)
    if m is None:
        return None, "unknown-message"
    if m.status is not MessageStatus.DEAD or m.canonical is None:
        return m.status.value, "not-dead"
    repo.audit(conn, actor, "retry", m.id, "bulk")
    return decide_anew(conn, rt, m, m.canonical, actor, "retry requested (bulk)").value, None


def _status_of(conn: Connection, message_id: str) -> str | None:
    m = repo.get_message(conn, message_id)
    return m.status.value if m else None


# --------------------------------------------------------------------------- discard

#: what an operator may give up: messages that wait for them, not ones on their way
DISCARDABLE = frozenset(
    {MessageStatus.DEAD, MessageStatus.HELD_CONSENT, MessageStatus.HELD_ROUTING}
)
#: what the sender is told; the operator's own words stay in the timeline, since free text
#: may hold what the sender should not get back
DISCARDED = ReceiptError(code="X99", detail="discarded by the gateway's operator")


class DiscardRequest(BaseModel):
    #: why (3–500 characters): kept in the timeline, not sent to the sender
    reason: str | None = None


class DiscardResult(BaseModel):
    id: str
    status: str


@router.post(
    "/messages/{message_id}/discard",
    response_model=DiscardResult,
    summary="Give up a DEAD or held message: REJECTED, and the sender gets a rejecting receipt",
)
async def discard(
    request: Request, message_id: str, actor: Operator, body: DiscardRequest | None = None
) -> DiscardResult:
    """For a message no retry or consent will move on (a KE that will not come back, a notice
    sent by mistake). The reason is mandatory: giving a message up must be explained to
    whoever later asks where it went. 409 for a message on its way or already answered."""
    reason = (body.reason or "").strip() if body else ""
    if not 3 <= len(reason) <= 500:
        raise Problem(422, "reason-required", "Discarding needs a reason of 3–500 characters")
    rt = runtime(request)
    try:
        status = await rt.db.write(_discard, rt, message_id, reason, actor)
    except repo.StaleStatus as e:
        raise Problem(
            409, "not-discardable", "The message changed status meanwhile; look again"
        ) from e
    rt.committed()
    return DiscardResult(id=message_id, status=status.value)


def _discard(
    conn: Connection, rt: Runtime, message_id: str, reason: str, actor: str
) -> MessageStatus:
    m = acted_on(
        conn,
        message_id,
        DISCARDABLE,
        "not-discardable",
        "Only a DEAD, HELD_CONSENT or HELD_ROUTING message can be discarded",
        sends_on=False,
    )
    repo.add_event(conn, m.id, Stage.OPERATOR, None, f"discarded: {reason}", actor)
    repo.audit(conn, actor, "discard", m.id, reason)
    notice = load_content(m.kind, m.canonical) if m.canonical else None
    receipts.reject(conn, rt, m, Stage.OPERATOR, (DISCARDED,), notice=notice, actor=actor)
    return MessageStatus.REJECTED
