"""Issuing receipts (AppRec) to the sender, and rejecting with one.

A message the gateway made from another (a child, ``parent_id`` set) does not answer the
sender itself: its receipt is kept, and the message it came from hears of it. A plan update
(no recipient of its own) answers once every party's copy has -- OK when all acknowledged,
else rejected with each refusing party's reasons; a message with its own recipient (a
transfer, a notice whose health trust takes part) is answered by that recipient. A status
message about a plan answers no one.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import Connection

from gateway.domain.content import Content, load_content
from gateway.domain.model import MessageKind, Organisation
from gateway.domain.receipt import Receipt, ReceiptError, ReceiptStatus
from gateway.domain.status import MessageStatus, Stage
from gateway.runtime import Runtime
from gateway.store import repository as repo
from gateway.transport import Command, command_record
from mappings.plo.notice import MSG_TYPE as NOTICE_MSG_TYPE

#: content types of the MsgHead path
XML_TYPES = frozenset({"application/xml", "text/xml"})

GATEWAY_ACTOR = "gateway"


def issue(
    conn: Connection,
    rt: Runtime,
    message: repo.MessageRow,
    status: ReceiptStatus,
    errors: tuple[ReceiptError, ...],
    *,
    notice: Content | None,
    answered_by: Organisation | None = None,
) -> Receipt:
    """Store the receipt and queue it on the receipts topic, in the caller's transaction."""
    receipt = Receipt(
        generated_at=repo.now(),
        sender=answered_by or Organisation(name=rt.settings.gateway_name),
        receiver=notice.sender.organisation if notice else None,
        receiver_department=notice.sender.department if notice else None,
        status=status,
        errors=errors,
        original_message_type=original_type(message),
        original_message_id=message.sender_message_id,
        # refused at the door there is no notice to say when it was sent: when it came
        original_issued_at=notice.sent_at if notice else message.received_at,
        gateway_message_id=uuid.UUID(message.id),
    )
    if message.parent_id is not None:
        if repo.save_receipt(conn, message.id, receipt):
            repo.add_event(
                conn, message.id, Stage.RECEIPT, None, f"answer {status.text} kept", GATEWAY_ACTOR
            )
        if message.kind != MessageKind.PLAN_STATUS:
            # also when the answer is the one kept: a DEAD copy discarded keeps its receipt
            # but has now answered for good
            _party_answered(conn, rt, message.parent_id)
        return receipt
    # on the topic without the free texts: a recipient's words (a KE's reason for refusing)
    # may name the person, and a broker is no place for that; the codes say what happened and
    # GET /receipts/{id} gives the whole receipt to the sender alone
    on_topic = receipt.model_copy(
        update={"errors": tuple(e.model_copy(update={"detail": None}) for e in receipt.errors)}
    )
    body = on_topic.to_json()
    if repo.save_receipt(conn, message.id, receipt):
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


#: a party has the plan, or has refused it for good
_ANSWERED = frozenset({MessageStatus.ACKNOWLEDGED, MessageStatus.REJECTED})


def _party_answered(conn: Connection, rt: Runtime, parent_id: str) -> None:
    """Tell the plan message a party answered; a message handed to its parties only (an
    update: no recipient of its own) answers the sender once all have."""
    parent = repo.get_message(conn, parent_id)
    if parent is None:
        return
    children = [c for c in repo.children_of(conn, parent_id) if c.kind == parent.kind]
    answered = [c for c in children if c.status in _ANSWERED]
    repo.add_event(
        conn,
        parent.id,
        Stage.ACKNOWLEDGE,
        None,
        f"{len(answered)} of {len(children)} parties answered: "
        + ", ".join(f"{_party_name(rt, c)} {c.status}" for c in answered),
        GATEWAY_ACTOR,
    )
    if parent.recipient_her_id is not None or parent.status is not MessageStatus.DELIVERED:
        return  # it has a recipient of its own, which answers the sender
    if len(answered) < len(children):
        return
    content = load_content(parent.kind, parent.canonical) if parent.canonical else None
    errors: list[ReceiptError] = []
    for c in answered:
        if c.status is MessageStatus.REJECTED:
            kept = repo.get_receipt(conn, c.id)
            why = kept.errors if kept and kept.errors else (ReceiptError(code="X99"),)
            errors += [
                ReceiptError(code=e.code, detail=f"{_party_name(rt, c)}: {e.detail or e.text}")
                for e in why
            ]
    if errors:
        reject(conn, rt, parent, Stage.ACKNOWLEDGE, tuple(errors), notice=content)
        return
    repo.set_status(
        conn,
        parent,
        MessageStatus.ACKNOWLEDGED,
        Stage.ACKNOWLEDGE,
        f"every party has it ({len(children)})",
        GATEWAY_ACTOR,
    )
    issue(conn, rt, parent, ReceiptStatus.OK, (), notice=content)


def _party_name(rt: Runtime, child: repo.MessageRow) -> str:
    unit = rt.directory.recipient_unit(None, child.recipient_her_id)
    return unit.name if unit else f"HER-id {child.recipient_her_id}"


def original_type(message: repo.MessageRow) -> str:
    """What the sender called its message: the MsgHead type for XML, our kind for FHIR."""
    if message.content_type in XML_TYPES and message.kind == MessageKind.NEED_NOTICE:
        return NOTICE_MSG_TYPE[0]
    return message.kind


def dead(
    conn: Connection,
    rt: Runtime,
    message: repo.MessageRow,
    stage: Stage,
    errors: tuple[ReceiptError, ...],
    *,
    notice: Content | None = None,
    **fields: Any,
) -> Receipt:
    """DEAD: the sender is told (a rejecting receipt), the dead-letter topic gets a record (for
    whatever watches it; it holds no person data), and the operator may retry the message
    later, e.g. once the directory names a KE; a later answer replaces this receipt."""
    reason = reason_text(errors)
    repo.set_status(
        conn,
        message,
        MessageStatus.DEAD,
        stage,
        reason,
        GATEWAY_ACTOR,
        reason=reason,
        next_attempt_at=None,
        **fields,
    )
    record = command_record(
        rt.topics.dlq,
        message.recipient_kommune or message.id,
        Command(message.id, message.generation, message.attempts),
        message.id,
    )
    codes = ",".join(e.code for e in errors)
    repo.add_outbox(
        conn,
        repo.OutboxRecord(
            record.topic, record.key, record.value, [*record.headers, ("codes", codes)]
        ),
    )
    return issue(conn, rt, message, ReceiptStatus.REJECTED, errors, notice=notice)


def reason_text(errors: tuple[ReceiptError, ...]) -> str:
    return "; ".join(f"{e.code} {e.detail or e.text}" for e in errors)


def codes_text(errors: tuple[ReceiptError, ...]) -> str:
    """The codes with the code list's own words: for what someone else wrote."""
    return "; ".join(f"{e.code} {e.text}" for e in errors) + " (the recipient's text: receipt)"


def reject(
    conn: Connection,
    rt: Runtime,
    message: repo.MessageRow,
    stage: Stage,
    errors: tuple[ReceiptError, ...],
    *,
    notice: Content | None = None,
    actor: str = GATEWAY_ACTOR,
    answered_by: Organisation | None = None,
    from_recipient: bool = False,
) -> Receipt:
    """``from_recipient``: the errors are a recipient's; its words stay in the receipt (sealed,
    for the sender), the status and timeline, which every operator sees, get the codes and the
    code list's texts, since a recipient's words may name the person."""
    reason = codes_text(errors) if from_recipient else reason_text(errors)
    repo.set_status(conn, message, MessageStatus.REJECTED, stage, reason, actor, reason=reason)
    return issue(
        conn, rt, message, ReceiptStatus.REJECTED, errors, notice=notice, answered_by=answered_by
    )
