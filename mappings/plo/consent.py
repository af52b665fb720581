"""A consent statement on its own, for systems that speak KITH XML and not FHIR: MsgHead
``IP_SAMTYKKE`` with our ``SamtykkeErklaering`` document (schemas/ip-melding-v1.xsd), the
person as the MsgHead ``Patient``.

It carries what a standalone FHIR Consent does (mappings/fhir/consent.py): the consent's own
id, given / refused / withdrawn, the purposes, who consented (and why the person could not),
the day, the period it holds for, the kommuner and participants it names. The same id again
with another status changes that consent; that is how a withdrawal names what it withdraws.
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from gateway.domain.consent import ConsentPurpose, ConsentRecord
from gateway.domain.model import ConsentGiver, Patient
from gateway.domain.receipt import Refused
from mappings.plo import ipcontent, msghead
from mappings.plo import namespaces as ns
from mappings.plo.msghead import Document, Envelope, Party
from mappings.plo.xmlsafe import text_of

MSG_TYPE = ("IP_SAMTYKKE", "Samtykke til individuell plan")
ROOT = f"{{{ns.IP}}}SamtykkeErklaering"
_P = f"{{{ns.IP}}}"
_NSMAP = {None: ns.IP}


def _e(tag: str, text: str | None = None) -> etree._Element:
    element = etree.Element(_P + tag, nsmap=_NSMAP)
    element.text = text
    return element


def _status(record: ConsentRecord) -> str:
    if record.withdrawn_at is not None:
        return "withdrawn"
    return "refused" if record.refused else "given"


def statement(record: ConsentRecord) -> etree._Element:
    """The ``SamtykkeErklaering`` document."""
    root = _e("SamtykkeErklaering")
    root.append(_e("Id", record.id))
    root.append(_e("Status", _status(record)))
    root.extend(_e("Formaal", p.value) for p in record.purposes)
    root.append(_e("GittAv", record.given_by.value))
    if record.lacks_capacity_reason:
        root.append(_e("ManglendeSamtykkekompetanse", record.lacks_capacity_reason))
    root.append(_e("Dato", record.given_on.isoformat()))
    if record.valid_from:
        root.append(_e("GyldigFra", record.valid_from.isoformat()))
    if record.valid_until:
        root.append(_e("GyldigTil", record.valid_until.isoformat()))
    if record.withdrawn_at:
        root.append(_e("TrukketTilbake", msghead.xml_datetime(record.withdrawn_at)))
    root.extend(_e("Kommune", k) for k in record.kommuner)
    root.extend(_e("Deltaker", p) for p in record.participants)
    return root


def consent_to_msghead(
    record: ConsentRecord,
    patient: Patient,
    *,
    msg_id: str,
    sender: Party,
    receiver: Party,
    generated_at: dt.datetime,
) -> etree._Element:
    envelope = Envelope(
        msg_type=MSG_TYPE[0],
        msg_type_text=MSG_TYPE[1],
        msg_id=msg_id,
        generated_at=generated_at,
        sender=sender,
        receiver=receiver,
        patient=patient,
    )
    return msghead.build_msghead(envelope, [Document(statement(record), issued_at=generated_at)])


def msghead_to_consent(
    root: etree._Element, *, allow_synthetic_ids: bool, now: dt.datetime
) -> tuple[Patient, ConsentRecord, Envelope]:
    """(the person, the record, the envelope) of an ``IP_SAMTYKKE`` the schemas accepted;
    ``now``: when the gateway learnt of it (and of a withdrawal that names no time)."""
    envelope, element, patient = msghead.open_message(
        root,
        MSG_TYPE[0],
        ROOT,
        "an IP_SAMTYKKE message needs the SamtykkeErklaering document",
        allow_synthetic_ids=allow_synthetic_ids,
    )

    def texts(tag: str) -> tuple[str, ...]:
        return tuple(t for t in (text_of(e) for e in element.iterfind(_P + tag)) if t)

    def one(tag: str) -> str | None:
        found = texts(tag)
        return found[0] if found else None

    def day(tag: str) -> dt.date | None:
        text = one(tag)
        return dt.date.fromisoformat(text[:10]) if text else None

    status = one("Status")
    withdrawn = one("TrukketTilbake")
    if withdrawn is not None and status != "withdrawn":
        raise Refused.one("T02", "SamtykkeErklaering: TrukketTilbake only on a withdrawal")

    def read() -> ConsentRecord:
        return ConsentRecord(
            id=one("Id") or "",
            purposes=tuple(dict.fromkeys(ConsentPurpose(p) for p in texts("Formaal"))),
            given_by=ConsentGiver(one("GittAv") or ""),
            lacks_capacity_reason=one("ManglendeSamtykkekompetanse"),
            given_on=day("Dato") or dt.date.min,
            valid_from=day("GyldigFra"),
            valid_until=day("GyldigTil"),
            refused=status == "refused",
            withdrawn_at=(
                msghead.read_datetime(withdrawn, "SamtykkeErklaering/TrukketTilbake")
                if withdrawn
                else now
                if status == "withdrawn"
                else None
            ),
            kommuner=texts("Kommune"),
            participants=texts("Deltaker"),
            recorded_at=now,
        )

    return patient, ipcontent.checked(read, "SamtykkeErklaering"), envelope
