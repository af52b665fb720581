"""Issuing receipts (AppRec) to the sender, and rejecting with one."""

from __future__ import annotations

import uuid

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.model import NeedNotice, Organisation
from gateway.domain.receipt import Receipt, ReceiptError, ReceiptStatus
from gateway.domain.status import MessageStatus, Stage
from gateway.runtime import Runtime
from gateway.store import repository as repo

GATEWAY_ACTOR = "gateway"


async def issue(
    rt: Runtime,
    conn: AsyncConnection,
    message: repo.MessageRow,
    status: ReceiptStatus,
    errors: tuple[ReceiptError, ...],
    *,
    notice: NeedNotice | None,
    answered_by: Organisation | None = None,
) -> Receipt:
    """Store the receipt and queue it on the receipts topic, in the caller's transaction."""
    receiver = None
    if notice is not None:
        receiver = notice.sender.department or notice.sender.organisation
    receipt = Receipt(
        generated_at=repo.now(),
        sender=answered_by or Organisation(name=rt.settings.gateway_name),
        receiver=receiver,
        status=status,
        errors=errors,
        original_message_type=message.kind,
        original_message_id=message.sender_message_id,
        original_issued_at=notice.sent_at if notice else None,
        gateway_message_id=uuid.UUID(message.id),
    )
    body = receipt.to_json()
    if await repo.save_receipt(conn, message.id, status.value, body):
        await repo.add_outbox(
            conn,
            repo.OutboxRecord(
                topic=rt.topics.receipts,
                key=(message.sender_endpoint or message.id).encode(),
                value=orjson.dumps(body),
                headers=[("message-id", message.id), ("correlation-id", message.id)],
            ),
        )
        await repo.add_event(
            conn, message.id, Stage.RECEIPT, None, f"receipt {status.text} issued", GATEWAY_ACTOR
        )
    return receipt


def reason_text(errors: tuple[ReceiptError, ...]) -> str:
    return "; ".join(f"{e.code} {e.detail or e.text}" for e in errors)


async def reject(
    rt: Runtime,
    conn: AsyncConnection,
    message: repo.MessageRow,
    stage: Stage,
    errors: tuple[ReceiptError, ...],
    *,
    notice: NeedNotice | None = None,
    actor: str = GATEWAY_ACTOR,
    answered_by: Organisation | None = None,
) -> None:
    reason = reason_text(errors)
    await repo.set_status(
        conn, message, MessageStatus.REJECTED, stage, reason, actor, reason=reason
    )
    await issue(
        rt, conn, message, ReceiptStatus.REJECTED, errors, notice=notice, answered_by=answered_by
    )
