"""A plan status message as MsgHead ``DIALOG_HELSEFAGLIG`` with one Dialogmelding 1.1 Notat.

Dialogmelding because every EPJ and IP platform on the health network shows it, and a status
is something a case worker reads and acts on (close the plan, hand over access, stop using
it); no IP-XML element exists for it. The Notat's text is a list of labelled lines
(``Plan-id: ...``), so a platform can also read the plan id, version and event from it, as
:func:`msghead_to_status` does. The person is in the MsgHead ``Patient``, as for any
Dialogmelding about a patient, so the receiver files it with the plan.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from pydantic import ValidationError

from gateway.domain.model import Organisation, Sender
from gateway.domain.plan import PLAN_EVENT_TEXT, PlanStatusMessage
from gateway.domain.receipt import Refused
from mappings.plo import msghead
from mappings.plo import namespaces as ns
from mappings.plo.dialog import TOPIC
from mappings.plo.msghead import Document, Envelope, Party

MSG_TYPE = ("DIALOG_HELSEFAGLIG", "Helsefaglig dialog")
SUBJECT = "Individuell plan: status"

_D = f"{{{ns.DIALOG_1_1}}}"
_H = f"{{{ns.XHTML}}}"
_NSMAP = {None: ns.DIALOG_1_1}

#: label -> field, in the order the lines are written
_LABELS = {
    "Hendelse": "event",
    "Plan-id": "plan_id",
    "Versjon": "version",
    "Gjelder melding": "regarding",
    "Statusmelding": "message_ref",
    "Ny kommune": "new_kommune_nr",
    "Ny ansvarlig": "new_responsible_name",
    "Ny ansvarlig HER-id": "new_responsible_her_id",
    "Ny ansvarlig orgnr": "new_responsible_orgnr",
}


def _d(tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.Element(_D + tag, attrib=attrs, nsmap=_NSMAP)
    if text is not None:
        element.text = text
    return element


def _lines(status: PlanStatusMessage) -> list[tuple[str, str]]:
    responsible = status.new_responsible
    values: dict[str, str | None] = {
        "event": status.event.value,
        "plan_id": status.plan_id,
        "version": str(status.version),
        "regarding": status.regarding,
        "message_ref": status.message_ref,
        "new_kommune_nr": status.new_kommune_nr,
        "new_responsible_name": responsible.name if responsible else None,
        "new_responsible_her_id": (
            str(responsible.her_id) if responsible and responsible.her_id else None
        ),
        "new_responsible_orgnr": responsible.orgnr if responsible else None,
    }
    return [(label, v) for label, field in _LABELS.items() if (v := values[field]) is not None]


def status_dialog(status: PlanStatusMessage) -> etree._Element:
    """Dialogmelding 1.1 with one Notat: the status in words, then its labelled lines."""
    div = etree.Element(_H + "div", nsmap={None: ns.XHTML})
    etree.SubElement(div, _H + "p").text = f"{PLAN_EVENT_TEXT[status.event]}."
    for label, value in _lines(status):
        p = etree.SubElement(div, _H + "p")
        b = etree.SubElement(p, _H + "b")
        b.text = f"{label}: "
        b.tail = value
    notat = _d("Notat")
    notat.append(_d("TemaKodet", V=TOPIC[0], S=ns.NOTAT_TOPIC, DN=TOPIC[1]))
    notat.append(_d("Tema", SUBJECT))
    content = _d("TekstNotatInnhold")
    content.append(div)
    notat.append(content)
    notat.append(_d("DatoNotat", status.sent_at.date().isoformat()))
    root = _d("Dialogmelding")
    root.append(notat)
    return root


def status_to_msghead(status: PlanStatusMessage, *, msg_id: str, receiver: Party) -> etree._Element:
    envelope = Envelope(
        msg_type=MSG_TYPE[0],
        msg_type_text=MSG_TYPE[1],
        msg_id=msg_id,
        generated_at=status.sent_at,
        sender=Party(status.sender.organisation, status.sender.department),
        receiver=receiver,
        patient=status.patient,
    )
    document = Document(status_dialog(status), issued_at=status.sent_at, description=SUBJECT)
    return msghead.build_msghead(envelope, [document])


def msghead_to_status(root: etree._Element, *, allow_synthetic_ids: bool) -> PlanStatusMessage:
    """Read a status message back from its labelled lines (what a receiving platform does)."""
    envelope, dialog, patient = msghead.open_message(
        root,
        MSG_TYPE[0],
        _D + "Dialogmelding",
        "a plan status needs its Dialogmelding",
        allow_synthetic_ids=allow_synthetic_ids,
    )
    found: dict[str, Any] = {}
    for b in dialog.iterfind(f"{_D}Notat/{_D}TekstNotatInnhold//{_H}p/{_H}b"):
        label = (b.text or "").strip().removesuffix(":")
        if label in _LABELS:
            found[_LABELS[label]] = (b.tail or "").strip()
    name = found.pop("new_responsible_name", None)
    her_id = found.pop("new_responsible_her_id", None)
    orgnr = found.pop("new_responsible_orgnr", None)
    try:
        return PlanStatusMessage.model_validate(
            {
                **found,
                "sent_at": envelope.generated_at,
                "sender": Sender(
                    organisation=envelope.sender.organisation,
                    department=envelope.sender.department,
                ),
                "patient": patient,
                "new_responsible": (
                    Organisation(name=name, her_id=int(her_id) if her_id else None, orgnr=orgnr)
                    if name
                    else None
                ),
            }
        )
    except (ValidationError, ValueError):
        raise Refused.one("T02", "the plan status lines are incomplete or invalid") from None
