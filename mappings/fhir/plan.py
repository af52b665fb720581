"""Plan transfer <-> FHIR R4 message Bundle: every item of forskrift § 19 (a-i) in FHIR.

No national FHIR profile for individuell plan exists, so standard elements carry what they
fit and the project's own extensions (``systems.py``, ``https://ipgw.example/fhir/...``) carry
the rest; mappings/README.md has the table item by item. Bundle layout (MessageHeader first)::

    MessageHeader  eventCoding message-event#plan-transfer, sender -> department Organization
                   (partOf the trust) or the trust, author -> Practitioner (the sender's
                   contact), source.endpoint, focus -> CarePlan; new-kommune extension
    Organization   the trust, the department (as in a need notice)
    Practitioner   the sender's contact, optional
    Patient        as in a need notice
    Organization   the responsible KE / platform (CarePlan.author)
    CarePlan       status active | completed (+ closed-reason), intent plan, category
                   individuell-plan, identifier plan-id, version extensions, period (§ 19 g),
                   needs / resources / evaluations as repeating extensions, goal -> Goals,
                   careTeam -> CareTeam, activity = one per measure (§ 19 e-f)
    Goal           one per goal (§ 19 a): identifier plan-key, description.text, target.dueDate
    CareTeam       one participant per plan participant (§ 19 b-d) and per cooperating agency
                   (§ 19 i); role = plan-participant code (+ text role), the coordinator's
                   participant also 9034#8 + coordinator-kind (§ 19 c)
    Practitioner / RelatedPerson   the participants' resources, identifier plan-key
    Organization   participants' organisations, cooperating agencies
    Consent        the plan consent (purpose plan) and, when given, the consent to share
                   confidential information (purpose share-confidential, actor per participant)
    RelatedPerson  who consented in the person's place, per Consent

Cross-references inside the plan (a measure's owner and goals, who may see confidential
information) are Bundle references; the key of what they point at travels as a plan-key
identifier, since fullUrls derive from the message id and mean nothing on their own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import ValidationError

from gateway.domain.identifiers import InvalidIdentifier, parse_kommune_nr
from gateway.domain.model import ConsentAttestation, CoordinatorKind
from gateway.domain.plan import (
    Measure,
    Participant,
    ParticipantKind,
    Plan,
    PlanStatus,
    PlanTransfer,
    SharingConsent,
)
from gateway.domain.receipt import ReceiptError, Refused
from mappings.fhir import systems as sy
from mappings.fhir.common import (
    Json,
    Message,
    concept,
    consent_giver_resource,
    consent_resource,
    extension_values,
    open_message,
    organisation_fields,
    organization_resource,
    patient_resource,
    practitioner_resource,
    read_consent,
    read_patient,
    read_sender,
    t02,
    where,
)

EVENT_PLAN_TRANSFER = "plan-transfer"
PURPOSE_PLAN = "plan"
PURPOSE_SHARE = "share-confidential"
COOPERATING_AGENCY = "cooperating-agency"

#: which resource stands for a participant of each kind. The person and next of kin are
#: RelatedPersons (the person with relationship ONESELF) rather than the Patient: a plan may
#: list the person more than once and each participant keeps its own name, telecom and key.
MEMBER_TYPE = {
    ParticipantKind.PERSON: "RelatedPerson",
    ParticipantKind.NEXT_OF_KIN: "RelatedPerson",
    ParticipantKind.PROFESSIONAL: "Practitioner",
    ParticipantKind.OTHER: "Practitioner",
}
_RELATIONSHIP = {ParticipantKind.PERSON: "ONESELF", ParticipantKind.NEXT_OF_KIN: "NOK"}
PARTICIPANT_DISPLAY = {
    ParticipantKind.PERSON: "Personen planen gjelder",
    ParticipantKind.NEXT_OF_KIN: "Pårørende",
    ParticipantKind.PROFESSIONAL: "Helse- og omsorgspersonell",
    ParticipantKind.OTHER: "Annen deltaker",
}
COORDINATOR_DISPLAY = {
    CoordinatorKind.KOORDINATOR: "Koordinator",
    CoordinatorKind.BARNEKOORDINATOR: "Barnekoordinator",
}
_CAREPLAN_STATUS = {PlanStatus.ACTIVE: "active", PlanStatus.CLOSED: "completed"}
_PLAN_STATUS = {fhir: plan for plan, fhir in _CAREPLAN_STATUS.items()}
#: resources a reader accepts as a participant (other senders may pick another than ours)
_PERSON_TYPES = frozenset({"Practitioner", "RelatedPerson", "Patient"})
_NS = uuid.UUID("0b6c54a4-1d55-4f44-b1e6-7a0f3c8e2d91")


# --------------------------------------------------------------------------- writing


def transfer_to_bundle(transfer: PlanTransfer, *, destination: str | None = None) -> Json:
    """The FHIR message Bundle for a plan transfer; ids derive from the sender's message id.

    ``destination``: the receiving platform's endpoint (MessageHeader.destination), as for
    the notice; not part of the transfer read back.
    """

    def url(role: str) -> str:
        return f"urn:uuid:{uuid.uuid5(_NS, f'{transfer.sender_message_id}/{role}')}"

    def ref(role: str) -> Json:
        return {"reference": url(role)}

    def entry(role: str, resource: Json) -> Json:
        rid = url(role).removeprefix("urn:uuid:")
        return {"fullUrl": url(role), "resource": {**resource, "id": rid}}

    def member_role(key: str) -> str:
        return f"participant/{key}"

    s, plan = transfer.sender, transfer.plan
    header: Json = {
        "resourceType": "MessageHeader",
        "id": transfer.sender_message_id,
        "eventCoding": {
            "system": sy.MESSAGE_EVENT_SYSTEM,
            "code": EVENT_PLAN_TRANSFER,
            "display": "Overføring av individuell plan",
        },
        "sender": ref("department" if s.department else "trust"),
        "source": {"endpoint": transfer.source_endpoint},
        **({"destination": [{"endpoint": destination}]} if destination else {}),
        "focus": [ref("careplan")],
    }
    if s.contact:
        header["author"] = ref("contact")
    if transfer.new_kommune_nr:
        header["extension"] = [
            {
                "url": sy.NEW_KOMMUNE_EXTENSION,
                "valueCoding": {
                    "system": sy.MUNICIPALITY_SYSTEMS[0],
                    "code": transfer.new_kommune_nr,
                },
            }
        ]
    entries: list[Json] = [{"fullUrl": url("header"), "resource": header}]
    entries.append(entry("trust", organization_resource(s.organisation)))
    if s.department:
        dept = organization_resource(s.department) | {"partOf": ref("trust")}
        entries.append(entry("department", dept))
    if s.contact:
        entries.append(entry("contact", practitioner_resource(s.contact)))
    entries.append(entry("patient", patient_resource(plan.patient, None)))
    entries.append(entry("responsible", organization_resource(plan.responsible)))

    careplan: Json = {
        "resourceType": "CarePlan",
        "identifier": [{"system": sy.PLAN_ID_SYSTEM, "value": plan.plan_id}],
        "extension": _careplan_extensions(plan),
        "status": _CAREPLAN_STATUS[plan.status],
        "intent": "plan",
        "category": [concept(sy.CAREPLAN_CATEGORY_SYSTEM, "individuell-plan", "Individuell plan")],
        "subject": ref("patient"),
        "period": {"start": plan.period_start.isoformat()}
        | ({"end": plan.period_end.isoformat()} if plan.period_end else {}),
        "author": ref("responsible"),
    }
    if plan.participants or plan.cooperation:
        careplan["careTeam"] = [ref("careteam")]
    if plan.goals:
        careplan["goal"] = [ref(f"goal/{g.key}") for g in plan.goals]
    if plan.measures:
        activity_status = "in-progress" if plan.status is PlanStatus.ACTIVE else "stopped"
        careplan["activity"] = [
            {
                "detail": _activity_detail(
                    m,
                    activity_status,
                    owner=ref(member_role(m.owner)) if m.owner else None,
                    goals=[ref(f"goal/{g}") for g in m.goals],
                )
            }
            for m in plan.measures
        ]
    entries.append(entry("careplan", careplan))

    for g in plan.goals:
        goal: Json = {
            "resourceType": "Goal",
            "identifier": [_key_identifier(g.key)],
            "lifecycleStatus": "active",
            "description": {"text": g.description},
            "subject": ref("patient"),
        }
        if g.target_date:
            goal["target"] = [{"dueDate": g.target_date.isoformat()}]
        entries.append(entry(f"goal/{g.key}", goal))

    if plan.participants or plan.cooperation:
        team_members: list[Json] = []
        for p in plan.participants:
            role = member_role(p.key)
            entries.append(entry(role, _member(p, url("patient"))))
            org_ref = None
            if p.organisation:
                entries.append(entry(f"{role}/organization", organization_resource(p.organisation)))
                org_ref = ref(f"{role}/organization")
            coordinator = plan.coordinator
            kind = coordinator.kind if coordinator and coordinator.participant == p.key else None
            team_members.append(_team_participant(p, ref(role), org_ref, kind))
        for i, c in enumerate(plan.cooperation):
            entries.append(entry(f"cooperation/{i}", organization_resource(c.agency)))
            part: Json = {
                "role": [
                    concept(sy.PLAN_PARTICIPANT_SYSTEM, COOPERATING_AGENCY, "Samarbeidende instans")
                ],
                "member": ref(f"cooperation/{i}"),
            }
            if c.description:
                part["extension"] = [
                    {"url": sy.COOPERATION_DESCRIPTION_EXTENSION, "valueString": c.description}
                ]
            team_members.append(part)
        team = {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": ref("patient"),
            "participant": team_members,
        }
        entries.append(entry("careteam", team))

    consents: list[tuple[str, str, ConsentAttestation | SharingConsent]] = [
        (PURPOSE_PLAN, "consent", plan.consent)
    ]
    if plan.sharing:
        consents.append((PURPOSE_SHARE, "sharing", plan.sharing))
    for purpose, role, given in consents:
        performer = url("patient")
        related = consent_giver_resource(given.given_by, url("patient"))
        if related is not None:
            performer = url(f"{role}-giver")
            entries.append(entry(f"{role}-giver", related))
        consent = consent_resource(
            given_on=given.given_on,
            reference=given.reference,
            patient_url=url("patient"),
            performer_url=performer,
            purpose=purpose,
            lacks_capacity_reason=given.lacks_capacity_reason,
        )
        consent["provision"]["type"] = "permit"
        if purpose == PURPOSE_SHARE and plan.sharing and plan.sharing.participants:
            # v3 ParticipationType IRCP: the information recipient
            recipient = concept(sy.PARTICIPATION_TYPE_SYSTEM, "IRCP", "information recipient")
            consent["provision"]["actor"] = [
                {"role": recipient, "reference": ref(member_role(k))}
                for k in plan.sharing.participants
            ]
        entries.append(entry(role, consent))

    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(_NS, f"{transfer.sender_message_id}/bundle")),
        "type": "message",
        "timestamp": transfer.sent_at.isoformat(),
        "entry": entries,
    }


def _key_identifier(key: str) -> Json:
    # use temp: a key means something within this plan only
    return {"use": "temp", "system": sy.PLAN_KEY_SYSTEM, "value": key}


def _careplan_extensions(plan: Plan) -> list[Json]:
    ext: list[Json] = [
        {"url": sy.PLAN_VERSION_EXTENSION, "valuePositiveInt": plan.version},
        {"url": sy.PLAN_VERSION_ID_EXTENSION, "valueId": plan.version_id},
    ]
    if plan.previous_version_id:
        ext.append(
            {"url": sy.PLAN_PREVIOUS_VERSION_ID_EXTENSION, "valueId": plan.previous_version_id}
        )
    if plan.closed_reason:
        ext.append({"url": sy.PLAN_CLOSED_REASON_EXTENSION, "valueString": plan.closed_reason})
    ext += [{"url": sy.PLAN_NEED_EXTENSION, "valueString": n} for n in plan.needs]
    ext += [{"url": sy.PLAN_RESOURCE_EXTENSION, "valueString": r} for r in plan.resources]
    ext += [
        {"url": sy.PLAN_EVALUATION_EXTENSION, "valueDate": d.isoformat()} for d in plan.evaluations
    ]
    return ext


def _member(p: Participant, patient_url: str) -> Json:
    """The Practitioner or RelatedPerson that stands for a participant."""
    identifiers = [_key_identifier(p.key)]
    if p.hpr_nr is not None:
        identifiers.append({"system": sy.HPR_SYSTEM, "value": str(p.hpr_nr)})
    res: Json = {
        "resourceType": MEMBER_TYPE[p.kind],
        "identifier": identifiers,
        "name": [{"text": p.name}],
    }
    telecom = []
    if p.phone:
        telecom.append({"system": "phone", "value": p.phone})
    if p.email:
        telecom.append({"system": "email", "value": p.email})
    if telecom:
        res["telecom"] = telecom
    if res["resourceType"] == "RelatedPerson":
        res["patient"] = {"reference": patient_url}
        res["relationship"] = [concept(sy.ROLE_CODE_SYSTEM, _RELATIONSHIP[p.kind])]
    return res


def _team_participant(
    p: Participant, member: Json, organisation: Json | None, coordinator: CoordinatorKind | None
) -> Json:
    kind = concept(sy.PLAN_PARTICIPANT_SYSTEM, p.kind.value, PARTICIPANT_DISPLAY[p.kind])
    if p.role:
        kind["text"] = p.role
    roles = [kind]
    if coordinator is not None:
        roles.append(
            {
                "coding": [
                    {
                        "system": sy.ROLE_9034_SYSTEM,
                        "code": sy.ROLE_9034_COORDINATOR,
                        "display": "Koordinator individuell plan",
                    },
                    {
                        "system": sy.COORDINATOR_KIND_SYSTEM,
                        "code": coordinator.value,
                        "display": COORDINATOR_DISPLAY[coordinator],
                    },
                ]
            }
        )
    part: Json = {"role": roles, "member": member}
    ext: list[Json] = []
    if p.contribution:
        ext.append({"url": sy.PARTICIPANT_CONTRIBUTION_EXTENSION, "valueString": p.contribution})
    if organisation is not None:
        if MEMBER_TYPE[p.kind] == "Practitioner":
            part["onBehalfOf"] = organisation
        else:
            # ctm-1: onBehalfOf only when the member is a Practitioner
            ext.append(
                {"url": sy.PARTICIPANT_ORGANIZATION_EXTENSION, "valueReference": organisation}
            )
    if ext:
        part["extension"] = ext
    return part


def _activity_detail(m: Measure, status: str, *, owner: Json | None, goals: list[Json]) -> Json:
    ext: list[Json] = [{"url": sy.MEASURE_KEY_EXTENSION, "valueId": m.key}]
    if m.how:
        ext.append({"url": sy.MEASURE_HOW_EXTENSION, "valueString": m.how})
    if m.start or m.end:
        period = {"start": m.start.isoformat()} if m.start else {}
        period |= {"end": m.end.isoformat()} if m.end else {}
        ext.append({"url": sy.MEASURE_PERIOD_EXTENSION, "valuePeriod": period})
    detail: Json = {"extension": ext, "status": status, "description": m.description}
    if m.scope:
        detail["scheduledString"] = m.scope
    if owner is not None:
        detail["performer"] = [owner]
    if goals:
        detail["goal"] = goals
    return detail


# --------------------------------------------------------------------------- reading


def bundle_to_transfer(bundle: Json, *, allow_synthetic_ids: bool) -> PlanTransfer:
    """Read a plan transfer; every problem the sender can fix becomes a receipt error.

    Error details name FHIR paths and rules, never values: they reach receipts and logs.
    """
    msg = open_message(bundle, EVENT_PLAN_TRANSFER)
    header = msg.header

    careplan = msg.focus("CarePlan")
    errors: list[ReceiptError] = []
    if careplan.get("intent") != "plan":
        errors.append(t02("CarePlan of a plan transfer must have intent plan"))
    status = _PLAN_STATUS.get(careplan.get("status", ""))
    if status is None:
        errors.append(t02("CarePlan.status of a plan transfer must be active or completed"))
    plan_id = next(
        (
            i.get("value")
            for i in careplan.get("identifier", [])
            if i.get("system") == sy.PLAN_ID_SYSTEM
        ),
        None,
    )
    if plan_id is None:
        errors.append(t02("CarePlan.identifier has no plan-id"))
    for url, name in (
        (sy.PLAN_VERSION_EXTENSION, "plan-version"),
        (sy.PLAN_VERSION_ID_EXTENSION, "plan-version-id"),
    ):
        if len(extension_values(careplan, url)) != 1:
            errors.append(t02(f"CarePlan needs exactly one {name} extension"))
    sent_at = bundle.get("timestamp")
    if not sent_at:
        errors.append(t02("Bundle.timestamp is missing"))

    patient_res = msg.resolve(careplan.get("subject"), "Patient", "CarePlan.subject")
    patient, _ = read_patient(patient_res, allow_synthetic_ids, errors)
    sender = read_sender(msg, header.get("author"), "MessageHeader.author", errors)
    new_kommune_nr = _read_new_kommune(header)
    if errors:
        raise Refused(*errors)

    responsible = msg.resolve(careplan.get("author"), "Organization", "CarePlan.author")
    goals, goal_keys = _read_goals(msg, careplan)
    team = _Team(msg, careplan)
    plan_fields: Json = {
        "plan_id": plan_id,
        "version": _first(careplan, sy.PLAN_VERSION_EXTENSION),
        "version_id": _first(careplan, sy.PLAN_VERSION_ID_EXTENSION),
        "previous_version_id": _first(careplan, sy.PLAN_PREVIOUS_VERSION_ID_EXTENSION),
        "status": status,
        "closed_reason": _first(careplan, sy.PLAN_CLOSED_REASON_EXTENSION),
        "patient": patient,
        "responsible": organisation_fields(responsible),
        "needs": extension_values(careplan, sy.PLAN_NEED_EXTENSION),
        "resources": extension_values(careplan, sy.PLAN_RESOURCE_EXTENSION),
        "goals": goals,
        "participants": team.participants,
        "coordinator": team.coordinator,
        "measures": _read_measures(msg, careplan, team.keys, goal_keys),
        **_read_period(careplan),
        "evaluations": [
            _date(d, "CarePlan plan-evaluation extension")
            for d in extension_values(careplan, sy.PLAN_EVALUATION_EXTENSION)
        ],
        **_read_consents(msg, patient_res, team.keys),
        "cooperation": team.cooperation,
    }
    try:
        return PlanTransfer.model_validate(
            {
                "sender_message_id": header.get("id"),
                "sent_at": sent_at,
                "source_endpoint": (header.get("source") or {}).get("endpoint"),
                "sender": sender,
                "new_kommune_nr": new_kommune_nr,
                "plan": plan_fields,
            }
        )
    except ValidationError as e:
        raise Refused(*(t02(where(err)) for err in e.errors(include_input=False)[:10])) from None


def _first(element: Json, url: str) -> Any:
    values = extension_values(element, url)
    return values[0] if values else None


def _date(value: Any, place: str) -> dt.date:
    """A full date from an R4 date or dateTime (the day as written; R4 allows "2026")."""
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            pass
    raise Refused.one("T02", f"{place} must give a full date (YYYY-MM-DD)")


def _optional_date(value: Any, place: str) -> dt.date | None:
    return None if value is None else _date(value, place)


def _key(res: Json) -> Any:
    return next(
        (
            i.get("value")
            for i in res.get("identifier", [])
            if i.get("system") == sy.PLAN_KEY_SYSTEM
        ),
        None,
    )


def _read_new_kommune(header: Json) -> str | None:
    codings = extension_values(header, sy.NEW_KOMMUNE_EXTENSION)
    if not codings:
        return None
    code = codings[0].get("code") if isinstance(codings[0], dict) else None
    if not isinstance(code, str):
        raise Refused.one("T02", "MessageHeader new-kommune extension needs a valueCoding code")
    try:
        return parse_kommune_nr(code)
    except InvalidIdentifier as e:
        raise Refused.one(e.code, "MessageHeader new-kommune: " + e.reason) from None


def _read_period(careplan: Json) -> Json:
    period = careplan.get("period") or {}
    if "start" not in period:
        raise Refused.one("T02", "CarePlan.period.start (the plan period) is missing")
    return {
        "period_start": _date(period["start"], "CarePlan.period.start"),
        "period_end": _optional_date(period.get("end"), "CarePlan.period.end"),
    }


def _read_goals(msg: Message, careplan: Json) -> tuple[list[Json], dict[int, Any]]:
    """The goals in CarePlan.goal order, and each Goal resource's key (by object identity)."""
    goals: list[Json] = []
    keys: dict[int, Any] = {}
    for ref in careplan.get("goal", []):
        goal = msg.resolve(ref, "Goal", "CarePlan.goal")
        key = _key(goal)
        if key is None:
            raise Refused.one("T02", "Goal.identifier has no plan-key")
        due = next((t["dueDate"] for t in goal.get("target", []) if "dueDate" in t), None)
        goals.append(
            {
                "key": key,
                "description": (goal.get("description") or {}).get("text"),
                "target_date": _optional_date(due, "Goal.target.dueDate"),
            }
        )
        keys[id(goal)] = key
    return goals, keys


class _Team:
    """The CareTeam(s) of the plan: participants, the coordinator and cooperating agencies."""

    def __init__(self, msg: Message, careplan: Json) -> None:
        self.msg = msg
        self.participants: list[Json] = []
        self.cooperation: list[Json] = []
        self.coordinator: Json | None = None
        #: participant keys by the identity of the resource that stands for them
        self.keys: dict[int, Any] = {}
        for ref in careplan.get("careTeam", []):
            team = msg.resolve(ref, "CareTeam", "CarePlan.careTeam")
            for part in team.get("participant", []):
                self._read(part)

    def _read(self, part: Json) -> None:
        roles = part.get("role", [])
        kinds = [
            (c.get("code"), role)
            for role in roles
            for c in role.get("coding", [])
            if c.get("system") == sy.PLAN_PARTICIPANT_SYSTEM
        ]
        if len(kinds) != 1:
            raise Refused.one(
                "T02", "CareTeam.participant.role needs exactly one plan-participant code"
            )
        code, kind_role = kinds[0]
        if code == COOPERATING_AGENCY:
            agency = self.msg.resolve(
                part.get("member"), "Organization", "CareTeam.participant.member (agency)"
            )
            self.cooperation.append(
                {
                    "agency": organisation_fields(agency),
                    "description": _first(part, sy.COOPERATION_DESCRIPTION_EXTENSION),
                }
            )
            return
        if code not in {k.value for k in ParticipantKind}:
            raise Refused.one("T02", "CareTeam.participant.role: unknown plan-participant code")
        member = self.msg.resolve_any(part.get("member"), _PERSON_TYPES, "CareTeam.participant")
        key = _key(member)
        if key is None:
            raise Refused.one("T02", "a CareTeam participant's resource has no plan-key identifier")
        self.keys[id(member)] = key
        identifiers = member.get("identifier", [])
        telecom = member.get("telecom", [])
        self.participants.append(
            {
                "key": key,
                "kind": code,
                "name": _name_text(member),
                "role": kind_role.get("text"),
                "hpr_nr": next(
                    (i.get("value") for i in identifiers if i.get("system") == sy.HPR_SYSTEM),
                    None,
                ),
                "organisation": self._organisation(part),
                "phone": next(
                    (t.get("value") for t in telecom if t.get("system") == "phone"), None
                ),
                "email": next(
                    (t.get("value") for t in telecom if t.get("system") == "email"), None
                ),
                "contribution": _first(part, sy.PARTICIPANT_CONTRIBUTION_EXTENSION),
            }
        )
        coordinator = _coordinator_kind(roles)
        if coordinator is not None:
            if self.coordinator is not None:
                raise Refused.one("T02", "a plan has one coordinator: two participants have 9034#8")
            self.coordinator = {"participant": key, "kind": coordinator}

    def _organisation(self, part: Json) -> Json | None:
        refs = [part["onBehalfOf"]] if "onBehalfOf" in part else []
        refs += extension_values(part, sy.PARTICIPANT_ORGANIZATION_EXTENSION)
        if not refs:
            return None
        org = self.msg.resolve(
            refs[0] if isinstance(refs[0], dict) else None,
            "Organization",
            "CareTeam.participant.onBehalfOf (or participant-organization)",
        )
        return organisation_fields(org)


def _name_text(res: Json) -> str | None:
    name = (res.get("name") or [{}])[0]
    if "text" in name:
        text: str = name["text"]
        return text
    parts = [*name.get("given", []), name.get("family")]
    return " ".join(p for p in parts if isinstance(p, str)) or None


def _coordinator_kind(roles: list[Json]) -> str | None:
    """koordinator or barnekoordinator from the own code; 9034#8 alone means koordinator."""
    codings = [c for role in roles for c in role.get("coding", [])]
    own = [c.get("code") for c in codings if c.get("system") == sy.COORDINATOR_KIND_SYSTEM]
    if own:
        kind = own[0]
        if kind not in COORDINATOR_DISPLAY:
            raise Refused.one("T02", "CareTeam.participant.role: unknown coordinator-kind code")
        return str(kind)
    if any(
        c.get("system") == sy.ROLE_9034_SYSTEM and c.get("code") == sy.ROLE_9034_COORDINATOR
        for c in codings
    ):
        return CoordinatorKind.KOORDINATOR.value
    return None


def _read_measures(
    msg: Message, careplan: Json, people: dict[int, Any], goals: dict[int, Any]
) -> list[Json]:
    measures = []
    for activity in careplan.get("activity", []):
        detail = activity.get("detail")
        if detail is None:
            raise Refused.one("T02", "CarePlan.activity needs a detail (the measure)")
        period = _first(detail, sy.MEASURE_PERIOD_EXTENSION) or detail.get("scheduledPeriod", {})
        if not isinstance(period, dict):
            raise Refused.one("T02", "CarePlan.activity.detail measure-period must be a Period")
        performers = detail.get("performer", [])
        if len(performers) > 1:
            raise Refused.one("T02", "CarePlan.activity.detail.performer: a measure has one owner")
        owner = None
        if performers:
            owner = _target_key(msg, performers[0], people, "performer", "a CareTeam participant")
        measures.append(
            {
                "key": _first(detail, sy.MEASURE_KEY_EXTENSION),
                "description": detail.get("description"),
                "scope": detail.get("scheduledString"),
                "owner": owner,
                "how": _first(detail, sy.MEASURE_HOW_EXTENSION),
                "goals": [
                    _target_key(msg, g, goals, "goal", "a Goal of CarePlan.goal")
                    for g in detail.get("goal", [])
                ],
                "start": _optional_date(period.get("start"), "measure period start"),
                "end": _optional_date(period.get("end"), "measure period end"),
            }
        )
    return measures


def _target_key(msg: Message, ref: Json, keys: dict[int, Any], element: str, what: str) -> Any:
    target = msg.by_ref.get(ref.get("reference", ""))
    if target is None or id(target) not in keys:
        raise Refused.one("T02", f"CarePlan.activity.detail.{element} must reference {what}")
    return keys[id(target)]


def _read_consents(msg: Message, patient: Json, people: dict[int, Any]) -> Json:
    """§ 19 h: the plan consent (required) and the consent to share (optional)."""
    found: dict[str, Json] = {}
    for consent in msg.of_type("Consent"):
        if consent.get("status") != "active":
            continue
        if msg.by_ref.get((consent.get("patient") or {}).get("reference", "")) is not patient:
            continue
        provision = consent.get("provision") or {}
        for coding in provision.get("purpose", []):
            if coding.get("system") == sy.CONSENT_PURPOSE_SYSTEM:
                found.setdefault(str(coding.get("code")), consent)
    if PURPOSE_PLAN not in found:
        raise Refused.one("T02", "no active Consent for the patient with purpose plan (§ 19 h)")
    out: Json = {"consent": read_consent(msg, found[PURPOSE_PLAN]), "sharing": None}
    sharing = found.get(PURPOSE_SHARE)
    if sharing is not None:
        actors = (sharing.get("provision") or {}).get("actor", [])
        shared_with = []
        for actor in actors:
            target = msg.by_ref.get((actor.get("reference") or {}).get("reference", ""))
            if target is None or id(target) not in people:
                raise Refused.one(
                    "T02", "Consent.provision.actor must reference a CareTeam participant"
                )
            shared_with.append(people[id(target)])
        out["sharing"] = read_consent(msg, sharing) | {"participants": shared_with}
    return out
