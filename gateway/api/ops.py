"""Health, readiness, counts and a message's timeline: metadata only, never content."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Connection

from gateway.api.deps import runtime
from gateway.api.problems import Problem
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
