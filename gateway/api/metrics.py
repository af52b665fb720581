"""``GET /metrics``: Prometheus exposition (gateway/metrics.py says what is counted)."""

from __future__ import annotations

import asyncio
import dataclasses

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Connection

from gateway import metrics
from gateway.api.deps import runtime
from gateway.store import repository as repo

router = APIRouter(tags=["operations"])

#: a scrape waits this long for the broker's offsets, then reports it down
BROKER_WAIT_SECONDS = 3.0


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def scrape(request: Request) -> Response:
    rt = runtime(request)
    snapshot = await rt.db.read(_from_store)
    lags: dict[str, int] = {}
    up = rt.consumer_lags is not None  # not yet started, or stopping: not known to be up
    if rt.consumer_lags is not None:
        try:
            lags = await asyncio.wait_for(rt.consumer_lags(), BROKER_WAIT_SECONDS)
        except Exception:
            up = False
    body = metrics.render(dataclasses.replace(snapshot, consumer_lag=lags, broker_up=up))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _from_store(conn: Connection) -> metrics.Snapshot:
    now = repo.now()
    oldest = repo.oldest_outbox(conn)
    return metrics.Snapshot(
        messages=repo.status_kind_counts(conn),
        inbox_depth=repo.inbox_depths(conn),
        oldest_unacknowledged={
            recipient: (now - at).total_seconds()
            for recipient, at in repo.oldest_unacknowledged(conn).items()
        },
        outbox_depth=repo.outbox_depth(conn),
        outbox_age=(now - oldest).total_seconds() if oldest else 0.0,
    )
