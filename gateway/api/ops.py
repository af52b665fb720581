"""Health, readiness, counts, a message's timeline (metadata only, never content), and the
operator's actions on a message and on the directory."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Connection

from gateway import directory_watch
from gateway.api.deps import caller, runtime
from gateway.api.problems import Problem
from gateway.domain.model import NeedNotice
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline.advance import advance
from gateway.runtime import Runtime
from gateway.store import repository as repo

router = APIRouter(tags=["Operations"])


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
async def stats(request: Request) -> Stats:
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


class MessageView(BaseModel):
    id: str
    kind: str
    status: str
    recipient_kommune: str | None
    recipient_her_id: int | None
    received_at: dt.datetime
    updated_at: dt.datetime
    reason: str | None
    events: list[Event]


@router.get("/messages/{message_id}", response_model=MessageView, summary="Status and timeline")
async def message(request: Request, message_id: str) -> MessageView:
    rt = runtime(request)
    m, events = await rt.db.read(_message_and_events, message_id)
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
        events=[Event(**{k: e[k] for k in Event.model_fields}) for e in events],
    )


def _message_and_events(
    conn: Connection, message_id: str
) -> tuple[repo.MessageRow | None, list[dict[str, Any]]]:
    m = repo.get_message(conn, message_id)
    return m, repo.events_of(conn, message_id) if m else []


class RetryResult(BaseModel):
    id: str
    status: str


@router.post(
    "/messages/{message_id}/retry",
    response_model=RetryResult,
    summary="Retry a DEAD message: consent and routing are decided anew",
)
async def retry(request: Request, message_id: str) -> RetryResult:
    """For a message that went DEAD (no active KE for its kommune, or delivery gave up): once
    the cause is fixed (the directory names the KE), it goes on its way again, as a new
    attempt. 409 for a message that is not DEAD."""
    rt = runtime(request)
    actor = f"operator {caller(request)}"
    status = await rt.db.write(_retry, rt, message_id, actor)
    rt.committed()
    return RetryResult(id=message_id, status=status.value)


def _retry(conn: Connection, rt: Runtime, message_id: str, actor: str) -> MessageStatus:
    m = repo.get_message(conn, message_id)
    if m is None:
        raise Problem(404, "unknown-message", "No message with this id")
    if m.status is not MessageStatus.DEAD or m.canonical is None:
        raise Problem(409, "not-dead", "Only a DEAD message can be retried", f"it is {m.status}")
    repo.add_event(conn, m.id, Stage.OPERATOR, None, "retry requested", actor)
    advance(conn, rt, m, NeedNotice.model_validate_json(m.canonical), actor=actor)
    after = repo.get_message(conn, message_id)
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
async def reload_directory(request: Request) -> DirectoryReload:
    """A file that does not load leaves the directory in force as it was; ``error`` says why."""
    result = directory_watch.reload(runtime(request))
    return DirectoryReload(changed=result.changed, kommuner=result.kommuner, error=result.error)
