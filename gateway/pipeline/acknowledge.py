"""Acknowledgement by the KE, and the receipt it sends back to the hospital."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from gateway.domain.content import load_content
from gateway.domain.model import Organisation
from gateway.domain.plan import PlanTransfer
from gateway.domain.receipt import ReceiptError, ReceiptStatus
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline import plan_status, receipts
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
    entry = repo.inbox_entry(conn, kommune_nr, message_id)
    message = repo.get_message(conn, message_id)
    if entry is None or message is None:
        raise NotInInbox(message_id)
    if entry["acked_at"] is not None:
        return AckResult(message_id, message.status, repeated=True)
    repo.mark_acked(conn, message_id)
    return record(conn, rt, message, errors, actor=f"ke:{kommune_nr}", detail="acknowledged by KE")


def record(
    conn: Connection,
    rt: Runtime,
    message: repo.MessageRow,
    errors: tuple[ReceiptError, ...],
    *,
    actor: str,
    detail: str,
) -> AckResult:
    """Record the recipient's answer and send the sender its receipt: OK, or the recipient's
    rejection with its codes. The same for every adapter (KE inbox ack, FHIR response, AppRec).

    An answer for a message already answered changes nothing; one that comes after the gateway
    gave up (DEAD) still stands, since the recipient has the message.
    """
    if message.status in (MessageStatus.ACKNOWLEDGED, MessageStatus.REJECTED):
        return AckResult(message.id, message.status, repeated=True)
    if message.status in (MessageStatus.ROUTED, MessageStatus.RETRYING):
        # the answer came before the delivery stage had recorded the delivery
        message = repo.set_status(
            conn, message, MessageStatus.DELIVERED, Stage.DELIVER, "seen by the recipient", actor
        )
    if message.status not in (MessageStatus.DELIVERED, MessageStatus.DEAD):
        raise repo.StaleStatus(message.id)
    assert message.canonical is not None
    notice = load_content(message.kind, message.canonical)
    unit = rt.directory.recipient_unit(message.recipient_kommune, message.recipient_her_id)
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
            from_recipient=True,
        )
        return AckResult(message.id, MessageStatus.REJECTED, repeated=False)
    message = repo.set_status(
        conn, message, MessageStatus.ACKNOWLEDGED, Stage.ACKNOWLEDGE, detail, actor
    )
    receipts.issue(conn, rt, message, ReceiptStatus.OK, (), notice=notice, answered_by=answered_by)
    if isinstance(notice, PlanTransfer) and message.recipient_kommune and not message.parent_id:
        # a transfer reached the new kommune: the old one is told to close and hand over
        plan_status.transferred(conn, rt, message)
    return AckResult(message.id, MessageStatus.ACKNOWLEDGED, repeated=False)
