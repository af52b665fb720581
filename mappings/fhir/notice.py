"""Need-for-IP notice <-> FHIR R4 message Bundle.

Bundle layout (the first entry is the MessageHeader, as FHIR messaging requires)::

    MessageHeader  eventCoding message-event#need-notice, sender -> department Organization,
                   source.endpoint, focus -> CarePlan
    Organization   the health trust (HER-id, organisasjonsnummer)
    Organization   the department, partOf -> the health trust
    Practitioner   the HF contact (CarePlan.author), optional
    Patient        fødselsnummer / D-nummer / FH-nummer, name, address.district with the
                   no-basis municipality code, interpreter need
    CarePlan       status draft, intent proposal, category individuell-plan + one category per
                   requested service, description = the need; urgency and next-of-kin flags as
                   extensions
    Consent        optional: active, patient, dateTime, performer (Patient or RelatedPerson),
                   provision.purpose need-notice
    RelatedPerson  when next of kin or parents consented

Reading checks structure with fhir.resources (R4B models, same shape as R4 for these
resources), then reads the plain dict: the models are the validator, not the carrier.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from gateway.domain.identifiers import InvalidIdentifier, parse_person_id
from gateway.domain.model import (
    ConsentAttestation,
    ConsentGiver,
    Contact,
    NeedNotice,
    NoticeKind,
    Organisation,
    Patient,
    PersonName,
    Sender,
)
from gateway.domain.receipt import ReceiptError, Refused
from mappings.fhir import systems as sy
from mappings.fhir.r4json import r4_json_problems

Json = dict[str, Any]

EVENT_NEED_NOTICE = "need-notice"
NOTICE_DISPLAY = {
    NoticeKind.INDIVIDUELL_PLAN: "Individuell plan",
    NoticeKind.KOORDINATOR: "Koordinator",
    NoticeKind.BARNEKOORDINATOR: "Barnekoordinator",
}
_GIVER_ROLE = {ConsentGiver.NEXT_OF_KIN: "NOK", ConsentGiver.PARENTS: "PRN"}
_NS = uuid.UUID("6f1d1a52-4f0e-4d55-9d7e-5c1b2f0a9e11")


# --------------------------------------------------------------------------- writing


def notice_to_bundle(notice: NeedNotice) -> Json:
    """The FHIR message Bundle for a notice; ids derive from the sender's message id."""

    def url(role: str) -> str:
        return f"urn:uuid:{uuid.uuid5(_NS, f'{notice.sender_message_id}/{role}')}"

    def entry(role: str, resource: Json) -> Json:
        rid = url(role).removeprefix("urn:uuid:")
        return {"fullUrl": url(role), "resource": {**resource, "id": rid}}

    s = notice.sender
    entries: list[Json] = []
    entries.append(
        {
            "fullUrl": url("header"),
            "resource": {
                "resourceType": "MessageHeader",
                "id": notice.sender_message_id,
                "eventCoding": {
                    "system": sy.MESSAGE_EVENT_SYSTEM,
                    "code": EVENT_NEED_NOTICE,
                    "display": "Melding om behov for individuell plan / koordinator",
                },
                "sender": {"reference": url("department" if s.department else "trust")},
                "source": {"endpoint": notice.source_endpoint},
                "focus": [{"reference": url("careplan")}],
            },
        }
    )
    entries.append(entry("trust", _organization(s.organisation)))
    if s.department:
        dept = _organization(s.department) | {"partOf": {"reference": url("trust")}}
        entries.append(entry("department", dept))
    if s.contact:
        entries.append(entry("contact", _practitioner(s.contact)))
    entries.append(entry("patient", _patient(notice.patient, notice.interpreter_language)))

    careplan: Json = {
        "resourceType": "CarePlan",
        "extension": [
            {"url": sy.URGENT_EXTENSION, "valueBoolean": notice.urgent},
            {
                "url": sy.NEXT_OF_KIN_INVOLVED_EXTENSION,
                "valueBoolean": notice.next_of_kin_involved,
            },
        ],
        "status": "draft",
        "intent": "proposal",
        "category": [
            _concept(sy.CAREPLAN_CATEGORY_SYSTEM, "individuell-plan", "Individuell plan"),
            *(
                _concept(sy.REQUESTED_SERVICE_SYSTEM, k.value, NOTICE_DISPLAY[k])
                for k in notice.requested
            ),
        ],
        "description": notice.need,
        "subject": {"reference": url("patient")},
    }
    if s.contact:
        careplan["author"] = {"reference": url("contact")}
    entries.append(entry("careplan", careplan))

    if notice.consent:
        c = notice.consent
        performer = url("patient")
        if c.given_by in _GIVER_ROLE:
            performer = url("related")
            related = {
                "resourceType": "RelatedPerson",
                "patient": {"reference": url("patient")},
                "relationship": [_concept(sy.ROLE_CODE_SYSTEM, _GIVER_ROLE[c.given_by])],
            }
            entries.append(entry("related", related))
        consent: Json = {
            "resourceType": "Consent",
            "status": "active",
            "scope": _concept(sy.CONSENT_SCOPE_SYSTEM, "patient-privacy"),
            "category": [_concept(sy.LOINC, "59284-0", "Patient Consent")],
            "patient": {"reference": url("patient")},
            "dateTime": c.given_on.isoformat(),
            "performer": [{"reference": performer}],
            "policyRule": _concept(sy.ACT_CODE_SYSTEM, "OPTIN"),
            "provision": {
                "purpose": [{"system": sy.CONSENT_PURPOSE_SYSTEM, "code": EVENT_NEED_NOTICE}]
            },
        }
        if c.reference:
            consent["identifier"] = [{"value": c.reference}]
        entries.append(entry("consent", consent))

    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(_NS, f"{notice.sender_message_id}/bundle")),
        "type": "message",
        "timestamp": notice.sent_at.isoformat(),
        "entry": entries,
    }


def _concept(system: str, code: str, display: str | None = None) -> Json:
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [coding]}


def _organization(org: Organisation) -> Json:
    identifiers = []
    if org.her_id is not None:
        identifiers.append({"system": sy.HER_SYSTEM, "value": str(org.her_id)})
    if org.orgnr is not None:
        identifiers.append({"system": sy.ORGNR_SYSTEM, "value": org.orgnr})
    res: Json = {"resourceType": "Organization", "name": org.name}
    if identifiers:
        res["identifier"] = identifiers
    return res


def _practitioner(contact: Contact) -> Json:
    res: Json = {"resourceType": "Practitioner", "name": [{"text": contact.name}]}
    if contact.phone:
        res["telecom"] = [{"system": "phone", "value": contact.phone, "use": "work"}]
    return res


def _patient(p: Patient, interpreter_language: str | None) -> Json:
    res: Json = {
        "resourceType": "Patient",
        "identifier": [{"system": sy.PERSON_ID_SYSTEMS[p.id_kind], "value": p.person_id}],
        "name": [{"use": "official", "family": p.name.family, "given": [p.name.given]}],
    }
    if p.kommune_nr:
        res["address"] = [
            {
                "use": "home",
                "district": p.kommune_nr,
                "_district": {
                    "extension": [
                        {
                            "url": sy.MUNICIPALITY_EXTENSION,
                            "valueCoding": {
                                "system": sy.MUNICIPALITY_SYSTEMS[0],
                                "code": p.kommune_nr,
                            },
                        }
                    ]
                },
            }
        ]
    if interpreter_language:
        res["extension"] = [{"url": sy.INTERPRETER_REQUIRED_EXTENSION, "valueBoolean": True}]
        res["communication"] = [
            {
                "language": {"coding": [{"system": sy.BCP47, "code": interpreter_language}]},
                "preferred": True,
            }
        ]
    return res


# --------------------------------------------------------------------------- reading


def bundle_to_notice(bundle: Json, *, allow_synthetic_ids: bool) -> NeedNotice:
    """Read a need-for-IP notice; every problem the sender can fix becomes a receipt error."""
    _check_structure(bundle)
    msg = _Message(bundle)
    header = msg.header
    event = header.get("eventCoding") or {}
    if event.get("system") != sy.MESSAGE_EVENT_SYSTEM or event.get("code") != EVENT_NEED_NOTICE:
        raise Refused.one(
            "T10", f"MessageHeader.eventCoding must be {sy.MESSAGE_EVENT_SYSTEM}|need-notice"
        )

    careplan = msg.focus("CarePlan")
    errors: list[ReceiptError] = []
    if careplan.get("status") != "draft" or careplan.get("intent") != "proposal":
        errors.append(_t02("CarePlan of a notice must have status draft and intent proposal"))
    requested = []
    for concept in careplan.get("category", []):
        for coding in concept.get("coding", []):
            if coding.get("system") == sy.REQUESTED_SERVICE_SYSTEM:
                try:
                    requested.append(NoticeKind(coding.get("code")))
                except ValueError:
                    errors.append(_t02("CarePlan.category: unknown requested service code"))
    if not requested:
        errors.append(_t02("CarePlan.category names no requested service"))
    if not (careplan.get("description") or "").strip():
        errors.append(_t02("CarePlan.description (the need) is missing"))

    patient_res = msg.resolve(careplan.get("subject"), "Patient", "CarePlan.subject")
    patient, interpreter = _read_patient(patient_res, allow_synthetic_ids, errors)
    sender = _read_sender(msg, careplan, errors)
    consent = _read_consent(msg, patient_res)

    sent_at = bundle.get("timestamp")
    if not sent_at:
        errors.append(_t02("Bundle.timestamp is missing"))
    source = (header.get("source") or {}).get("endpoint")
    if errors:
        raise Refused(*errors)
    ext = _extensions(careplan)
    try:
        return NeedNotice(
            sender_message_id=header.get("id"),
            sent_at=sent_at,
            source_endpoint=source,
            patient=patient,
            sender=sender,
            requested=tuple(requested),
            need=careplan["description"],
            urgent=bool(ext.get(sy.URGENT_EXTENSION, False)),
            next_of_kin_involved=bool(ext.get(sy.NEXT_OF_KIN_INVOLVED_EXTENSION, False)),
            interpreter_language=interpreter,
            consent=consent,
        )
    except ValidationError as e:
        raise Refused(*(_t02(_where(err)) for err in e.errors(include_input=False))) from None


def _check_structure(bundle: Json) -> None:
    """R4 JSON first (fhir.resources coerces what R4 refuses), then the R4 models."""
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "message":
        raise Refused.one("T02", "body must be a FHIR Bundle of type message")
    problems = r4_json_problems(bundle)
    if problems:
        raise Refused(*(_t02(problem) for problem in problems))
    try:
        Bundle.model_validate(bundle)
    except ValidationError as e:
        raise Refused(*(_t02(_where(err)) for err in e.errors(include_input=False)[:10])) from None
    except (KeyError, TypeError, ValueError, AttributeError):
        # fhir.resources' own validators can fail with these on shapes R4 JSON allows
        raise Refused.one("T02", "Bundle holds a malformed resource") from None


def _where(err: Mapping[str, Any]) -> str:
    """A validation error as path + message, without the offending value."""
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid"))


def _t02(detail: str) -> ReceiptError:
    return ReceiptError(code="T02", detail=detail)


class _Message:
    """The Bundle's entries, addressable by fullUrl and by ResourceType/id."""

    def __init__(self, bundle: Json) -> None:
        self.entries = [e for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]
        if not self.entries or self.entries[0]["resource"].get("resourceType") != "MessageHeader":
            raise Refused.one("T02", "the first entry of a message Bundle must be a MessageHeader")
        self.header: Json = self.entries[0]["resource"]
        self.by_ref: dict[str, Json] = {}
        for e in self.entries:
            res = e["resource"]
            if e.get("fullUrl"):
                self.by_ref[e["fullUrl"]] = res
            if res.get("id"):
                self.by_ref[f"{res['resourceType']}/{res['id']}"] = res

    def of_type(self, resource_type: str) -> Iterator[Json]:
        return (
            e["resource"] for e in self.entries if e["resource"]["resourceType"] == resource_type
        )

    def resolve(self, ref: Json | None, resource_type: str, where: str) -> Json:
        target = self.by_ref.get((ref or {}).get("reference", ""))
        if target is None or target.get("resourceType") != resource_type:
            raise Refused.one("T02", f"{where} must reference a {resource_type} in the Bundle")
        return target

    def focus(self, resource_type: str) -> Json:
        for ref in self.header.get("focus", []):
            target = self.by_ref.get(ref.get("reference", ""))
            if target and target.get("resourceType") == resource_type:
                return target
        raise Refused.one("T02", f"MessageHeader.focus must reference a {resource_type}")


def _extensions(res: Json) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ext in res.get("extension", []):
        for key, value in ext.items():
            if key.startswith("value"):
                out[ext.get("url", "")] = value
    return out


def _read_patient(
    res: Json, allow_synthetic: bool, errors: list[ReceiptError]
) -> tuple[Patient, str | None]:
    ident = next(
        (i for i in res.get("identifier", []) if i.get("system") in sy.PERSON_ID_KINDS), None
    )
    if ident is None or not ident.get("value"):
        raise Refused.one("E30", "Patient.identifier has no fødselsnummer, D-nummer or FH-nummer")
    try:
        pid = parse_person_id(ident["value"], allow_synthetic=allow_synthetic)
    except InvalidIdentifier as e:
        raise Refused.one(e.code, e.reason) from None
    declared = sy.PERSON_ID_KINDS[ident["system"]]
    if declared is not pid.kind:
        errors.append(
            ReceiptError(
                code="E31", detail=f"identifier system says {declared}, number is {pid.kind}"
            )
        )

    names = res.get("name") or []
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    given = " ".join(name.get("given", []))
    family = name.get("family", "")
    if not given.strip() or not family.strip():
        raise Refused.one("E32", "Patient.name needs family and given name")

    kommune_nr = None
    addresses = res.get("address") or []
    address = next(
        (a for a in addresses if a.get("use") == "home"), addresses[0] if addresses else {}
    )
    for ext in (address.get("_district") or {}).get("extension", []):
        coding = ext.get("valueCoding") or {}
        if (
            ext.get("url") == sy.MUNICIPALITY_EXTENSION
            and coding.get("system") in sy.MUNICIPALITY_SYSTEMS
        ):
            kommune_nr = coding.get("code")
    interpreter = None
    if _extensions(res).get(sy.INTERPRETER_REQUIRED_EXTENSION):
        for comm in res.get("communication", []):
            for coding in (comm.get("language") or {}).get("coding", []):
                if coding.get("system") == sy.BCP47 and interpreter is None:
                    interpreter = coding.get("code")
    try:
        patient = Patient(
            person_id=pid.value,
            id_kind=pid.kind,
            name=PersonName(given=given, family=family),
            kommune_nr=kommune_nr,
        )
    except ValidationError:
        raise Refused.one("E21", "Patient.address.district holds no valid kommunenummer") from None
    return patient, interpreter


def _organisation(res: Json) -> Organisation:
    her_id = orgnr = None
    for ident in res.get("identifier", []):
        if ident.get("system") == sy.HER_SYSTEM:
            her_id = ident.get("value")
        elif ident.get("system") == sy.ORGNR_SYSTEM:
            orgnr = ident.get("value")
    return Organisation.model_validate({"name": res.get("name"), "her_id": her_id, "orgnr": orgnr})


def _read_sender(msg: _Message, careplan: Json, errors: list[ReceiptError]) -> Sender:
    unit = msg.resolve(msg.header.get("sender"), "Organization", "MessageHeader.sender")
    parent_ref = unit.get("partOf")
    try:
        if parent_ref:
            trust = _organisation(msg.resolve(parent_ref, "Organization", "Organization.partOf"))
            department: Organisation | None = _organisation(unit)
        else:
            trust, department = _organisation(unit), None
        contact = None
        if careplan.get("author"):
            author = msg.resolve(careplan["author"], "Practitioner", "CarePlan.author")
            name = (author.get("name") or [{}])[0]
            text = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")])
            phone = next(
                (t.get("value") for t in author.get("telecom", []) if t.get("system") == "phone"),
                None,
            )
            contact = Contact(name=text.strip(), phone=phone)
    except ValidationError as e:
        raise Refused(
            *(_t02(f"sender: {_where(err)}") for err in e.errors(include_input=False))
        ) from None
    if trust.her_id is None and trust.orgnr is None:
        errors.append(
            ReceiptError(
                code="E20", detail="sender Organization has no HER-id or organisasjonsnummer"
            )
        )
    return Sender(organisation=trust, department=department, contact=contact)


def _read_consent(msg: _Message, patient: Json) -> ConsentAttestation | None:
    """The first active Consent for the patient; None when there is none (the notice is held)."""
    for consent in msg.of_type("Consent"):
        if consent.get("status") != "active":
            continue
        if msg.by_ref.get((consent.get("patient") or {}).get("reference", "")) is not patient:
            continue
        given_on = consent.get("dateTime") or ""
        if len(given_on) < 10:
            raise Refused.one("T02", "Consent.dateTime must give the day consent was given")
        given_by = ConsentGiver.PERSON
        for perf in consent.get("performer", []):
            who = msg.by_ref.get(perf.get("reference", ""))
            if who and who.get("resourceType") == "RelatedPerson":
                codes = {
                    c.get("code")
                    for rel in who.get("relationship", [])
                    for c in rel.get("coding", [])
                }
                given_by = (
                    ConsentGiver.PARENTS
                    if codes & sy.PARENT_ROLE_CODES
                    else ConsentGiver.NEXT_OF_KIN
                )
        reference = next((i.get("value") for i in consent.get("identifier", [])), None)
        return ConsentAttestation(
            given_by=given_by,
            given_on=dt.date.fromisoformat(given_on[:10]),
            reference=reference,
        )
    return None


def patient_identifier(bundle: Any) -> str | None:
    """The person id in a Bundle, found cheaply (no validation) for the ingest partition key.

    Runs before any check, so it must take any JSON without failing.
    """
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    for e in entries if isinstance(entries, list) else ():
        res = e.get("resource") if isinstance(e, dict) else None
        if isinstance(res, dict) and res.get("resourceType") == "Patient":
            identifiers = res.get("identifier")
            for ident in identifiers if isinstance(identifiers, list) else ():
                system = ident.get("system") if isinstance(ident, dict) else None
                if isinstance(system, str) and system in sy.PERSON_ID_KINDS:
                    value = ident.get("value")
                    return value if isinstance(value, str) else None
    return None
