"""The delivery stage: hand each routed message to its KE's adapter.

Adapters are idempotent towards the recipient (same message id), so a redelivery after a
crash between "delivered" and "recorded" shows up once at the KE.
"""

from __future__ import annotations

import logging

from gateway.delivery import Delivery, DeliveryFailed
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


def handler(rt: Runtime) -> Handler:
    async def handle(command: Command) -> None:
        async with rt.db.read() as conn:
            message = await repo.get_message(conn, command.message_id)
        if (
            message is None
            or message.status not in _READY
            or message.generation != command.generation
            or message.canonical is None
            or message.recipient_kommune is None
        ):
            return
        entry = rt.directory.entries.get(message.recipient_kommune)
        if entry is None:
            log.error("message %s: its kommune left the directory; not delivered", message.id)
            return
        notice = NeedNotice.model_validate_json(message.canonical)
        delivery = Delivery(message.id, message.generation, notice, entry.unit, entry.settings)
        try:
            result = await rt.adapters.get(entry.unit.adapter).deliver(delivery)
        except DeliveryFailed as f:
            if f.retryable:
                raise  # the consumer retries; the recovery sweep after that
            async with rt.db.write() as conn:
                await receipts.reject(
                    rt,
                    conn,
                    message,
                    Stage.DELIVER,
                    (ReceiptError(code=f.code, detail=f.detail),),
                    notice=notice,
                )
            rt.committed()
            return
        try:
            async with rt.db.write() as conn:
                if not await repo.claim(conn, CONSUMER, command.ref):
                    return
                await repo.set_status(
                    conn, message, MessageStatus.DELIVERED, Stage.DELIVER, result.detail, ACTOR
                )
        except repo.StaleStatus:
            return  # acknowledged before we recorded the delivery: the ack recorded it

    return handle
