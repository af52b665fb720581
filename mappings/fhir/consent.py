"""A standalone FHIR R4 Consent <-> a ConsentRecord and the person's id.

``POST /fhir/Consent`` takes the consents that do not travel inside a message: a new consent,
one for another purpose, a withdrawal. The person is named by a logical reference
(``Consent.patient.identifier``, a no-basis person-id system), the consenter in the person's
place by a contained RelatedPerson, what it allows by ``provision.purpose`` codes of the
project's consent-purpose system:

- ``status`` ``active``: given; ``rejected`` or ``provision.type`` ``deny``: refused;
  ``inactive`` or ``entered-in-error``: withdrawn (from ``meta.lastUpdated``, else now);
- ``dateTime``: the day it was given; ``provision.period``: when it holds;
- ``provision.actor`` (role IRCP) with ``reference.identifier``: who may see confidential
  information; the *consent-kommune* extension: the kommuner a consent names.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fhir.resources.R4B.consent import Consent
from pydantic import ValidationError

from gateway.domain.consent import ConsentPurpose, ConsentRecord
from gateway.domain.identifiers import InvalidIdentifier, PersonIdKind, parse_person_id
from gateway.domain.model import LOCAL_ID_REASON, ConsentGiver
from gateway.domain.receipt import ReceiptError, Refused
from mappings.fhir import systems as sy
from mappings.fhir.common import (
    GIVER_ROLE,
    check_resource,
    concept,
    extension_values,
    t02,
    where,
)

Json = dict[str, Any]

_WITHDRAWN = frozenset({"inactive", "entered-in-error"})


def read_consent(
    resource: Json, *, allow_synthetic_ids: bool, now: dt.datetime
) -> tuple[str, ConsentRecord]:
    """(person id, record) from a Consent; Refused (T02, E30, E31, ...) with what to fix."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Consent":
        raise Refused.one("T02", "body must be a FHIR Consent")
    check_resource(resource, Consent)

    person_id = _person(resource, allow_synthetic_ids)
    consent_id = resource.get("id") or next(
        (i.get("value") for i in resource.get("identifier", []) if i.get("value")), None
    )
    if not consent_id:
        raise Refused.one("T02", "Consent needs an id or an identifier (its own id)")
    provision = resource.get("provision") or {}
    purposes = []
    for coding in provision.get("purpose", []):
        if coding.get("system") == sy.CONSENT_PURPOSE_SYSTEM:
            try:
                purposes.append(ConsentPurpose(coding.get("code")))
            except ValueError:
                raise Refused.one(
                    "T02", "Consent.provision.purpose: unknown purpose code"
                ) from None
    if not purposes:
        raise Refused.one(
            "T02", f"Consent.provision.purpose names no {sy.CONSENT_PURPOSE_SYSTEM} code"
        )
    given_on = resource.get("dateTime") or ""
    if len(given_on) < 10:
        raise Refused.one("T02", "Consent.dateTime must give the day consent was given")
    period = provision.get("period") or {}
    status = resource.get("status")
    withdrawn_at = None
    if status in _WITHDRAWN:
        updated = (resource.get("meta") or {}).get("lastUpdated")
        withdrawn_at = dt.datetime.fromisoformat(updated) if updated else now
    reason = extension_values(resource, sy.LACKS_CAPACITY_EXTENSION)
    try:
        record = ConsentRecord(
            id=consent_id,
            purposes=tuple(dict.fromkeys(purposes)),
            given_by=_giver(resource),
            lacks_capacity_reason=reason[0] if reason else None,
            given_on=dt.date.fromisoformat(given_on[:10]),
            valid_from=dt.date.fromisoformat(period["start"][:10]) if "start" in period else None,
            valid_until=dt.date.fromisoformat(period["end"][:10]) if "end" in period else None,
            refused=status == "rejected" or provision.get("type") == "deny",
            withdrawn_at=withdrawn_at,
            kommuner=tuple(
                c.get("code") for c in extension_values(resource, sy.CONSENT_KOMMUNE_EXTENSION)
            ),
            participants=tuple(
                ((a.get("reference") or {}).get("identifier") or {}).get("value", "")
                for a in provision.get("actor", [])
            ),
            recorded_at=now,
        )
    except ValidationError as e:
        raise Refused(
            *(t02(f"Consent: {where(err)}") for err in e.errors(include_input=False)[:10])
        ) from None
    except ValueError:
        raise Refused.one("T02", "Consent: a date cannot be read") from None
    if status not in ("active", "rejected", *_WITHDRAWN):
        raise Refused.one(
            "T02", f"Consent.status {status} is not a decision the gateway can act on"
        )
    return person_id, record


def _person(resource: Json, allow_synthetic: bool) -> str:
    ident = (resource.get("patient") or {}).get("identifier") or {}
    system, value = ident.get("system"), ident.get("value")
    if system not in sy.PERSON_ID_KINDS or not value:
        raise Refused.one(
            "E30", "Consent.patient.identifier needs a fødselsnummer, D-nummer or FH-nummer"
        )
    try:
        pid = parse_person_id(value, allow_synthetic=allow_synthetic)
    except InvalidIdentifier as e:
        raise Refused.one(e.code, e.reason) from None
    if pid.kind is PersonIdKind.HNR:
        raise Refused.one("E31", LOCAL_ID_REASON)
    if pid.kind is not sy.PERSON_ID_KINDS[system]:
        raise Refused(ReceiptError(code="E31", detail="identifier system and number disagree"))
    return pid.value


def _giver(resource: Json) -> ConsentGiver:
    contained = {f"#{r.get('id')}": r for r in resource.get("contained", []) if isinstance(r, dict)}
    for performer in resource.get("performer", []):
        who = contained.get(performer.get("reference", ""))
        if who and who.get("resourceType") == "RelatedPerson":
            codes = {
                c.get("code") for rel in who.get("relationship", []) for c in rel.get("coding", [])
            }
            if codes & sy.PARENT_ROLE_CODES:
                return ConsentGiver.PARENTS
            return ConsentGiver.NEXT_OF_KIN
    return ConsentGiver.PERSON


def write_consent(person_id: str, kind: PersonIdKind, record: ConsentRecord) -> Json:
    """The record as a Consent for ``GET /fhir/Consent`` (the caller named the person)."""
    status = "inactive" if record.withdrawn_at else "rejected" if record.refused else "active"
    provision: Json = {
        "type": "deny" if record.refused else "permit",
        "purpose": [
            {"system": sy.CONSENT_PURPOSE_SYSTEM, "code": p.value} for p in record.purposes
        ],
    }
    period = {
        k: v.isoformat()
        for k, v in (("start", record.valid_from), ("end", record.valid_until))
        if v is not None
    }
    if period:
        provision["period"] = period
    if record.participants:
        provision["actor"] = [
            {
                "role": concept(sy.PARTICIPATION_TYPE_SYSTEM, "IRCP"),
                "reference": {"identifier": {"value": p}},
            }
            for p in record.participants
        ]
    consent: Json = {"resourceType": "Consent", "id": record.id}
    if record.withdrawn_at:
        consent["meta"] = {"lastUpdated": record.withdrawn_at.isoformat()}
    extensions: list[Json] = []
    if record.lacks_capacity_reason:
        extensions.append(
            {"url": sy.LACKS_CAPACITY_EXTENSION, "valueString": record.lacks_capacity_reason}
        )
    extensions += [
        {
            "url": sy.CONSENT_KOMMUNE_EXTENSION,
            "valueCoding": {"system": sy.MUNICIPALITY_SYSTEMS[0], "code": k},
        }
        for k in record.kommuner
    ]
    if extensions:
        consent["extension"] = extensions
    if record.given_by in GIVER_ROLE:
        consent["contained"] = [
            {
                "resourceType": "RelatedPerson",
                "id": "giver",
                "patient": {
                    "identifier": {"system": sy.PERSON_ID_SYSTEMS[kind], "value": person_id}
                },
                "relationship": [concept(sy.ROLE_CODE_SYSTEM, GIVER_ROLE[record.given_by])],
            }
        ]
        performer: list[Json] = [{"reference": "#giver"}]
    else:
        performer = [{"identifier": {"system": sy.PERSON_ID_SYSTEMS[kind], "value": person_id}}]
    return consent | {
        "status": status,
        "scope": concept(sy.CONSENT_SCOPE_SYSTEM, "patient-privacy"),
        "category": [concept(sy.LOINC, "59284-0", "Patient Consent")],
        "patient": {"identifier": {"system": sy.PERSON_ID_SYSTEMS[kind], "value": person_id}},
        "dateTime": record.given_on.isoformat(),
        "performer": performer,
        "policyRule": concept(sy.ACT_CODE_SYSTEM, "OPTIN"),
        "provision": provision,
    }
