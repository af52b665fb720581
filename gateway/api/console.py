"""What the operator console (``/console``) reads and does beyond the operator API: the
overview, the audited look-ups (a search by person, a message's content), releasing a held
message. The console itself is static files (gateway/console/), no build step.

Who may do what follows from the bearer token's scopes (gateway/api/auth.py): ``ipgw/ops.read``
sees metadata, ``ipgw/ops.act`` acts, ``ipgw/ops.content`` (the privileged role) may also see
content. Every look at person data and every action is written to ``audit_log`` with who,
what, when and why.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from gateway.api.auth import OperatorReading, needs, operator_name
from gateway.api.deps import runtime
from gateway.api.ops import MAX_BATCH, MessagePage, Operator, acted_on, decide_anew, page_of
from gateway.api.problems import Problem
from gateway.auth.tokens import SCOPE_OPS_CONTENT, SCOPE_OPS_READ
from gateway.domain.content import Content, load_content, person_of
from gateway.domain.identifiers import InvalidIdentifier, birth_date, parse_person_id
from gateway.domain.plan import PlanTransfer
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline.advance import advance
from gateway.runtime import Runtime
from gateway.store import repository as repo
from mappings.codes.kommune_register import kommune_register

router = APIRouter(tags=["Operator console"], dependencies=[Depends(needs(SCOPE_OPS_READ))])


# --------------------------------------------------------------------------- overview


class AdapterHealth(BaseModel):
    adapter: str
    tries_last_hour: int
    failed_last_hour: int


class InboxView(BaseModel):
    recipient: str
    open_inbox: int
    oldest_unacknowledged_seconds: float | None


class StageView(BaseModel):
    stage: str
    #: records waiting for this stage's consumer (its lag); None for stages without a queue
    #: or when the broker did not answer
    queued: int | None
    #: messages this stage moved in the last hour, per status they moved to
    last_hour: dict[str, int]


class Overview(BaseModel):
    at: dt.datetime
    statuses: dict[str, int]
    last_hour: dict[str, int]
    last_day: dict[str, int]
    stages: list[StageView]
    recipients: list[InboxView]
    adapters: list[AdapterHealth]
    store: str
    broker: str
    outbox_depth: int


#: how long one overview serves every console that asks: the counts per status scan an index
#: of every message (about 0.1 s at a million, bench/console_search.py), and every open
#: console polls every 2 s
OVERVIEW_TTL_SECONDS = 1.5


@router.get("/ops/overview", response_model=Overview, summary="The flow at a glance")
async def overview(request: Request) -> Overview:
    rt = runtime(request)
    cached: tuple[float, Overview] | None = getattr(request.app.state, "overview", None)
    if cached is not None and time.monotonic() - cached[0] < OVERVIEW_TTL_SECONDS:
        return cached[1]
    fresh = await _fresh_overview(rt)
    request.app.state.overview = (time.monotonic(), fresh)
    return fresh


#: which consumer's lag is a stage's queue (gateway/service.py names the consumers)
_QUEUE_OF_STAGE = {Stage.VALIDATE: "pipeline", Stage.DELIVER: "deliver"}


async def _fresh_overview(rt: Runtime) -> Overview:
    broker = "not running"
    lags: dict[str, int] = {}
    if rt.broker_check is not None:
        try:
            broker = "ok" if await asyncio.wait_for(rt.broker_check(), 2) else "unreachable"
        except Exception as e:
            broker = type(e).__name__
    if rt.consumer_lags is not None and broker == "ok":
        try:
            lags = await asyncio.wait_for(rt.consumer_lags(), 2)
        except Exception:
            lags = {}  # shown as unknown: the broker status line says why
    return await rt.db.read(_overview, broker, lags)


def _overview(conn: Connection, broker: str, lags: dict[str, int]) -> Overview:
    now = repo.now()
    hour = repo.changes_since(conn, now - dt.timedelta(hours=1))
    day = repo.changes_since(conn, now - dt.timedelta(days=1))
    depths = repo.inbox_depths(conn)
    oldest = {r: (now - at).total_seconds() for r, at in repo.oldest_unacknowledged(conn).items()}
    attempts = repo.attempts_since(conn, now - dt.timedelta(hours=1))
    adapters = sorted({a for a, _ in attempts})
    return Overview(
        at=now,
        statuses=repo.status_counts(conn),
        last_hour=_per_status(hour),
        last_day=_per_status(day),
        stages=[
            StageView(
                stage=stage,
                queued=_queued(stage, lags),
                last_hour={status: n for (st, status), n in hour.items() if st == stage},
            )
            for stage in Stage
        ],
        recipients=[
            InboxView(
                recipient=r,
                open_inbox=depths.get(r, 0),
                oldest_unacknowledged_seconds=oldest.get(r),
            )
            for r in sorted(set(depths) | set(oldest))
        ],
        adapters=[
            AdapterHealth(
                adapter=a,
                tries_last_hour=sum(n for (x, _), n in attempts.items() if x == a),
                failed_last_hour=sum(
                    n for (x, outcome), n in attempts.items() if x == a and outcome != "delivered"
                ),
            )
            for a in adapters
        ],
        store="ok",
        broker=broker,
        outbox_depth=repo.outbox_depth(conn),
    )


def _per_status(changes: dict[tuple[str, str], int]) -> dict[str, int]:
    total: dict[str, int] = {}
    for (_, status), n in changes.items():
        total[status] = total.get(status, 0) + n
    return total


def _queued(stage: Stage, lags: dict[str, int]) -> int | None:
    """The deliver stage's queue includes the retry tiers' records waiting for their turn."""
    consumer = _QUEUE_OF_STAGE.get(stage)
    if consumer is None or consumer not in lags:
        return None
    if stage is Stage.DELIVER:
        # a retry tier's consumer is named for its topic (``<prefix>.retry.10m``)
        return sum(n for name, n in lags.items() if name == consumer or ".retry." in name)
    return lags[consumer]


# --------------------------------------------------------------------------- audited looks


class PersonSearch(BaseModel):
    #: sent in the body, never in a URL: URLs end up in access logs and browser history
    person_id: str = Field(min_length=11, max_length=11)
    reason: str = Field(min_length=3, max_length=500)
    limit: int = Field(50, ge=1, le=MAX_BATCH)


@router.post(
    "/ops/messages/by-person",
    response_model=MessagePage,
    summary="A person's messages (audited; the id is turned into the pseudonym, never kept)",
)
async def by_person(request: Request, body: PersonSearch, actor: Operator) -> MessagePage:
    rt = runtime(request)
    try:
        parse_person_id(body.person_id, allow_synthetic=rt.settings.accept_synthetic_ids)
    except InvalidIdentifier:
        raise Problem(400, "invalid-person-id", "Not a valid person id") from None
    pseudonym = rt.pseudonymize(body.person_id)
    rows = await rt.db.write(_by_person, pseudonym, body.reason, body.limit, actor)
    return page_of(rows, body.limit)


def _by_person(
    conn: Connection, pseudonym: str, reason: str, limit: int, actor: str
) -> list[repo.MessageSummary]:
    repo.audit(conn, actor, "search-person", repo.person_target(pseudonym), reason)
    found = repo.messages_of_person(conn, pseudonym, tuple(MessageStatus))
    found.sort(key=lambda m: (m.updated_at, m.id), reverse=True)
    return [
        repo.MessageSummary(
            id=m.id,
            kind=m.kind,
            status=m.status,
            recipient_kommune=m.recipient_kommune,
            recipient_adapter=m.recipient_adapter,
            reason=m.reason,
            received_at=m.received_at,
            updated_at=m.updated_at,
        )
        for m in found[: limit + 1]
    ]


class Why(BaseModel):
    reason: str = Field(min_length=3, max_length=500)


class ContentView(BaseModel):
    id: str
    kind: str
    content: dict[str, object]


@router.post(
    "/messages/{message_id}/content",
    response_model=ContentView,
    summary="A message's content, for the privileged role only (audited)",
)
async def content(
    request: Request, message_id: str, body: Why, caller: OperatorReading
) -> ContentView:
    rt = runtime(request)
    actor = operator_name(caller)
    if not caller.has(SCOPE_OPS_CONTENT):
        await rt.db.write(repo.audit, actor, "content-denied", message_id, body.reason)
        raise Problem(403, "content-not-allowed", "Only the privileged role may see content")
    m = await rt.db.write(_content, message_id, body.reason, actor)
    return ContentView(
        id=m.id,
        kind=m.kind,
        content=load_content(m.kind, m.canonical or "{}").model_dump(mode="json"),
    )


def _content(conn: Connection, message_id: str, reason: str, actor: str) -> repo.MessageRow:
    m = repo.get_message(conn, message_id)
    if m is None or m.canonical is None:
        raise Problem(404, "unknown-message", "No message with readable content and this id")
    repo.audit(conn, actor, "view-content", m.id, reason)
    return m


class PersonMasked(BaseModel):
    """The person as a list or a page shows them by default: the birth date only."""

    born: dt.date | None


@router.get(
    "/messages/{message_id}/person",
    response_model=PersonMasked,
    summary="The person masked: birth date only",
)
async def person_masked(request: Request, message_id: str) -> PersonMasked:
    rt = runtime(request)
    m = await rt.db.read(repo.get_message, message_id)
    if m is None or m.canonical is None:
        raise Problem(404, "unknown-message", "No message with readable content and this id")
    patient = person_of(load_content(m.kind, m.canonical))
    try:
        return PersonMasked(
            born=birth_date(parse_person_id(patient.person_id, allow_synthetic=True))
        )
    except InvalidIdentifier:
        return PersonMasked(born=None)


# --------------------------------------------------------------------------- actions


class Released(BaseModel):
    id: str
    status: str


@router.post(
    "/messages/{message_id}/release",
    response_model=Released,
    summary="A held message decided anew now (consent, routing): released if it may go",
)
async def release(request: Request, message_id: str, actor: Operator) -> Released:
    rt = runtime(request)
    status = await rt.db.write(_release, rt, message_id, actor)
    rt.committed()
    return Released(id=message_id, status=status.value)


def _release(conn: Connection, rt: Runtime, message_id: str, actor: str) -> MessageStatus:
    m = acted_on(
        conn,
        message_id,
        {MessageStatus.HELD_CONSENT},
        "not-held",
        "Only a message held for consent can be released",
    )
    assert m.canonical is not None
    repo.audit(conn, actor, "release", m.id, None)
    return decide_anew(conn, rt, m, m.canonical, actor, "release requested")


class RouteTo(BaseModel):
    kommune: str = Field(pattern=r"^[0-9]{4}$")


@router.post(
    "/messages/{message_id}/route",
    response_model=Released,
    summary="A message held for routing sent to the kommune the operator names",
)
async def route_to(request: Request, message_id: str, body: RouteTo, actor: Operator) -> Released:
    """For a message whose kommunenummer a split made ambiguous: the operator names one of the
    candidates (the reason lists them); 409 for another number or a message not so held."""
    rt = runtime(request)
    status = await rt.db.write(_route_to, rt, message_id, body.kommune, actor)
    rt.committed()
    return Released(id=message_id, status=status.value)


def _route_to(
    conn: Connection, rt: Runtime, message_id: str, kommune: str, actor: str
) -> MessageStatus:
    m = acted_on(
        conn,
        message_id,
        {MessageStatus.HELD_ROUTING},
        "not-held-for-routing",
        "Only a message held for routing can be routed",
    )
    assert m.canonical is not None
    content = load_content(m.kind, m.canonical)
    asked = (
        content.new_kommune_nr or content.plan.patient.kommune_nr
        if isinstance(content, PlanTransfer)
        else person_of(content).kommune_nr
    )
    resolution = kommune_register().resolve(asked or "", rt.clock().date())
    candidates = [k.nr for k in resolution.candidates]
    if kommune not in candidates:
        raise Problem(
            409,
            "not-a-candidate",
            "The kommune must be one of the candidates",
            ", ".join(candidates) or "none",
        )
    chosen: Content = (
        content.model_copy(update={"new_kommune_nr": kommune})
        if isinstance(content, PlanTransfer)
        else content.model_copy(
            update={"patient": person_of(content).model_copy(update={"kommune_nr": kommune})}
        )
    )
    detail = f"the operator named kommune {kommune} (candidates {', '.join(candidates)})"
    m = repo.update_in_status(
        conn, m, Stage.OPERATOR, detail, actor, canonical=chosen.model_dump_json()
    )
    repo.audit(conn, actor, "route", m.id, detail)
    advance(conn, rt, m, chosen, actor=actor)
    after = repo.get_message(conn, m.id)
    assert after is not None
    return after.status


class AuditEntry(BaseModel):
    at: dt.datetime
    actor: str
    action: str
    target: str | None
    reason: str | None


@router.get("/ops/audit", response_model=list[AuditEntry], summary="The newest audit entries")
async def audit_log(
    request: Request, limit: Annotated[int, Query(ge=1, le=MAX_BATCH)] = 100
) -> list[AuditEntry]:
    rt = runtime(request)
    rows = await rt.db.read(repo.audit_entries, limit)
    return [AuditEntry(**{k: row[k] for k in AuditEntry.model_fields}) for row in rows]
