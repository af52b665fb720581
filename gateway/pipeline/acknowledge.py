"""Acknowledgement by the KE, and the receipt it sends back to the hospital."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from gateway.domain.model import NeedNotice, Organisation
from gateway.domain.receipt import ReceiptError, ReceiptStatus
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline import receipts
from gateway.runtime import Runtime
from gateway.store import repository as repo


class NotInInbox(LookupError):
    """No such message in this kommune's inbox (whether it exists elsewhere is not told)."""


@dataclass(frozen=True)
class AckResult:
    message_id: str
    status: MessageStatus
    #: this call changed nothing: the message was acknowledged before
    repeated: bool


async def acknowledge(
    rt: Runtime, kommune_nr: str, message_id: str, errors: tuple[ReceiptError, ...] = ()
) -> AckResult:
    """The KE confirms it has the notice (OK), or rejects it with AppRec error codes."""
    result = await rt.db.write_grouped(_acknowledge, rt, kommune_nr, message_id, errors)
    if not result.repeated:
        rt.committed()
    return result


def _acknowledge(
    conn: Connection,
    rt: Runtime,
    kommune_nr: str,
    message_id: str,
    errors: tuple[ReceiptError, ...],
) -> AckResult:
    actor = f"ke:{kommune_nr}"
    entry = repo.inbox_entry(conn, kommune_nr, message_id)
    message = repo.get_message(conn, message_id)
    if entry is None or message is None:
        raise NotInInbox(message_id)
    if entry["acked_at"] is not None:
        return AckResult(message_id, message.status, repeated=True)
    if message.status in (MessageStatus.ROUTED, MessageStatus.RETRYING):
        # The KE fetched it before the delivery stage had recorded the delivery.
        message = repo.set_status(
            conn, message, MessageStatus.DELIVERED, Stage.DELIVER, "seen in KE inbox", actor
        )
    repo.mark_acked(conn, message_id)
    assert message.canonical is not None
    notice = NeedNotice.model_validate_json(message.canonical)
    unit = rt.directory.unit_for(kommune_nr)
    answered_by = Organisation(name=unit.name, her_id=unit.her_id) if unit else None
    if errors:
        receipts.reject(
            conn,
            rt,
            message,
            Stage.ACKNOWLEDGE,
            errors,
            notice=notice,
            actor=actor,
            answered_by=answered_by,
        )
        return AckResult(message_id, MessageStatus.REJECTED, repeated=False)
    repo.set_status(
        conn, message, MessageStatus.ACKNOWLEDGED, Stage.ACKNOWLEDGE, "acknowledged by KE", actor
    )
    receipts.issue(conn, rt, message, ReceiptStatus.OK, (), notice=notice, answered_by=answered_by)
    return AckResult(message_id, MessageStatus.ACKNOWLEDGED, repeated=False)
