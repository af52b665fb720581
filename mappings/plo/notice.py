"""Need-for-IP notice <-> MsgHead v1.2 with Dialogmelding 1.1 and our BehovForIP content.

Written as MsgHead ``DIALOG_HELSEFAGLIG`` with two documents: the Dialogmelding any EPJ shows
(mappings/plo/dialog.py) and, for platforms that take it, the structured BehovForIP
(schemas/ip-melding-v1.xsd). Read from the MsgHead (patient, sender, time, id) and BehovForIP;
a Dialogmelding without BehovForIP is not a notice the gateway can act on (T10): the gateway
does not guess what a hospital asked for from prose.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.domain.model import NeedNotice, Organisation, Sender
from gateway.domain.receipt import Refused
from mappings.plo import ipcontent, msghead
from mappings.plo.dialog import dialog_notice
from mappings.plo.msghead import Document, Envelope, Party

MSG_TYPE = ("DIALOG_HELSEFAGLIG", "Helsefaglig dialog")
HER_ENDPOINT = "urn:oid:2.16.578.1.12.4.1.2"


def notice_to_msghead(
    notice: NeedNotice,
    *,
    msg_id: str,
    receiver: Party,
    structured: bool = True,
    conversation: msghead.ConversationRef | None = None,
) -> etree._Element:
    """The notice as a MsgHead element, ``msg_id`` (a GUID) as its MsgId."""
    sender = notice.sender
    department = sender.department
    in_msghead = department is not None and msghead.has_ident(department)
    envelope = Envelope(
        msg_type=MSG_TYPE[0],
        msg_type_text=MSG_TYPE[1],
        msg_id=msg_id,
        generated_at=notice.sent_at,
        sender=Party(sender.organisation, department if in_msghead else None),
        receiver=receiver,
        patient=notice.patient,
        conversation=conversation,
    )
    docs = [Document(dialog_notice(notice), issued_at=notice.sent_at)]
    if structured:
        content = ipcontent.notice_content(
            sender_message_id=None
            if notice.sender_message_id == msg_id
            else notice.sender_message_id,
            source_endpoint=None
            if notice.source_endpoint == default_endpoint(sender.organisation, department)
            else notice.source_endpoint,
            requested=notice.requested,
            need=notice.need,
            urgent=notice.urgent,
            next_of_kin_involved=notice.next_of_kin_involved,
            existing_coordinator=notice.existing_coordinator,
            interpreter_language=notice.interpreter_language,
            contact_=sender.contact,
            department=None if in_msghead else department,
            attestation=notice.consent,
        )
        docs.append(Document(content, issued_at=notice.sent_at))
    return msghead.build_msghead(envelope, docs)


def default_endpoint(organisation: Organisation, department: Organisation | None) -> str | None:
    """Where a MsgHead sender is reached: its most specific HER-id (Adresseregisteret)."""
    for unit in (department, organisation):
        if unit is not None and unit.her_id is not None:
            return f"{HER_ENDPOINT}:{unit.her_id}"
    return None


def msghead_to_notice(
    root: etree._Element, *, allow_synthetic_ids: bool
) -> tuple[NeedNotice, Envelope]:
    """The notice and its envelope from a MsgHead the schema set has accepted."""
    envelope = msghead.read_envelope(root, allow_synthetic_ids=allow_synthetic_ids)
    if envelope.msg_type != MSG_TYPE[0]:
        raise Refused.one("T10", f"message type {envelope.msg_type} is not handled here")
    content = next(
        (d.content for d in msghead.documents(root) if d.content.tag == ipcontent.NOTICE_ROOT),
        None,
    )
    if content is None:
        raise Refused.one(
            "T10",
            "a need-for-IP notice needs the structured BehovForIP document "
            "(ip-melding v1) beside the Dialogmelding",
        )
    if envelope.patient is None:
        raise Refused.one("E30", "MsgHead has no Patient")
    fields: dict[str, Any] = ipcontent.checked(
        lambda: ipcontent.read_notice_content(content), "BehovForIP"
    )
    department = envelope.sender.department or fields.pop("department")
    fields.pop("department", None)
    organisation = envelope.sender.organisation
    endpoint = fields.pop("source_endpoint") or default_endpoint(organisation, department)
    if endpoint is None:
        raise Refused.one("E20", "the sender has no HER-id to answer to")
    sender_message_id = fields.pop("sender_message_id") or envelope.msg_id
    contact = fields.pop("contact")
    notice = ipcontent.checked(
        lambda: NeedNotice(
            sender_message_id=sender_message_id,
            sent_at=envelope.generated_at,
            source_endpoint=endpoint,
            patient=envelope.patient,
            sender=Sender(organisation=organisation, department=department, contact=contact),
            **fields,
        ),
        "notice",
    )
    return notice, envelope
