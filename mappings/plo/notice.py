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

from gateway.domain.model import NeedNotice
from mappings.plo import ipcontent, msghead
from mappings.plo.dialog import dialog_notice
from mappings.plo.msghead import Document, Envelope, Party

MSG_TYPE = ("DIALOG_HELSEFAGLIG", "Helsefaglig dialog")


def notice_to_msghead(
    notice: NeedNotice,
    *,
    msg_id: str,
    receiver: Party,
    structured: bool = True,
    conversation: msghead.ConversationRef | None = None,
) -> etree._Element:
    """The notice as a MsgHead element, ``msg_id`` (a GUID) as its MsgId."""
    parts = msghead.split_sender(
        notice.sender,
        sender_message_id=notice.sender_message_id,
        source_endpoint=notice.source_endpoint,
        msg_id=msg_id,
    )
    envelope = Envelope(
        msg_type=MSG_TYPE[0],
        msg_type_text=MSG_TYPE[1],
        msg_id=msg_id,
        generated_at=notice.sent_at,
        sender=parts.party,
        receiver=receiver,
        patient=notice.patient,
        conversation=conversation,
    )
    docs = [Document(dialog_notice(notice), issued_at=notice.sent_at)]
    if structured:
        content = ipcontent.notice_content(
            sender_message_id=parts.sender_message_id,
            source_endpoint=parts.source_endpoint,
            requested=notice.requested,
            need=notice.need,
            urgent=notice.urgent,
            next_of_kin_involved=notice.next_of_kin_involved,
            existing_coordinator=notice.existing_coordinator,
            health_trust_takes_part=notice.health_trust_takes_part,
            interpreter_language=notice.interpreter_language,
            contact_=parts.contact,
            department=parts.department,
            attestation=notice.consent,
        )
        docs.append(Document(content, issued_at=notice.sent_at))
    return msghead.build_msghead(envelope, docs)


def msghead_to_notice(
    root: etree._Element, *, allow_synthetic_ids: bool
) -> tuple[NeedNotice, Envelope]:
    """The notice and its envelope from a MsgHead the schema set has accepted."""
    envelope, content, patient = msghead.open_message(
        root,
        MSG_TYPE[0],
        ipcontent.NOTICE_ROOT,
        "a need-for-IP notice needs the structured BehovForIP document "
        "(ip-melding v1) beside the Dialogmelding",
        allow_synthetic_ids=allow_synthetic_ids,
    )
    fields: dict[str, Any] = ipcontent.checked(
        lambda: ipcontent.read_notice_content(content), "BehovForIP"
    )
    sender, endpoint, sender_message_id = msghead.join_sender(
        envelope,
        sender_message_id=fields.pop("sender_message_id"),
        source_endpoint=fields.pop("source_endpoint"),
        department=fields.pop("department"),
        contact=fields.pop("contact"),
    )
    notice = ipcontent.checked(
        lambda: NeedNotice(
            sender_message_id=sender_message_id,
            sent_at=envelope.generated_at,
            source_endpoint=endpoint,
            patient=patient,
            sender=sender,
            **fields,
        ),
        "notice",
    )
    return notice, envelope
