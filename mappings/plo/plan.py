"""Plan transfer <-> MsgHead v1.2 with our IndividuellPlan content.

No national message exists for moving an individual plan between kommuner, so the MsgInfo
type is our own (``IP_PLAN``, not in code list 8279) and the content is IndividuellPlan
(schemas/ip-melding-v1.xsd) with every § 19 item. The patient stands in MsgHead/Patient.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.domain.model import Sender
from gateway.domain.plan import PlanTransfer
from gateway.domain.receipt import Refused
from mappings.plo import ipcontent, msghead
from mappings.plo.msghead import Document, Envelope, Party
from mappings.plo.notice import default_endpoint

MSG_TYPE = ("IP_PLAN", "Individuell plan (ip-melding v1)")


def transfer_to_msghead(
    transfer: PlanTransfer,
    *,
    msg_id: str,
    receiver: Party,
    conversation: msghead.ConversationRef | None = None,
) -> etree._Element:
    sender = transfer.sender
    department = sender.department
    in_msghead = department is not None and msghead.has_ident(department)
    plan = transfer.plan
    envelope = Envelope(
        msg_type=MSG_TYPE[0],
        msg_type_text=MSG_TYPE[1],
        msg_id=msg_id,
        generated_at=transfer.sent_at,
        sender=Party(sender.organisation, department if in_msghead else None),
        receiver=receiver,
        patient=plan.patient,
        conversation=conversation,
    )
    default = default_endpoint(sender.organisation, department)
    overforing = ipcontent.transfer_content(
        sender_message_id=None
        if transfer.sender_message_id == msg_id
        else transfer.sender_message_id,
        source_endpoint=None if transfer.source_endpoint == default else transfer.source_endpoint,
        new_kommune_nr=transfer.new_kommune_nr,
        contact_=sender.contact,
        department=None if in_msghead else department,
    )
    content = ipcontent.plan_content(plan, overforing)
    return msghead.build_msghead(envelope, [Document(content, issued_at=transfer.sent_at)])


def msghead_to_transfer(
    root: etree._Element, *, allow_synthetic_ids: bool
) -> tuple[PlanTransfer, Envelope]:
    envelope = msghead.read_envelope(root, allow_synthetic_ids=allow_synthetic_ids)
    if envelope.msg_type != MSG_TYPE[0]:
        raise Refused.one("T10", f"message type {envelope.msg_type} is not handled here")
    content = next(
        (d.content for d in msghead.documents(root) if d.content.tag == ipcontent.PLAN_ROOT),
        None,
    )
    if content is None:
        raise Refused.one("T10", "an IP_PLAN message needs the IndividuellPlan document")
    if envelope.patient is None:
        raise Refused.one("E30", "MsgHead has no Patient")
    patient = envelope.patient
    plan = ipcontent.checked(lambda: ipcontent.read_plan_content(content, patient), "plan")
    fields: dict[str, Any] = ipcontent.checked(
        lambda: ipcontent.read_transfer_content(content.find(ipcontent.TRANSFER)),
        "Overforing",
    )
    department = envelope.sender.department or fields.get("department")
    organisation = envelope.sender.organisation
    endpoint = fields.get("source_endpoint") or default_endpoint(organisation, department)
    if endpoint is None:
        raise Refused.one("E20", "the sender has no HER-id to answer to")
    transfer = ipcontent.checked(
        lambda: PlanTransfer(
            sender_message_id=fields.get("sender_message_id") or envelope.msg_id,
            sent_at=envelope.generated_at,
            source_endpoint=endpoint,
            sender=Sender(
                organisation=organisation, department=department, contact=fields.get("contact")
            ),
            new_kommune_nr=fields.get("new_kommune_nr"),
            plan=plan,
        ),
        "plan transfer",
    )
    return transfer, envelope
