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

import uuid
from typing import Any

from pydantic import ValidationError

from gateway.domain.model import ConsentAttestation, NeedNotice, NoticeKind
from gateway.domain.receipt import ReceiptError, Refused
from mappings.fhir import systems as sy
from mappings.fhir.common import (
    Json,
    Message,
    concept,
    consent_giver_resource,
    consent_resource,
    extensions,
    open_message,
    organization_resource,
    patient_resource,
    practitioner_resource,
    read_consent,
    read_patient,
    read_sender,
    t02,
    where,
)

EVENT_NEED_NOTICE = "need-notice"
NOTICE_DISPLAY = {
    NoticeKind.INDIVIDUELL_PLAN: "Individuell plan",
    NoticeKind.KOORDINATOR: "Koordinator",
    NoticeKind.BARNEKOORDINATOR: "Barnekoordinator",
}
_NS = uuid.UUID("6f1d1a52-4f0e-4d55-9d7e-5c1b2f0a9e11")


# --------------------------------------------------------------------------- writing


def notice_to_bundle(notice: NeedNotice, *, destination: str | None = None) -> Json:
    """The FHIR message Bundle for a notice; ids derive from the sender's message id.

    ``destination``: the endpoint of the receiver (MessageHeader.destination), when the
    gateway hands the notice on; the envelope's, so reading leaves it out of the notice.
    """

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
                **({"destination": [{"endpoint": destination}]} if destination else {}),
                "focus": [{"reference": url("careplan")}],
            },
        }
    )
    entries.append(entry("trust", organization_resource(s.organisation)))
    if s.department:
        dept = organization_resource(s.department) | {"partOf": {"reference": url("trust")}}
        entries.append(entry("department", dept))
    if s.contact:
        entries.append(entry("contact", practitioner_resource(s.contact)))
    entries.append(entry("patient", patient_resource(notice.patient, notice.interpreter_language)))

    careplan: Json = {
        "resourceType": "CarePlan",
        "extension": [
            {"url": sy.URGENT_EXTENSION, "valueBoolean": notice.urgent},
            {
                "url": sy.NEXT_OF_KIN_INVOLVED_EXTENSION,
                "valueBoolean": notice.next_of_kin_involved,
            },
            *(
                [{"url": sy.EXISTING_COORDINATOR_EXTENSION, "valueBoolean": True}]
                if notice.existing_coordinator
                else []
            ),
            *(
                [{"url": sy.HEALTH_TRUST_TAKES_PART_EXTENSION, "valueBoolean": True}]
                if notice.health_trust_takes_part
                else []
            ),
        ],
        "status": "draft",
        "intent": "proposal",
        "category": [
            concept(sy.CAREPLAN_CATEGORY_SYSTEM, "individuell-plan", "Individuell plan"),
            *(
                concept(sy.REQUESTED_SERVICE_SYSTEM, k.value, NOTICE_DISPLAY[k])
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
        related = consent_giver_resource(c.given_by, url("patient"))
        if related is not None:
            performer = url("related")
            entries.append(entry("related", related))
        consent = consent_resource(
            given_on=c.given_on,
            reference=c.reference,
            patient_url=url("patient"),
            performer_url=performer,
            purpose=EVENT_NEED_NOTICE,
            lacks_capacity_reason=c.lacks_capacity_reason,
        )
        entries.append(entry("consent", consent))

    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(_NS, f"{notice.sender_message_id}/bundle")),
        "type": "message",
        "timestamp": notice.sent_at.isoformat(),
        "entry": entries,
    }


# --------------------------------------------------------------------------- reading


def bundle_to_notice(bundle: Json, *, allow_synthetic_ids: bool) -> NeedNotice:
    """Read a need-for-IP notice; every problem the sender can fix becomes a receipt error."""
    msg = open_message(bundle, EVENT_NEED_NOTICE)
    header = msg.header

    careplan = msg.focus("CarePlan")
    errors: list[ReceiptError] = []
    if careplan.get("status") != "draft" or careplan.get("intent") != "proposal":
        errors.append(t02("CarePlan of a notice must have status draft and intent proposal"))
    requested = []
    for category in careplan.get("category", []):
        for coding in category.get("coding", []):
            if coding.get("system") == sy.REQUESTED_SERVICE_SYSTEM:
                try:
                    requested.append(NoticeKind(coding.get("code")))
                except ValueError:
                    errors.append(t02("CarePlan.category: unknown requested service code"))
    if not requested:
        errors.append(t02("CarePlan.category names no requested service"))
    if not (careplan.get("description") or "").strip():
        errors.append(t02("CarePlan.description (the need) is missing"))

    patient_res = msg.resolve(careplan.get("subject"), "Patient", "CarePlan.subject")
    patient, interpreter = read_patient(patient_res, allow_synthetic_ids, errors)
    sender = read_sender(msg, careplan.get("author"), "CarePlan.author", errors)
    consent = _read_consent(msg, patient_res)

    sent_at = bundle.get("timestamp")
    if not sent_at:
        errors.append(t02("Bundle.timestamp is missing"))
    source = (header.get("source") or {}).get("endpoint")
    if errors:
        raise Refused(*errors)
    ext = extensions(careplan)
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
            existing_coordinator=bool(ext.get(sy.EXISTING_COORDINATOR_EXTENSION, False)),
            health_trust_takes_part=bool(ext.get(sy.HEALTH_TRUST_TAKES_PART_EXTENSION, False)),
            interpreter_language=interpreter,
            consent=consent,
        )
    except ValidationError as e:
        raise Refused(*(t02(where(err)) for err in e.errors(include_input=False))) from None


def _read_consent(msg: Message, patient: Json) -> ConsentAttestation | None:
    """The first active Consent for the patient; None when there is none (the notice is held)."""
    for consent in msg.of_type("Consent"):
        if consent.get("status") != "active":
            continue
        if msg.by_ref.get((consent.get("patient") or {}).get("reference", "")) is not patient:
            continue
        return ConsentAttestation(**read_consent(msg, consent))
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
