"""AppRec (applikasjonskvittering) 1.0 and 1.1 <-> the canonical :class:`Receipt`.

Every KITH message is answered with an AppRec, and the systems on the health network speak
one of two versions: 1.0 (2004-11-21) and 1.1 (2012-02-15). They differ only in namespace,
MIGversion text and where the CS/CV types are declared, so one mapping serves both; the
version is a parameter when writing and is read off the namespace when reading.

Writing is strict: every document validates against the official schemas. Reading is lenient
where the meaning is clear, because AppRecs come from many systems: codes may carry stray
spaces (``V=" HER"``), MIGversion texts are sloppy (``1.0 2008-11-21`` in a real 1.0 AppRec),
times often lack a UTC offset (then they are Norwegian local time). What the canonical model
cannot hold is dropped: ``Role`` (the party's role in the original exchange) and ``HCPerson``
(a person's name and id: a receipt answers for the unit, and person data stays out of it).

Where the standard is silent, the choices are:

- an organisation's HER-id is ``Inst/Id`` with ``TypeId V="HER"``; without a HER-id the
  organisasjonsnummer stands there (``ENH``), beside a HER-id it is an ``AdditionalId``. The
  schema types TypeId as CS (V and DN only), so it carries no ``S``;
- an unknown receiver (a message too broken to say who sent it) is an empty ``Inst``, which
  the schema allows and which reads back as no receiver;
- an unknown original id is an empty ``OriginalMsgId/Id``; an unknown original issue time,
  which the schema requires, is the receipt's own time (the original was issued before it);
- an ``Error`` from another code list than 8221, or with a code the model cannot hold, reads
  as ``X99`` with the original code in front of the free text, so a rejection is never lost
  for want of a known code.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Literal

from lxml import etree
from lxml.builder import ElementMaker
from pydantic import ValidationError

from gateway.domain.model import Organisation
from gateway.domain.receipt import (
    ORGNR_TEXT,
    Receipt,
    ReceiptError,
    ReceiptStatus,
    Refused,
)
from mappings.plo import namespaces as ns
from mappings.plo.msghead import code_value, read_datetime
from mappings.plo.xmlsafe import text_of

Version = Literal["1.0", "1.1"]

#: namespace per version (MeldingsVersjoner.xml)
NAMESPACES: dict[Version, str] = {"1.0": ns.APPREC_1_0, "1.1": ns.APPREC_1_1}
#: MIGversion as each schema's default has it
MIG_VERSIONS: dict[Version, str] = {"1.0": "1.0 2004-11-21", "1.1": "v1.1 2012-02-15"}
MSG_TYPE = ("APPREC", "Applikasjonskvittering")
#: DN for the message types the gateway answers (code list 8279 and our own kinds)
MSG_TYPE_TEXTS = {
    "DIALOG_HELSEFAGLIG": "Helsefaglig dialog",
    "need-notice": "Melding om behov for individuell plan eller koordinator",
    "plan-transfer": "Overføring av individuell plan",
}
_ID_TYPE_TEXTS = {"HER": "HER-id", "ENH": ORGNR_TEXT}
#: what XML 1.0 cannot hold (and lone surrogates, which no encoder writes)
_NOT_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MAX_OFFSET = dt.timedelta(hours=14)


# --------------------------------------------------------------------------- writing


def receipt_to_apprec(receipt: Receipt, version: Version = "1.1") -> bytes:
    """The AppRec document, UTF-8 with an XML declaration."""
    return etree.tostring(build_apprec(receipt, version), xml_declaration=True, encoding="UTF-8")


def build_apprec(receipt: Receipt, version: Version = "1.1") -> etree._Element:
    """The AppRec element, for callers that embed, sign or validate before serialising."""
    namespace = NAMESPACES.get(version)
    if namespace is None:
        raise ValueError(f"AppRec version must be one of {', '.join(NAMESPACES)}")
    e = ElementMaker(namespace=namespace, nsmap={None: namespace})
    original_type = " ".join(receipt.original_message_type.split())
    if not original_type:
        raise ValueError("a receipt must name the type of the message it answers")
    original_type_attrs = {"V": original_type}
    if original_type in MSG_TYPE_TEXTS:
        original_type_attrs["DN"] = MSG_TYPE_TEXTS[original_type]
    issued_at = receipt.original_issued_at or receipt.generated_at
    return e.AppRec(
        e.MsgType(V=MSG_TYPE[0], DN=MSG_TYPE[1]),
        e.MIGversion(MIG_VERSIONS[version]),
        e.GenDate(xml_datetime(receipt.generated_at)),
        e.Id(str(receipt.id)),
        e.Sender(e.HCP(_inst(e, receipt.sender, receipt.sender_department))),
        e.Receiver(e.HCP(_inst(e, receipt.receiver, receipt.receiver_department))),
        e.Status(V=receipt.status.value, DN=receipt.status.text),
        *(_error(e, error) for error in receipt.errors),
        e.OriginalMsgId(
            e.MsgType(**original_type_attrs),
            e.IssueDate(xml_datetime(issued_at)),
            e.Id(receipt.original_message_id or ""),
        ),
    )


def xml_datetime(value: dt.datetime) -> str:
    """xs:dateTime, always with a UTC offset: an AppRec crosses time zones and clock settings.

    xs:dateTime offsets are whole minutes within ±14:00; any other offset is written as UTC
    (the same instant).
    """
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("an AppRec time needs a UTC offset")
    if offset.total_seconds() % 60 or abs(offset) > _MAX_OFFSET:
        value = value.astimezone(dt.UTC)
    return value.isoformat()


def _inst(e: ElementMaker, org: Organisation | None, dept: Organisation | None) -> etree._Element:
    """``Inst``: Name, Id, TypeId, then Dept, then AdditionalId, as the schema orders them."""
    if org is None:
        return e.Inst()
    return e.Inst(
        *_unit(e, org),
        *([e.Dept(*_unit(e, dept), *_additional_ids(e, dept))] if dept is not None else []),
        *_additional_ids(e, org),
    )


def _unit(e: ElementMaker, org: Organisation) -> list[etree._Element]:
    children = [e.Name(org.name)]
    if org.her_id is not None:
        children += [e.Id(str(org.her_id)), e.TypeId(V="HER", DN=_ID_TYPE_TEXTS["HER"])]
    elif org.orgnr is not None:
        children += [e.Id(org.orgnr), e.TypeId(V="ENH", DN=_ID_TYPE_TEXTS["ENH"])]
    return children


def _additional_ids(e: ElementMaker, org: Organisation) -> list[etree._Element]:
    if org.her_id is None or org.orgnr is None:
        return []
    return [e.AdditionalId(e.Id(org.orgnr), e.Type(V="ENH", DN=_ID_TYPE_TEXTS["ENH"]))]


def _error(e: ElementMaker, error: ReceiptError) -> etree._Element:
    attrs = {"S": ns.RECEIPT_ERROR, "V": error.code, "DN": error.text}
    if error.detail and error.detail.strip():
        # free text written by our own code: a stray control character must not cost the
        # sender its receipt
        attrs["OT"] = _NOT_XML_CHARS.sub("\ufffd", error.detail)
    return e.Error(**attrs)


# --------------------------------------------------------------------------- reading


def apprec_version(root: etree._Element) -> Version | None:
    """Which AppRec ``root`` is, by its namespace; None when it is no AppRec we know."""
    qname = etree.QName(root)
    if qname.localname != "AppRec":
        return None
    for version, namespace in NAMESPACES.items():
        if qname.namespace == namespace:
            return version
    return None


def apprec_to_receipt(
    root: etree._Element, *, gateway_message_id: uuid.UUID | None = None
) -> Receipt:
    """The receipt an AppRec 1.0 or 1.1 holds, or Refused (T10, T02, E10) saying what is wrong.

    ``gateway_message_id`` is the gateway's message the AppRec answers, when the caller has
    already matched ``OriginalMsgId/Id`` to it; the AppRec itself does not carry it.
    Details name elements, never values: they reach logs and operator views.
    """
    version = apprec_version(root)
    if version is None:
        raise Refused.one("T10", "not an AppRec 1.0 or 1.1 document (root element or namespace)")
    r = _Reader(NAMESPACES[version])

    msg_type = code_value(root.find(r.q("MsgType")))
    if msg_type is None:
        raise Refused.one("T02", "AppRec/MsgType is missing or has no V")
    if msg_type.upper() != MSG_TYPE[0]:
        raise Refused.one("T10", "AppRec/MsgType V is not APPREC")

    raw_id = text_of(root.find(r.q("Id")))
    if raw_id is None:
        raise Refused.one("T02", "AppRec/Id is missing")
    try:
        receipt_id = uuid.UUID(raw_id)
    except ValueError:
        raise Refused.one("E10", "AppRec/Id is not a GUID") from None

    status = _status(root, r)
    errors = tuple(
        _read_error(element, index, r)
        for index, element in enumerate(root.iterfind(r.q("Error")), start=1)
    )
    if status is not ReceiptStatus.OK and not errors:
        raise Refused.one(
            "T02",
            f"AppRec/Status {status.value} ({status.text}) needs at least one Error (8221)",
        )

    sender, sender_dept = _party(root, "Sender", r)
    if sender is None:
        raise Refused.one("T02", "AppRec/Sender/HCP/Inst names no institution")
    receiver, receiver_dept = _party(root, "Receiver", r)

    original = root.find(r.q("OriginalMsgId"))
    if original is None:
        raise Refused.one("T02", "AppRec/OriginalMsgId is missing")
    original_type = code_value(original.find(r.q("MsgType")))
    if original_type is None:
        raise Refused.one("T02", "AppRec/OriginalMsgId/MsgType is missing or has no V")

    try:
        return Receipt(
            id=receipt_id,
            generated_at=read_datetime(text_of(root.find(r.q("GenDate"))), "AppRec/GenDate"),
            sender=sender,
            sender_department=sender_dept,
            receiver=receiver,
            receiver_department=receiver_dept,
            status=status,
            errors=errors,
            original_message_type=" ".join(original_type.split()),
            original_message_id=text_of(original.find(r.q("Id"))),
            original_issued_at=read_datetime(
                text_of(original.find(r.q("IssueDate"))), "AppRec/OriginalMsgId/IssueDate"
            ),
            gateway_message_id=gateway_message_id,
        )
    except ValidationError as e:
        fields = sorted({str(err["loc"][0]) for err in e.errors(include_input=False) if err["loc"]})
        raise Refused.one("T02", f"AppRec: invalid {', '.join(fields) or 'receipt'}") from None


class _Reader:
    """Qualified names in the one namespace of the AppRec being read."""

    def __init__(self, namespace: str) -> None:
        self.prefix = f"{{{namespace}}}"

    def q(self, tag: str) -> str:
        return self.prefix + tag


def _status(root: etree._Element, r: _Reader) -> ReceiptStatus:
    element = root.find(r.q("Status"))
    if element is None:
        raise Refused.one("T02", "AppRec/Status is missing")
    value = code_value(element)
    if value is None:
        raise Refused.one("T02", "AppRec/Status has no V")
    try:
        return ReceiptStatus(value)
    except ValueError:
        raise Refused.one("T02", "AppRec/Status V is not 1, 2 or 3 (code list 8258)") from None


def _read_error(element: etree._Element, index: int, r: _Reader) -> ReceiptError:
    where = f"AppRec/Error[{index}]"
    code = code_value(element)
    if code is None:
        raise Refused.one("T02", f"{where} has no V")
    system = (element.get("S") or "").strip()
    ot = element.get("OT")
    detail = ot if ot is not None and ot.strip() else None
    if not system or system == ns.RECEIPT_ERROR:
        try:
            return ReceiptError(code=code.upper(), detail=detail)
        except ValidationError:
            pass
    # a code we cannot carry as such: keep it readable in the free text
    origin = f"{code} ({system})" if system else code
    return ReceiptError(code="X99", detail=f"{origin}: {detail}" if detail else origin)


def _party(
    root: etree._Element, tag: str, r: _Reader
) -> tuple[Organisation | None, Organisation | None]:
    """The organisation and its first department; (None, None) for an empty ``Inst``.

    A health professional (``HCProf``) answering on their own account reads as the party,
    by their name and HER-id, which is what addresses them on the network.
    """
    where = f"AppRec/{tag}/HCP"
    hcp = root.find(f"{r.q(tag)}/{r.q('HCP')}")
    if hcp is None:
        raise Refused.one("T02", f"{where} is missing")
    inst = hcp.find(r.q("Inst"))
    if inst is None:
        prof = hcp.find(r.q("HCProf"))
        if prof is None:
            raise Refused.one("T02", f"{where} holds neither Inst nor HCProf")
        return _organisation(prof, f"{where}/HCProf", r), None
    dept = inst.find(r.q("Dept"))
    if dept is None and not any(
        text_of(inst.find(r.q(child))) for child in ("Name", "Id", f"AdditionalId/{r.q('Id')}")
    ):
        return None, None
    organisation = _organisation(inst, f"{where}/Inst", r)
    department = _organisation(dept, f"{where}/Inst/Dept", r) if dept is not None else None
    return organisation, department


def _organisation(element: etree._Element, where: str, r: _Reader) -> Organisation:
    """Name plus the HER-id and organisasjonsnummer, from ``Id``/``TypeId`` or AdditionalId."""
    ids: dict[str, str] = {}
    pairs = [(element.find(r.q("Id")), element.find(r.q("TypeId")))]
    pairs += [
        (extra.find(r.q("Id")), extra.find(r.q("Type")))
        for extra in element.iterfind(r.q("AdditionalId"))
    ]
    for id_el, type_el in pairs:
        kind, value = code_value(type_el), text_of(id_el)
        if kind and value:
            ids.setdefault(kind.upper(), value)
    name = text_of(element.find(r.q("Name")))
    if name is None:
        raise Refused.one("T02", f"{where}/Name is missing")
    try:
        return Organisation.model_validate(
            {"name": name, "her_id": ids.get("HER"), "orgnr": ids.get("ENH")}
        )
    except ValidationError as e:
        fields = sorted({str(err["loc"][0]) for err in e.errors(include_input=False) if err["loc"]})
        names = {"her_id": "HER-id", "orgnr": "organisasjonsnummer", "name": "Name"}
        invalid = ", ".join(names.get(field, field) for field in fields)
        raise Refused.one("T02", f"{where}: invalid {invalid}") from None
