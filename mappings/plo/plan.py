"""Plan transfer <-> MsgHead v1.2 with our IndividuellPlan content.

No national message exists for moving an individual plan between kommuner, so the MsgInfo
type is our own (``IP_PLAN``, not in code list 8279) and the content is IndividuellPlan
(schemas/ip-melding-v1.xsd) with every § 19 item. The patient stands in MsgHead/Patient.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.domain.plan import PlanTransfer
from mappings.plo import ipcontent, msghead
from mappings.plo.msghead import Document, Envelope, Party

MSG_TYPE = ("IP_PLAN", "Individuell plan (ip-melding v1)")


def transfer_to_msghead(
    transfer: PlanTransfer,
    *,
    msg_id: str,
    receiver: Party,
    conversation: msghead.ConversationRef | None = None,
) -> etree._Element:
    parts = msghead.split_sender(
        transfer.sender,
        sender_message_id=transfer.sender_message_id,
        source_endpoint=transfer.source_endpoint,
        msg_id=msg_id,
    )
    plan = transfer.plan
    envelope = Envelope(
        msg_type=MSG_TYPE[0],
        msg_type_text=MSG_TYPE[1],
        msg_id=msg_id,
        generated_at=transfer.sent_at,
        sender=parts.party,
        receiver=receiver,
        patient=plan.patient,
        conversation=conversation,
    )
    overforing = ipcontent.transfer_content(
        sender_message_id=parts.sender_message_id,
        source_endpoint=parts.source_endpoint,
        new_kommune_nr=transfer.new_kommune_nr,
        contact_=parts.contact,
        department=parts.department,
    )
    content = ipcontent.plan_content(plan, overforing)
    return msghead.build_msghead(envelope, [Document(content, issued_at=transfer.sent_at)])


def msghead_to_transfer(
    root: etree._Element, *, allow_synthetic_ids: bool
) -> tuple[PlanTransfer, Envelope]:
    envelope, content, patient = msghead.open_message(
        root,
        MSG_TYPE[0],
        ipcontent.PLAN_ROOT,
        "an IP_PLAN message needs the IndividuellPlan document",
        allow_synthetic_ids=allow_synthetic_ids,
    )
    plan = ipcontent.checked(lambda: ipcontent.read_plan_content(content, patient), "plan")
    fields: dict[str, Any] = ipcontent.checked(
        lambda: ipcontent.read_transfer_content(content.find(ipcontent.TRANSFER)),
        "Overforing",
    )
    sender, endpoint, sender_message_id = msghead.join_sender(
        envelope,
        sender_message_id=fields.get("sender_message_id"),
        source_endpoint=fields.get("source_endpoint"),
        department=fields.get("department"),
        contact=fields.get("contact"),
    )
    transfer = ipcontent.checked(
        lambda: PlanTransfer(
            sender_message_id=sender_message_id,
            sent_at=envelope.generated_at,
            source_endpoint=endpoint,
            sender=sender,
            new_kommune_nr=fields.get("new_kommune_nr"),
            plan=plan,
        ),
        "plan transfer",
    )
    return transfer, envelope
