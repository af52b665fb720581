"""KITH Hodemelding (MsgHead v1.2): the envelope around every message on the health network.

What the envelope holds — message type, id, time, sender and receiver (with the department as
a nested Organisation), the patient, the conversation a reply belongs to — is read into
:class:`Envelope`; the documents it carries are handed on as elements for the content
mappings (Dialogmelding, our IP content) to read.

Real messages are written by many systems: codes may carry stray spaces (``V=" HER"``), GenDate
often has no UTC offset (it is then Norwegian local time), and the patient's kommune stands in
``Address/County``. Reading is lenient where the meaning is clear; writing is strict and
validates against the official schema.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from lxml import etree
from pydantic import ValidationError

from gateway.domain.identifiers import InvalidIdentifier, PersonIdKind, parse_person_id
from gateway.domain.model import (
    LOCAL_ID_REASON,
    Contact,
    Organisation,
    Patient,
    PersonName,
    Sender,
)
from gateway.domain.receipt import ReceiptError, Refused
from mappings.fhir.systems import HER_SYSTEM
from mappings.plo import namespaces as ns
from mappings.plo.xmlsafe import text_of

NORWAY = ZoneInfo("Europe/Oslo")
_M = f"{{{ns.MSGHEAD}}}"
#: MsgHead is written in the default namespace, as KITH's examples and real systems do
_NSMAP = {None: ns.MSGHEAD}
#: code list 8116 values we read as a person id of the patient
_PERSON_ID_TYPES = {kind.value: kind for kind in PersonIdKind}
_ORG_ID_TEXT = {"HER": "HER-id", "ENH": "Organisasjonsnummer i Enhetsregisteret"}
_PERSON_ID_TEXT = {
    "FNR": "Fødselsnummer",
    "DNR": "D-nummer",
    "FHN": "Felles hjelpenummer",
    "HNR": "H-nummer",
}
_GUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


@dataclass(frozen=True)
class Party:
    """A MsgHead Sender or Receiver: the organisation and, nested in it, the unit."""

    organisation: Organisation
    department: Organisation | None = None


@dataclass(frozen=True)
class ConversationRef:
    """On a reply: the message it answers and the conversation's first message."""

    ref_to_parent: str
    ref_to_conversation: str


@dataclass(frozen=True)
class Envelope:
    msg_type: str
    msg_type_text: str
    msg_id: str
    generated_at: dt.datetime
    sender: Party
    receiver: Party
    patient: Patient | None = None
    conversation: ConversationRef | None = None


@dataclass(frozen=True)
class Document:
    """One Document/RefDoc with XML content (MsgType ``XML``)."""

    content: etree._Element
    issued_at: dt.datetime | None = None
    description: str | None = None


# --------------------------------------------------------------------------- writing


def _m(tag: str, *children: etree._Element | None, text: str | None = None) -> etree._Element:
    element = etree.Element(_M + tag, nsmap=_NSMAP)
    if text is not None:
        element.text = text
    element.extend(c for c in children if c is not None)
    return element


def _code(tag: str, v: str, dn: str | None = None, s: str | None = None) -> etree._Element:
    element = etree.Element(_M + tag, V=v, nsmap=_NSMAP)
    if dn:
        element.set("DN", dn)
    if s:
        element.set("S", s)
    return element


def _ident(value: str, type_v: str, type_dn: str, system: str) -> etree._Element:
    return _m("Ident", _m("Id", text=value), _code("TypeId", type_v, type_dn, system))


def xml_datetime(value: dt.datetime) -> str:
    """xs:dateTime with the UTC offset (never naive: GenDate must say which time it is)."""
    return value.isoformat()


def organisation_element(org: Organisation, department: Organisation | None) -> etree._Element:
    """``Organisation`` with its idents; the department nested only when it has an ident.

    MsgHead requires an Ident on every Organisation: a department without HER-id or
    organisation number cannot stand here (the content mappings carry it instead).
    """
    idents = organisation_idents(org)
    if not idents:
        raise ValueError("a MsgHead Organisation needs a HER-id or an organisation number")
    nested = (
        organisation_element(department, None) if department and has_ident(department) else None
    )
    return _m("Organisation", _m("OrganisationName", text=org.name), *idents, nested)


def has_ident(org: Organisation) -> bool:
    return org.her_id is not None or org.orgnr is not None


def organisation_idents(org: Organisation) -> list[etree._Element]:
    idents = []
    if org.her_id is not None:
        idents.append(_ident(str(org.her_id), "HER", _ORG_ID_TEXT["HER"], ns.ORG_ID_TYPE))
    if org.orgnr is not None:
        idents.append(_ident(org.orgnr, "ENH", _ORG_ID_TEXT["ENH"], ns.ORG_ID_TYPE))
    return idents


def patient_element(patient: Patient) -> etree._Element:
    kind = patient.id_kind.value
    address = None
    if patient.kommune_nr:
        address = _m(
            "Address", _code("Type", "H", "Bostedsadresse"), _code("County", patient.kommune_nr)
        )
    return _m(
        "Patient",
        _m("FamilyName", text=patient.name.family),
        _m("GivenName", text=patient.name.given),
        _ident(patient.person_id, kind, _PERSON_ID_TEXT[kind], ns.PERSON_ID_TYPE),
        address,
    )


def build_msghead(envelope: Envelope, documents: Sequence[Document]) -> etree._Element:
    """The MsgHead element; the caller serialises (``to_bytes``) after any signing."""
    info = _m(
        "MsgInfo",
        _code("Type", envelope.msg_type, envelope.msg_type_text),
        _m("MIGversion", text=ns.MSGHEAD_MIG),
        _m("GenDate", text=xml_datetime(envelope.generated_at)),
        _m("MsgId", text=envelope.msg_id),
        _code("Ack", "J", "Ja"),
        _conversation(envelope.conversation),
        _m(
            "Sender", organisation_element(envelope.sender.organisation, envelope.sender.department)
        ),
        _m(
            "Receiver",
            organisation_element(envelope.receiver.organisation, envelope.receiver.department),
        ),
        patient_element(envelope.patient) if envelope.patient else None,
    )
    docs = []
    for doc in documents:
        ref = _m(
            "RefDoc",
            _code_ts("IssueDate", doc.issued_at),
            _code("MsgType", "XML", "XML-instans"),
            _m("Description", text=doc.description) if doc.description else None,
            _m("Content", doc.content),
        )
        docs.append(_m("Document", ref))
    return _m("MsgHead", info, *docs)


def _code_ts(tag: str, value: dt.datetime | None) -> etree._Element | None:
    if value is None:
        return None
    return etree.Element(_M + tag, V=xml_datetime(value), nsmap=_NSMAP)


def _conversation(ref: ConversationRef | None) -> etree._Element | None:
    if ref is None:
        return None
    return _m(
        "ConversationRef",
        _m("RefToParent", text=ref.ref_to_parent),
        _m("RefToConversation", text=ref.ref_to_conversation),
    )


def to_bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# --------------------------------------------------------------------------- reading


def read_envelope(root: etree._Element, *, allow_synthetic_ids: bool) -> Envelope:
    """The envelope of a MsgHead the schema has accepted, or Refused with the 8221 code."""
    if root.tag != _M + "MsgHead":
        raise Refused.one("T10", "not a MsgHead v1.2 document (root element or namespace)")
    info = _child(root, "MsgInfo")
    mig = text_of(info.find(_M + "MIGversion"))
    if mig != ns.MSGHEAD_MIG:
        raise Refused.one("T10", f"MsgHead MIGversion must be '{ns.MSGHEAD_MIG}'")
    type_el = info.find(_M + "Type")
    msg_type = code_value(type_el)
    if not msg_type:
        raise Refused.one("T02", "MsgInfo/Type has no V")
    msg_id = text_of(info.find(_M + "MsgId")) or ""
    if not _GUID.match(msg_id):
        raise Refused.one("E10", "MsgInfo/MsgId must be a GUID")
    errors: list[ReceiptError] = []
    patient_el = info.find(_M + "Patient")
    patient = None
    if patient_el is not None:
        patient = read_patient(patient_el, allow_synthetic_ids=allow_synthetic_ids, errors=errors)
    envelope = Envelope(
        msg_type=msg_type,
        msg_type_text=(type_el.get("DN") or "").strip() if type_el is not None else "",
        msg_id=msg_id,
        generated_at=read_datetime(text_of(info.find(_M + "GenDate")), "MsgInfo/GenDate"),
        sender=_party(_child(_child(info, "Sender"), "Organisation"), "Sender"),
        receiver=_party(_child(_child(info, "Receiver"), "Organisation"), "Receiver"),
        patient=patient,
        conversation=_read_conversation(info.find(_M + "ConversationRef")),
    )
    if errors:
        raise Refused(*errors)
    return envelope


def documents(root: etree._Element) -> list[Document]:
    """The XML documents of a MsgHead, in order (FileReference documents are skipped)."""
    found = []
    for doc in root.iterfind(f"{_M}Document/{_M}RefDoc"):
        content = doc.find(_M + "Content")
        if content is None:
            continue
        issued = doc.find(_M + "IssueDate")
        issued_v = issued.get("V") if issued is not None else None
        for element in content:
            if isinstance(element.tag, str):
                found.append(
                    Document(
                        content=element,
                        issued_at=_maybe_datetime(issued_v),
                        description=text_of(doc.find(_M + "Description")),
                    )
                )
    return found


def code_value(element: etree._Element | None) -> str | None:
    """A code's V with stray whitespace dropped (real messages have ``V=" HER"``)."""
    if element is None:
        return None
    value = (element.get("V") or "").strip()
    return value or None


def _child(parent: etree._Element, tag: str) -> etree._Element:
    found = parent.find(_M + tag)
    if found is None:
        raise Refused.one("T02", f"MsgHead: {etree.QName(parent).localname}/{tag} is missing")
    return found


def read_datetime(text: str | None, where: str) -> dt.datetime:
    """xs:dateTime; without an offset it is Norwegian local time, as the sender's clock."""
    value = _maybe_datetime(text)
    if value is None:
        raise Refused.one("T02", f"{where} is not a date and time")
    return value


def _maybe_datetime(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    text = text.strip()
    # Python takes at most 6 fraction digits; xs:dateTime any number
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            value = dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
        except ValueError:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=NORWAY)
        # a fixed offset, as every format we write carries it
        offset = value.utcoffset()
        assert offset is not None
        value = value.replace(tzinfo=dt.timezone(offset))
    return value


def _party(org_el: etree._Element, where: str) -> Party:
    organisation = read_organisation(org_el, where)
    nested = org_el.find(_M + "Organisation")
    department = read_organisation(nested, where) if nested is not None else None
    return Party(organisation, department)


def read_organisation(org_el: etree._Element, where: str) -> Organisation:
    her_id = orgnr = None
    for ident in org_el.iterfind(_M + "Ident"):
        kind = code_value(ident.find(_M + "TypeId"))
        value = text_of(ident.find(_M + "Id"))
        if kind == "HER" and her_id is None:
            her_id = value
        elif kind == "ENH" and orgnr is None:
            orgnr = value
    try:
        return Organisation.model_validate(
            {
                "name": text_of(org_el.find(_M + "OrganisationName")),
                "her_id": her_id,
                "orgnr": orgnr,
            }
        )
    except ValidationError as e:
        fields = sorted({str(err["loc"][0]) for err in e.errors(include_input=False) if err["loc"]})
        code = "E21" if where == "Receiver" else "E20" if "her_id" in fields else "T02"
        raise Refused.one(code, f"{where}/Organisation: invalid {', '.join(fields)}") from None


def read_patient(
    element: etree._Element, *, allow_synthetic_ids: bool, errors: list[ReceiptError]
) -> Patient:
    """The patient: a person id of type FNR/DNR/FHN/HNR, a name, the kommune if given."""
    ident_el = None
    for ident in element.iterfind(_M + "Ident"):
        if code_value(ident.find(_M + "TypeId")) in _PERSON_ID_TYPES:
            ident_el = ident
            break
    raw = text_of(ident_el.find(_M + "Id")) if ident_el is not None else None
    if ident_el is None or not raw:
        raise Refused.one("E30", "Patient/Ident has no fødselsnummer, D-nummer or hjelpenummer")
    try:
        pid = parse_person_id(raw, allow_synthetic=allow_synthetic_ids)
    except InvalidIdentifier as e:
        raise Refused.one(e.code, e.reason) from None
    if pid.kind is PersonIdKind.HNR:
        raise Refused.one("E31", LOCAL_ID_REASON)
    declared = _PERSON_ID_TYPES[code_value(ident_el.find(_M + "TypeId")) or ""]
    if declared is not pid.kind:
        errors.append(
            ReceiptError(code="E31", detail=f"TypeId says {declared}, number is {pid.kind}")
        )
    given = " ".join(
        t for t in (text_of(element.find(_M + n)) for n in ("GivenName", "MiddleName")) if t
    )
    family = text_of(element.find(_M + "FamilyName"))
    if not given or not family:
        raise Refused.one("E32", "Patient needs FamilyName and GivenName")
    county = code_value(element.find(f"{_M}Address/{_M}County"))
    try:
        return Patient(
            person_id=pid.value,
            id_kind=pid.kind,
            name=PersonName(given=given, family=family),
            kommune_nr=county,
        )
    except ValidationError as e:
        fields = {str(err["loc"][0]) for err in e.errors(include_input=False) if err["loc"]}
        if "kommune_nr" in fields:
            raise Refused.one(
                "E21", "Patient/Address/County holds no valid kommunenummer"
            ) from None
        raise Refused.one("E32", "Patient name holds characters that cannot be carried") from None


def _read_conversation(element: etree._Element | None) -> ConversationRef | None:
    if element is None:
        return None
    parent = text_of(element.find(_M + "RefToParent"))
    conversation = text_of(element.find(_M + "RefToConversation"))
    if not parent or not conversation:
        raise Refused.one("T02", "ConversationRef needs RefToParent and RefToConversation")
    return ConversationRef(parent, conversation)


# --------------------------------------------------------------------------- the sender
# A canonical sender (trust, department, contact) and the sender's own message id and
# endpoint do not all fit in MsgHead: what does not travels in our content beside it.


@dataclass(frozen=True)
class SenderParts:
    """How a canonical sender is written: ``party`` in MsgHead, the rest (None when MsgHead
    already says it) in our content."""

    party: Party
    sender_message_id: str | None
    source_endpoint: str | None
    department: Organisation | None
    contact: Contact | None


def split_sender(
    sender: Sender, *, sender_message_id: str, source_endpoint: str, msg_id: str
) -> SenderParts:
    department = sender.department
    in_msghead = department is not None and has_ident(department)
    default = default_endpoint(sender.organisation, department)
    return SenderParts(
        party=Party(sender.organisation, department if in_msghead else None),
        sender_message_id=None if sender_message_id == msg_id else sender_message_id,
        source_endpoint=None if source_endpoint == default else source_endpoint,
        department=None if in_msghead else department,
        contact=sender.contact,
    )


def join_sender(
    envelope: Envelope,
    *,
    sender_message_id: str | None,
    source_endpoint: str | None,
    department: Organisation | None,
    contact: Contact | None,
) -> tuple[Sender, str, str]:
    """(sender, its endpoint, its message id) from MsgHead and what our content added."""
    organisation = envelope.sender.organisation
    department = envelope.sender.department or department
    endpoint = source_endpoint or default_endpoint(organisation, department)
    if endpoint is None:
        raise Refused.one("E20", "the sender has no HER-id to answer to")
    sender = Sender(organisation=organisation, department=department, contact=contact)
    return sender, endpoint, sender_message_id or envelope.msg_id


def default_endpoint(organisation: Organisation, department: Organisation | None) -> str | None:
    """Where a MsgHead sender is reached: its most specific HER-id (Adresseregisteret)."""
    for unit in (department, organisation):
        if unit is not None and unit.her_id is not None:
            return f"{HER_SYSTEM}:{unit.her_id}"
    return None


def open_message(
    root: etree._Element,
    msg_type: str,
    content_tag: str,
    missing: str,
    *,
    allow_synthetic_ids: bool,
) -> tuple[Envelope, etree._Element, Patient]:
    """The envelope, the document our content is in and the patient of a MsgHead of
    ``msg_type``; T10 for another type or without the content, E30 without a patient."""
    envelope = read_envelope(root, allow_synthetic_ids=allow_synthetic_ids)
    if envelope.msg_type != msg_type:
        raise Refused.one("T10", f"message type {envelope.msg_type} is not handled here")
    content = next((d.content for d in documents(root) if d.content.tag == content_tag), None)
    if content is None:
        raise Refused.one("T10", missing)
    if envelope.patient is None:
        raise Refused.one("E30", "MsgHead has no Patient")
    return envelope, content, envelope.patient
