"""Recovery: re-drive messages that are in flight but have no record on the broker.

At start every in-flight message is re-queued (the bundled broker forgets everything when it
restarts, and an outbox row may have been published to a broker that then died). Afterwards a
sweep re-queues messages that have not moved for ``stale_after``. Consumers dedupe, so a
message queued twice is handled once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import Connection

from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline.deliver import retry_record
from gateway.runtime import Runtime
from gateway.store import repository as repo
from gateway.transport import Command, command_record

log = logging.getLogger(__name__)

BATCH = 500


async def requeue(rt: Runtime, *, older_than: dt.timedelta | None = None) -> int:
    cutoff = repo.now() - older_than if older_than else None
    count = 0
    after = ""
    while True:
        rows = await rt.db.read(repo.in_flight, BATCH, after)
        if not rows:
            break
        after = rows[-1].id
        stale = [m for m in rows if cutoff is None or _last_moved(m) < cutoff]
        if stale:
            await rt.db.write(_requeue, rt, stale)
            count += len(stale)
            rt.committed()
    return count


def _last_moved(m: repo.MessageRow) -> dt.datetime:
    """A message waiting in a retry tier is not stuck until its try is overdue."""
    if m.status is MessageStatus.RETRYING and m.next_attempt_at is not None:
        return max(m.updated_at, m.next_attempt_at)
    return m.updated_at


def _requeue(conn: Connection, rt: Runtime, stale: list[repo.MessageRow]) -> None:
    for m in stale:
        repo.add_outbox(conn, _record(rt, m))
        repo.add_event(conn, m.id, Stage.RECOVERY, None, f"re-queued from {m.status}", "gateway")


def _record(rt: Runtime, m: repo.MessageRow) -> repo.OutboxRecord:
    if m.status in (MessageStatus.RECEIVED, MessageStatus.VALIDATED):
        command = Command(m.id, m.generation)
        return command_record(rt.topics.ingress, m.patient_pseudonym or m.id, command, m.id)
    if m.status is MessageStatus.RETRYING and m.next_attempt_at is not None:
        # back into its retry tier, due when it was due (the broker may have forgotten it)
        return retry_record(rt, m, max(m.failures - 1, 0), m.attempts, m.next_attempt_at)
    command = Command(m.id, m.generation, m.attempts)
    return command_record(rt.topics.deliver, m.recipient_kommune or m.id, command, m.id)


async def run(rt: Runtime, *, interval: float = 60.0, stale_after: float = 300.0) -> None:
    n = await requeue(rt)
    if n:
        log.info("recovery: re-queued %d in-flight messages at start", n)
    while True:
        await asyncio.sleep(interval)
        try:
            n = await requeue(rt, older_than=dt.timedelta(seconds=stale_after))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("recovery sweep failed (%s); next sweep in %ss", type(e).__name__, interval)
            continue
        if n:
            log.info("recovery: re-queued %d messages that had not moved", n)
