"""A plan status message as a FHIR R4 message: MessageHeader event ``plan-status`` whose focus
is a ``Communication`` about the plan.

Communication because it is what it is: the gateway telling a unit something about a plan it
has, not a new version of the plan. ``category`` says what happened (the project's
``plan-event`` codes), ``about`` names the plan by its plan-id and the gateway message the
status follows up, ``subject`` the person (so the receiver files it with the plan), and
``payload`` says it in words. For a transfer the kommune the plan went to is the
``new-kommune`` extension (as on a transfer's MessageHeader) and its KE an Organization.
"""

from __future__ import annotations

import uuid

from pydantic import ValidationError

from gateway.domain.plan import PLAN_EVENT_TEXT, PlanEvent, PlanStatusMessage
from gateway.domain.receipt import ReceiptError, Refused
from mappings.fhir import systems as sy
from mappings.fhir.common import (
    Json,
    concept,
    extension_values,
    open_message,
    organisation_fields,
    organization_resource,
    patient_resource,
    read_patient,
    read_sender,
    t02,
    where,
)

EVENT_PLAN_STATUS = "plan-status"
_NS = uuid.UUID("5f0d8f0e-3a4b-4c4e-9d7a-2b8e6f1c9a33")


def status_to_bundle(status: PlanStatusMessage, *, destination: str | None = None) -> Json:
    """The message Bundle; ids derive from the status message's own id."""

    def url(role: str) -> str:
        return f"urn:uuid:{uuid.uuid5(_NS, f'{status.message_ref}/{role}')}"

    def ref(role: str) -> Json:
        return {"reference": url(role)}

    def entry(role: str, resource: Json) -> Json:
        return {"fullUrl": url(role), "resource": {**resource, "id": url(role)[9:]}}

    header: Json = {
        "resourceType": "MessageHeader",
        "id": status.message_ref,
        "eventCoding": {
            "system": sy.MESSAGE_EVENT_SYSTEM,
            "code": EVENT_PLAN_STATUS,
            "display": "Status for individuell plan",
        },
        "sender": ref("sender"),
        "source": {"endpoint": f"urn:uuid:{status.message_ref}"},
        **({"destination": [{"endpoint": destination}]} if destination else {}),
        "focus": [ref("communication")],
    }
    communication: Json = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [concept(sy.PLAN_EVENT_SYSTEM, status.event, PLAN_EVENT_TEXT[status.event])],
        "subject": ref("patient"),
        "about": [
            {"identifier": {"system": sy.PLAN_ID_SYSTEM, "value": status.plan_id}},
            {"identifier": {"system": sy.GATEWAY_MESSAGE_SYSTEM, "value": status.regarding}},
        ],
        "sent": status.sent_at.isoformat(),
        "sender": ref("sender"),
        "payload": [{"contentString": readable(status)}],
        "extension": [{"url": sy.PLAN_VERSION_EXTENSION, "valuePositiveInt": status.version}],
    }
    if status.new_kommune_nr:
        communication["extension"].append(
            {
                "url": sy.NEW_KOMMUNE_EXTENSION,
                "valueCoding": {
                    "system": sy.MUNICIPALITY_SYSTEMS[0],
                    "code": status.new_kommune_nr,
                },
            }
        )
    if status.new_responsible:
        communication["extension"].append(
            {"url": sy.NEW_RESPONSIBLE_EXTENSION, "valueReference": ref("new-responsible")}
        )
    entries = [
        {"fullUrl": url("header"), "resource": header},
        entry("sender", organization_resource(status.sender.organisation)),
        entry("patient", patient_resource(status.patient, None)),
        entry("communication", communication),
    ]
    if status.new_responsible:
        entries.append(entry("new-responsible", organization_resource(status.new_responsible)))
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(_NS, f"{status.message_ref}/bundle")),
        "type": "message",
        "timestamp": status.sent_at.isoformat(),
        "entry": entries,
    }


def readable(status: PlanStatusMessage) -> str:
    """The status in words, as a case worker reads it (no content of the plan)."""
    text = f"{PLAN_EVENT_TEXT[status.event]}. Plan-id {status.plan_id}, versjon {status.version}."
    if status.event is PlanEvent.TRANSFERRED:
        where_to = f"kommune {status.new_kommune_nr}"
        if status.new_responsible:
            where_to += f" ({status.new_responsible.name})"
        text += f" Ny ansvarlig: {where_to}. Avslutt planen her og gi tilgang videre."
    else:
        text += " Planen skal ikke lenger brukes eller deles videre."
    return text


def bundle_to_status(bundle: Json, *, allow_synthetic_ids: bool) -> PlanStatusMessage:
    """Read a status message back (what a receiving platform does; the tests check with it)."""
    msg = open_message(bundle, EVENT_PLAN_STATUS)
    communication = msg.focus("Communication")
    errors: list[ReceiptError] = []
    events = [
        c.get("code")
        for cat in communication.get("category", [])
        for c in cat.get("coding", [])
        if c.get("system") == sy.PLAN_EVENT_SYSTEM
    ]
    about = {
        (a.get("identifier") or {}).get("system"): (a.get("identifier") or {}).get("value")
        for a in communication.get("about", [])
    }
    patient, _ = read_patient(
        msg.resolve(communication.get("subject"), "Patient", "Communication.subject"),
        allow_synthetic_ids,
        errors,
    )
    sender = read_sender(msg, None, "MessageHeader.author", errors)
    if errors:
        raise Refused(*errors)
    kommune = [c.get("code") for c in extension_values(communication, sy.NEW_KOMMUNE_EXTENSION)]
    responsible = [
        organisation_fields(msg.resolve(r, "Organization", "Communication new-responsible"))
        for r in extension_values(communication, sy.NEW_RESPONSIBLE_EXTENSION)
    ]
    versions = extension_values(communication, sy.PLAN_VERSION_EXTENSION)
    try:
        return PlanStatusMessage.model_validate(
            {
                "message_ref": msg.header.get("id"),
                "sent_at": communication.get("sent"),
                "sender": sender,
                "patient": patient,
                "plan_id": about.get(sy.PLAN_ID_SYSTEM),
                "version": versions[0] if versions else None,
                "event": events[0] if events else None,
                "regarding": about.get(sy.GATEWAY_MESSAGE_SYSTEM),
                "new_kommune_nr": kommune[0] if kommune else None,
                "new_responsible": responsible[0] if responsible else None,
            }
        )
    except ValidationError as e:
        raise Refused(*(t02(where(err)) for err in e.errors(include_input=False)[:10])) from None
