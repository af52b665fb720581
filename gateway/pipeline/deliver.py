"""The delivery stage: hand each routed message to its KE's adapter.

Per batch: one read loads the messages, deliveries run concurrently (a slow recipient does not
hold up the rest of the batch), one write records the outcomes. Adapters are idempotent
towards the recipient (same message id), so a redelivery after a crash between "delivered"
and "recorded" shows up once at the KE.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import Connection

from gateway.delivery import Delivered, Delivery, DeliveryFailed
from gateway.domain.model import NeedNotice
from gateway.domain.receipt import ReceiptError
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline import receipts
from gateway.runtime import Runtime
from gateway.store import repository as repo
from gateway.transport import Command, Handler

log = logging.getLogger(__name__)

CONSUMER = "deliver"
ACTOR = "gateway"
_READY = frozenset({MessageStatus.ROUTED, MessageStatus.RETRYING})


@dataclass(frozen=True)
class NoRecipient:
    detail: str


@dataclass(frozen=True)
class Outcome:
    command: Command
    message: repo.MessageRow
    notice: NeedNotice
    result: Delivered | DeliveryFailed | NoRecipient


def handler(rt: Runtime) -> Handler:
    async def handle(commands: list[Command]) -> None:
        rows = await rt.db.read(repo.get_messages, [c.message_id for c in commands])
        jobs = [
            (c, m)
            for c in commands
            if (m := rows.get(c.message_id)) is not None
            and m.status in _READY
            and m.generation == c.generation
        ]
        results = await asyncio.gather(*(_deliver(rt, c, m) for c, m in jobs))
        outcomes = [o for o in results if o is not None]
        if outcomes:
            await rt.db.write(_record_all, rt, outcomes)
            rt.committed()

    return handle


async def _deliver(rt: Runtime, command: Command, message: repo.MessageRow) -> Outcome | None:
    """Deliver one message; None when it can't be now (it stays in flight for a later try)."""
    if message.canonical is None:
        log.error("deliver: message %s has no canonical form", message.id)
        return None
    notice = NeedNotice.model_validate_json(message.canonical)
    entry = rt.directory.active_entry(message.recipient_kommune or "")
    if entry is None:
        # the directory changed since routing: no KE to deliver to (DEAD, retryable)
        detail = f"kommune {message.recipient_kommune} has no active koordinerende enhet"
        return Outcome(command, message, notice, NoRecipient(detail))
    delivery = Delivery(message.id, message.generation, notice, entry.unit, entry.settings)
    try:
        result: Delivered | DeliveryFailed = await rt.adapters.get(entry.unit.adapter).deliver(
            delivery
        )
    except DeliveryFailed as f:
        if f.retryable:
            log.warning("deliver: message %s failed (%s); will retry", message.id, f.code)
            return None
        result = f
    except Exception as e:
        log.warning("deliver: message %s failed (%s); will retry", message.id, type(e).__name__)
        return None
    return Outcome(command, message, notice, result)


def _record_all(conn: Connection, rt: Runtime, outcomes: list[Outcome]) -> None:
    for o in outcomes:
        try:
            with conn.begin_nested():
                if not repo.claim(conn, CONSUMER, o.command.ref):
                    continue
                if isinstance(o.result, NoRecipient):
                    error = ReceiptError(code="E21", detail=o.result.detail)
                    receipts.dead(conn, rt, o.message, Stage.DELIVER, (error,), notice=o.notice)
                elif isinstance(o.result, DeliveryFailed):
                    error = ReceiptError(code=o.result.code, detail=o.result.detail)
                    receipts.reject(conn, rt, o.message, Stage.DELIVER, (error,), notice=o.notice)
                else:
                    repo.set_status(
                        conn,
                        o.message,
                        MessageStatus.DELIVERED,
                        Stage.DELIVER,
                        o.result.detail,
                        ACTOR,
                    )
        except repo.StaleStatus:
            pass  # acknowledged before we recorded the delivery: the ack recorded it
