"""Issuing receipts (AppRec) to the sender, and rejecting with one."""

from __future__ import annotations

import uuid

import orjson
from sqlalchemy import Connection

from gateway.domain.model import NeedNotice, Organisation
from gateway.domain.receipt import Receipt, ReceiptError, ReceiptStatus
from gateway.domain.status import MessageStatus, Stage
from gateway.runtime import Runtime
from gateway.store import repository as repo

GATEWAY_ACTOR = "gateway"


def issue(
    conn: Connection,
    rt: Runtime,
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
    if repo.save_receipt(conn, message.id, status.value, body):
        repo.add_outbox(
            conn,
            repo.OutboxRecord(
                topic=rt.topics.receipts,
                key=(message.sender_endpoint or message.id).encode(),
                value=orjson.dumps(body),
                headers=[("message-id", message.id), ("correlation-id", message.id)],
            ),
        )
        repo.add_event(
            conn, message.id, Stage.RECEIPT, None, f"receipt {status.text} issued", GATEWAY_ACTOR
        )
    return receipt


def reason_text(errors: tuple[ReceiptError, ...]) -> str:
    return "; ".join(f"{e.code} {e.detail or e.text}" for e in errors)


def reject(
    conn: Connection,
    rt: Runtime,
    message: repo.MessageRow,
    stage: Stage,
    errors: tuple[ReceiptError, ...],
    *,
    notice: NeedNotice | None = None,
    actor: str = GATEWAY_ACTOR,
    answered_by: Organisation | None = None,
) -> None:
    reason = reason_text(errors)
    repo.set_status(conn, message, MessageStatus.REJECTED, stage, reason, actor, reason=reason)
    issue(conn, rt, message, ReceiptStatus.REJECTED, errors, notice=notice, answered_by=answered_by)
