"""What every FHIR message mapping shares: the structure check, reference resolution, and the
resources a notice and a plan transfer write alike (sender organisations, Patient, Consent).

One copy, so a need-for-IP notice and a plan transfer name the sender, the person and the
consent the same way, and a receiver reads them with the same code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import BaseModel, ValidationError

from gateway.domain.identifiers import InvalidIdentifier, PersonIdKind, parse_person_id
from gateway.domain.model import (
    LOCAL_ID_REASON,
    ConsentGiver,
    Contact,
    Organisation,
    Patient,
    PersonName,
    Sender,
)
from gateway.domain.receipt import ReceiptError, Refused
from mappings.fhir import systems as sy
from mappings.fhir.r4json import r4_json_problems

Json = dict[str, Any]

#: RelatedPerson.relationship of whoever consented in the person's place
GIVER_ROLE = {ConsentGiver.NEXT_OF_KIN: "NOK", ConsentGiver.PARENTS: "PRN"}


# --------------------------------------------------------------------------- writing


def concept(system: str, code: str, display: str | None = None) -> Json:
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [coding]}


def organization_resource(org: Organisation) -> Json:
    identifiers = []
    if org.her_id is not None:
        identifiers.append({"system": sy.HER_SYSTEM, "value": str(org.her_id)})
    if org.orgnr is not None:
        identifiers.append({"system": sy.ORGNR_SYSTEM, "value": org.orgnr})
    res: Json = {"resourceType": "Organization", "name": org.name}
    if identifiers:
        res["identifier"] = identifiers
    return res


def practitioner_resource(contact: Contact) -> Json:
    res: Json = {"resourceType": "Practitioner", "name": [{"text": contact.name}]}
    if contact.phone:
        res["telecom"] = [{"system": "phone", "value": contact.phone, "use": "work"}]
    return res


def patient_resource(p: Patient, interpreter_language: str | None) -> Json:
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


def consent_giver_resource(given_by: ConsentGiver, patient_url: str) -> Json | None:
    """The RelatedPerson who consented in the person's place; None when the person did."""
    if given_by not in GIVER_ROLE:
        return None
    return {
        "resourceType": "RelatedPerson",
        "patient": {"reference": patient_url},
        "relationship": [concept(sy.ROLE_CODE_SYSTEM, GIVER_ROLE[given_by])],
    }


def consent_resource(
    *,
    given_on: dt.date,
    reference: str | None,
    patient_url: str,
    performer_url: str,
    purpose: str,
    lacks_capacity_reason: str | None = None,
) -> Json:
    """An opt-in privacy Consent; ``purpose`` (own code system) says what it allows."""
    consent: Json = {"resourceType": "Consent"}
    if lacks_capacity_reason:
        consent["extension"] = [
            {"url": sy.LACKS_CAPACITY_EXTENSION, "valueString": lacks_capacity_reason}
        ]
    consent |= {
        "status": "active",
        "scope": concept(sy.CONSENT_SCOPE_SYSTEM, "patient-privacy"),
        "category": [concept(sy.LOINC, "59284-0", "Patient Consent")],
        "patient": {"reference": patient_url},
        "dateTime": given_on.isoformat(),
        "performer": [{"reference": performer_url}],
        "policyRule": concept(sy.ACT_CODE_SYSTEM, "OPTIN"),
        "provision": {"purpose": [{"system": sy.CONSENT_PURPOSE_SYSTEM, "code": purpose}]},
    }
    if reference:
        consent["identifier"] = [{"value": reference}]
    return consent


# --------------------------------------------------------------------------- reading


def check_structure(bundle: Json) -> None:
    """A message Bundle, checked as :func:`check_resource` checks any resource."""
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "message":
        raise Refused.one("T02", "body must be a FHIR Bundle of type message")
    check_resource(bundle, Bundle)


def open_message(bundle: Json, event_code: str) -> Message:
    """A message Bundle of the event ``event_code``, checked, its entries addressable; T10 for
    a message of another event."""
    check_structure(bundle)
    msg = Message(bundle)
    event = msg.header.get("eventCoding") or {}
    if event.get("system") != sy.MESSAGE_EVENT_SYSTEM or event.get("code") != event_code:
        raise Refused.one(
            "T10", f"MessageHeader.eventCoding must be {sy.MESSAGE_EVENT_SYSTEM}|{event_code}"
        )
    return msg


def check_resource(resource: Json, model: type[BaseModel]) -> None:
    """R4 JSON first (fhir.resources coerces what R4 refuses), then the R4 model."""
    problems = r4_json_problems(resource)
    if problems:
        raise Refused(*(t02(problem) for problem in problems))
    try:
        model.model_validate(resource)
    except ValidationError as e:
        raise Refused(*(t02(where(err)) for err in e.errors(include_input=False)[:10])) from None
    except (KeyError, TypeError, ValueError, AttributeError):
        # fhir.resources' own validators can fail with these on shapes R4 JSON allows
        raise Refused.one("T02", f"{model.__name__} holds a malformed element") from None


def where(err: Mapping[str, Any]) -> str:
    """A validation error as path + message, without the offending value."""
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid"))


def t02(detail: str) -> ReceiptError:
    return ReceiptError(code="T02", detail=detail)


class Message:
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

    def resolve_any(self, ref: Json | None, resource_types: Collection[str], where: str) -> Json:
        """Like ``resolve``, for references that may point at one of several types."""
        target = self.by_ref.get((ref or {}).get("reference", ""))
        if target is None or target.get("resourceType") not in resource_types:
            kinds = " or ".join(sorted(resource_types))
            raise Refused.one("T02", f"{where} must reference a {kinds} in the Bundle")
        return target

    def focus(self, resource_type: str) -> Json:
        for ref in self.header.get("focus", []):
            target = self.by_ref.get(ref.get("reference", ""))
            if target and target.get("resourceType") == resource_type:
                return target
        raise Refused.one("T02", f"MessageHeader.focus must reference a {resource_type}")


def extensions(res: Json) -> dict[str, Any]:
    """url -> value of the resource's extensions, for extensions that occur once."""
    out: dict[str, Any] = {}
    for ext in res.get("extension", []):
        for key, value in ext.items():
            if key.startswith("value"):
                out[ext.get("url", "")] = value
    return out


def extension_values(element: Json, url: str) -> list[Any]:
    """The values of every extension with ``url``, in document order (repeating extensions)."""
    return [
        value
        for ext in element.get("extension", [])
        if ext.get("url") == url
        for key, value in ext.items()
        if key.startswith("value")
    ]


def read_patient(
    res: Json, allow_synthetic: bool, errors: list[ReceiptError]
) -> tuple[Patient, str | None]:
    """The person and the language they need an interpreter for (None when none)."""
    ident = next(
        (i for i in res.get("identifier", []) if i.get("system") in sy.PERSON_ID_KINDS), None
    )
    if ident is None or not ident.get("value"):
        raise Refused.one("E30", "Patient.identifier has no fødselsnummer, D-nummer or FH-nummer")
    try:
        pid = parse_person_id(ident["value"], allow_synthetic=allow_synthetic)
    except InvalidIdentifier as e:
        raise Refused.one(e.code, e.reason) from None
    if pid.kind is PersonIdKind.HNR:
        raise Refused.one("E31", LOCAL_ID_REASON)
    declared = sy.PERSON_ID_KINDS[ident["system"]]
    if declared is not pid.kind:
        errors.append(
            ReceiptError(
                code="E31", detail=f"identifier system says {declared}, number is {pid.kind}"
            )
        )

    names = res.get("name") or []
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    # R4 JSON allows null in a primitive array beside an extension in _given: no name part
    given = " ".join(part for part in name.get("given", []) if isinstance(part, str))
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
    if extensions(res).get(sy.INTERPRETER_REQUIRED_EXTENSION):
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


def organisation_fields(res: Json) -> Json:
    """An Organization's canonical fields, unchecked: for a model that checks them in place."""
    her_id = orgnr = None
    for ident in res.get("identifier", []):
        if ident.get("system") == sy.HER_SYSTEM:
            her_id = ident.get("value")
        elif ident.get("system") == sy.ORGNR_SYSTEM:
            orgnr = ident.get("value")
    return {"name": res.get("name"), "her_id": her_id, "orgnr": orgnr}


def read_organisation(res: Json) -> Organisation:
    """Raises ValidationError for a name or identifier the model refuses (callers say where)."""
    return Organisation.model_validate(organisation_fields(res))


def _sender_error(err: Mapping[str, Any]) -> ReceiptError:
    """A sender's HER-id or organisasjonsnummer that fails its rules leaves it unknown: E20."""
    loc = err.get("loc", ())
    code = "E20" if loc and loc[-1] in ("her_id", "orgnr") else "T02"
    return ReceiptError(code=code, detail=f"sender: {where(err)}")


def read_sender(
    msg: Message, contact_ref: Json | None, contact_where: str, errors: list[ReceiptError]
) -> Sender:
    """MessageHeader.sender (a department partOf its trust, or the trust) and the contact,
    a Practitioner referenced from ``contact_where`` (which element depends on the message).
    """
    unit = msg.resolve(msg.header.get("sender"), "Organization", "MessageHeader.sender")
    parent_ref = unit.get("partOf")
    try:
        if parent_ref:
            trust = read_organisation(
                msg.resolve(parent_ref, "Organization", "Organization.partOf")
            )
            department: Organisation | None = read_organisation(unit)
        else:
            trust, department = read_organisation(unit), None
        contact = None
        if contact_ref:
            author = msg.resolve(contact_ref, "Practitioner", contact_where)
            name = (author.get("name") or [{}])[0]
            parts = [*name.get("given", []), name.get("family", "")]
            text = name.get("text") or " ".join(part for part in parts if isinstance(part, str))
            phone = next(
                (t.get("value") for t in author.get("telecom", []) if t.get("system") == "phone"),
                None,
            )
            contact = Contact(name=text.strip(), phone=phone)
    except ValidationError as e:
        raise Refused(*(_sender_error(err) for err in e.errors(include_input=False))) from None
    if trust.her_id is None and trust.orgnr is None:
        errors.append(
            ReceiptError(
                code="E20", detail="sender Organization has no HER-id or organisasjonsnummer"
            )
        )
    return Sender(organisation=trust, department=department, contact=contact)


def read_consent(msg: Message, consent: Json) -> dict[str, Any]:
    """Who consented (and why not the person), on which day, under which reference: the
    fields of ConsentAttestation, which both messages attest."""
    given_on = consent.get("dateTime") or ""
    if len(given_on) < 10:
        raise Refused.one("T02", "Consent.dateTime must give the day consent was given")
    given_by = ConsentGiver.PERSON
    for perf in consent.get("performer", []):
        who = msg.by_ref.get(perf.get("reference", ""))
        if who and who.get("resourceType") == "RelatedPerson":
            codes = {
                c.get("code") for rel in who.get("relationship", []) for c in rel.get("coding", [])
            }
            given_by = (
                ConsentGiver.PARENTS if codes & sy.PARENT_ROLE_CODES else ConsentGiver.NEXT_OF_KIN
            )
    reference = next((i.get("value") for i in consent.get("identifier", [])), None)
    reason = extension_values(consent, sy.LACKS_CAPACITY_EXTENSION)
    return {
        "given_by": given_by,
        "lacks_capacity_reason": reason[0] if reason else None,
        "given_on": dt.date.fromisoformat(given_on[:10]),
        "reference": reference,
    }
