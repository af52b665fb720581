"""Plan transfer <-> FHIR R4 message Bundle (mappings/fhir/plan.py).

Expected values come from the generated or hand-written transfer, from the standards
(../shared/standards/README.md, the official R4 JSON Schema) and from the mapping's published
design (mappings/README.md): identifier and code systems are spelled out here, never taken
from the code under test.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft6Validator
from pydantic import ValidationError

from gateway.domain.identifiers import PersonIdKind
from gateway.domain.model import (
    ConsentAttestation,
    ConsentGiver,
    Contact,
    CoordinatorKind,
    Organisation,
    Patient,
    PersonName,
    Sender,
)
from gateway.domain.plan import (
    Cooperation,
    Coordinator,
    Goal,
    Measure,
    Participant,
    ParticipantKind,
    Plan,
    PlanStatus,
    PlanTransfer,
    SharingConsent,
)
from gateway.domain.receipt import Refused
from mappings.fhir.notice import bundle_to_notice
from mappings.fhir.plan import bundle_to_transfer, transfer_to_bundle
from mappings.fhir.r4json import r4_json_problems
from tests.plan_strategies import plan_transfers
from tests.standards import (
    HER_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    PERSON_ID_SYSTEM,
    ROLE_9034,
    r4_schema_validator,
    schema_problems,
)
from tests.strategies import mutated, patients

Json = dict[str, Any]

# the project's own systems, as mappings/README.md publishes them
OWN = "https://ipgw.example/fhir"
EVENT_SYSTEM = f"{OWN}/CodeSystem/message-event"
PLAN_ID = f"{OWN}/NamingSystem/plan-id"
PLAN_KEY = f"{OWN}/NamingSystem/plan-key"
PARTICIPANT = f"{OWN}/CodeSystem/plan-participant"
COORDINATOR_KIND = f"{OWN}/CodeSystem/coordinator-kind"
PURPOSE = f"{OWN}/CodeSystem/consent-purpose"
CAREPLAN_CATEGORY = f"{OWN}/CodeSystem/careplan-category"
#: the resource that stands for a participant of each kind (mappings/README.md)
MEMBER_TYPE = {
    ParticipantKind.PERSON: "RelatedPerson",
    ParticipantKind.NEXT_OF_KIN: "RelatedPerson",
    ParticipantKind.PROFESSIONAL: "Practitioner",
    ParticipantKind.OTHER: "Practitioner",
}

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- fixed transfers

#: synthetic (month + 80: 15.03.85), so it can never be a real person's number
SYNTHETIC_FNR = "15838512086"

BASE = PlanTransfer(
    sender_message_id="7d1e0c2a-5b8f-4a43-9e61-2f0d4c3b1a77",
    sent_at=dt.datetime(2026, 11, 23, 14, 5, 9, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    source_endpoint="urn:oid:2.16.578.1.12.4.1.2:99200001",
    sender=Sender(
        organisation=Organisation(name="Molde kommune", her_id=99200001, orgnr="964338442"),
        department=Organisation(name="Koordinerande eining, Molde kommune", her_id=99200012),
        contact=Contact(name="Sølvi Kårstad", phone="+4771111111"),
    ),
    new_kommune_nr="1508",
    plan=Plan(
        plan_id="ip-2024-0042",
        version=3,
        version_id="b6a2f4f0-8d11-4d7e-a1b0-3e9c5d2f7a10",
        previous_version_id="c0ffee00-1d2e-4f5a-9b8c-7d6e5f4a3b21",
        patient=Patient(
            person_id=SYNTHETIC_FNR,
            id_kind=PersonIdKind.FNR,
            name=PersonName(given="Åsne Kjærstin", family="Øyehaug-Ødegård"),
            kommune_nr="1506",
        ),
        responsible=Organisation(name="Koordinerande eining, Molde kommune", her_id=99200012),
        needs=("Hjelp til å planleggje skuledagen", "Avlasting for familien"),
        resources=("Sterk familie", "Glad i musikk og friluftsliv"),
        goals=(
            Goal(key="g-skule", description="Gå heile skuledagar", target_date=dt.date(2027, 6, 1)),
            Goal(key="g-fritid", description="Vere med i korps"),
        ),
        participants=(
            Participant(key="p-asne", kind=ParticipantKind.PERSON, name="Åsne", role="eigen plan"),
            Participant(
                key="p-mor",
                kind=ParticipantKind.NEXT_OF_KIN,
                name="Ingrid Øyehaug",
                role="mor",
                phone="+4790000001",
                email="ingrid@example.no",
            ),
            Participant(
                key="p-fysio",
                kind=ParticipantKind.PROFESSIONAL,
                name="Bjørn Ødegård",
                role="fysioterapeut",
                hpr_nr=9144889,
                organisation=Organisation(name="Molde kommune, fysioterapi", orgnr="964338442"),
                phone="+4771111112",
                contribution="Trening to gonger i veka",
            ),
            Participant(
                key="p-helsesjukepleiar",
                kind=ParticipantKind.PROFESSIONAL,
                name="Kari Nordmann",
                role="helsesjukepleiar",
                hpr_nr=1234567,
                contribution="Barnekoordinator; kallar inn til ansvarsgruppemøte",
            ),
            Participant(
                key="p-laerar",
                kind=ParticipantKind.OTHER,
                name="Per Hansen",
                role="kontaktlærar",
                organisation=Organisation(name="Kvam skule"),
            ),
        ),
        coordinator=Coordinator(
            participant="p-helsesjukepleiar", kind=CoordinatorKind.BARNEKOORDINATOR
        ),
        measures=(
            Measure(
                key="m-fysio",
                description="Fysioterapi",
                scope="2 timar per veke",
                owner="p-fysio",
                how="På skulen, i gymsalen",
                goals=("g-skule", "g-fritid"),
                start=dt.date(2026, 12, 1),
                end=dt.date(2027, 6, 30),
            ),
            Measure(key="m-avlasting", description="Avlasting", start=dt.date(2027, 1, 1)),
            Measure(key="m-assistent", description="Assistent i skuletida", owner="p-laerar"),
        ),
        period_start=dt.date(2026, 12, 1),
        period_end=dt.date(2027, 12, 31),
        evaluations=(dt.date(2027, 3, 1), dt.date(2027, 9, 1)),
        consent=ConsentAttestation(
            given_by=ConsentGiver.PARENTS, given_on=dt.date(2026, 11, 20), reference="samtykke-9"
        ),
        sharing=SharingConsent(
            given_by=ConsentGiver.PARENTS,
            given_on=dt.date(2026, 11, 20),
            participants=("p-fysio", "p-helsesjukepleiar"),
        ),
        cooperation=(
            Cooperation(
                agency=Organisation(name="NAV Molde", orgnr="889640782"), description="Hjelpemiddel"
            ),
            Cooperation(agency=Organisation(name="PPT Molde")),
        ),
    ),
)

MINIMAL = PlanTransfer(
    sender_message_id="m1",
    sent_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    source_endpoint="https://ip.kommune.example/fhir",
    sender=Sender(organisation=Organisation(name="Ålesund kommune", orgnr="942952880")),
    plan=Plan(
        plan_id="p",
        version=1,
        version_id="v1",
        status=PlanStatus.CLOSED,
        closed_reason="Personen ønskte ikkje lenger plan",
        patient=Patient(
            person_id="55437010063",  # synthetic D-nummer: day 15 + 40, month 03 + 40, 1970
            id_kind=PersonIdKind.DNR,
            name=PersonName(given="Ørjan", family="Æsøy"),
        ),
        responsible=Organisation(name="Ålesund kommune"),
        period_start=dt.date(2026, 1, 1),
        consent=ConsentAttestation(given_by=ConsentGiver.PERSON, given_on=dt.date(2025, 12, 24)),
    ),
)

# --------------------------------------------------------------------------- strategies


@st.composite
def transfers(draw: st.DrawFn, *, distinctive: bool = False) -> PlanTransfer:
    """tests/plan_strategies.py transfers; ``distinctive``: names no error text holds by chance."""
    transfer = draw(plan_transfers())
    if not distinctive:
        return transfer
    plan = transfer.plan
    participants = tuple(p.model_copy(update={"name": f"Ǿ{p.name}ʬ"}) for p in plan.participants)
    patient = draw(patients(distinctive=True))
    new_plan = plan.model_copy(update={"patient": patient, "participants": participants})
    return transfer.model_copy(update={"plan": new_plan})


# --------------------------------------------------------------------------- helpers


def resources(bundle: Json, resource_type: str) -> list[Json]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def resource(bundle: Json, resource_type: str) -> Json:
    found = resources(bundle, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return found[0]


def resolve(bundle: Json, ref: Json) -> Json:
    found: list[Json] = [e["resource"] for e in bundle["entry"] if e["fullUrl"] == ref["reference"]]
    assert len(found) == 1, "a reference resolves to exactly one entry"
    return found[0]


def key_of(res: Json) -> str:
    keys: list[str] = [i["value"] for i in res.get("identifier", []) if i["system"] == PLAN_KEY]
    (key,) = keys
    return key


def codes(concept: Json, system: str) -> list[str]:
    return [c["code"] for c in concept.get("coding", []) if c["system"] == system]


def role_codes(part: Json, system: str) -> list[str]:
    return [code for role in part["role"] for code in codes(role, system)]


def extension_values(element: Json, suffix: str) -> list[Any]:
    """Values of the own extensions whose url ends with ``/suffix``."""
    return [
        next(v for k, v in e.items() if k.startswith("value"))
        for e in element.get("extension", [])
        if e["url"] == f"{OWN}/StructureDefinition/{suffix}"
    ]


def secrets_of(transfer: PlanTransfer) -> list[str]:
    plan = transfer.plan
    name = plan.patient.name
    names = [name.given, name.family, *(p.name for p in plan.participants)]
    # whole names, and the parts that could not stand in an error text by chance: of a
    # generated name (Ǿ…ʬ) those with a marker, since a bare part ("0") may stand anywhere;
    # of a real one (BASE) the words of four letters or more
    parts = [
        part
        for n in names
        for part in n.split()
        if ("Ǿ" in part or "ʬ" in part) or ("Ǿ" not in n and len(part) >= 4 and part.isalpha())
    ]
    return [plan.patient.person_id, *names, *parts]


def assert_private(refusal: Refused, secrets: Iterable[str]) -> None:
    text = str(refusal)
    for secret in secrets:
        assert secret not in text, "a Refused text holds a person id or name"


def refused(bundle: Json, code: str, *, allow_synthetic_ids: bool = True) -> Refused:
    """Read ``bundle``, expect a refusal whose every error has ``code``, check its privacy."""
    with pytest.raises(Refused) as info:
        bundle_to_transfer(bundle, allow_synthetic_ids=allow_synthetic_ids)
    found = [e.code for e in info.value.errors]
    assert found, "Refused without errors"
    assert set(found) == {code}, f"{found} (detail: {info.value})"
    assert_private(info.value, secrets_of(BASE))
    return info.value


def test_fixed_transfers_use_synthetic_ids() -> None:
    """README: synthetic test ids have month + 40 or + 80."""
    assert int(BASE.plan.patient.person_id[2:4]) > 80
    assert int(MINIMAL.plan.patient.person_id[2:4]) > 40


# --------------------------------------------------------------------------- round trip


@settings(PROPERTY, max_examples=80)
@given(transfers())
@example(BASE)
@example(MINIMAL)
def test_round_trip(transfer: PlanTransfer) -> None:
    back = bundle_to_transfer(transfer_to_bundle(transfer), allow_synthetic_ids=True)
    assert back == transfer
    assert back.sent_at.utcoffset() == transfer.sent_at.utcoffset()


def test_round_trip_keeps_many_participants_and_their_order() -> None:
    people = tuple(
        Participant(key=f"p{i}", kind=list(ParticipantKind)[i % 4], name=f"Deltakar {i} Åse")
        for i in range(40)
    )
    plan = BASE.plan.model_copy(
        update={"participants": people, "coordinator": None, "measures": (), "sharing": None}
    )
    transfer = BASE.model_copy(update={"plan": plan})
    assert bundle_to_transfer(transfer_to_bundle(transfer), allow_synthetic_ids=True) == transfer


def test_synthetic_id_refused_when_not_allowed() -> None:
    bundle = transfer_to_bundle(BASE)
    refused(bundle, "E31", allow_synthetic_ids=False)
    assert bundle_to_transfer(bundle, allow_synthetic_ids=True) == BASE


def test_an_h_nummer_is_refused() -> None:
    """Month + 40 outside test is an H-nummer: local to its issuer, no id for a kommune."""
    bundle = transfer_to_bundle(BASE)
    resource(bundle, "Patient")["identifier"][0]["value"] = "01410000012"
    refused(bundle, "E31", allow_synthetic_ids=False)


def test_notices_and_plans_are_not_mistaken_for_each_other() -> None:
    bundle = transfer_to_bundle(BASE)
    with pytest.raises(Refused) as info:
        bundle_to_notice(bundle, allow_synthetic_ids=True)
    assert [e.code for e in info.value.errors] == ["T10"]


# --------------------------------------------------------------------------- layout


def _references(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "reference" and isinstance(child, str):
                yield child
            else:
                yield from _references(child)
    elif isinstance(value, list):
        for child in value:
            yield from _references(child)


@settings(PROPERTY, max_examples=40)
@given(transfers())
@example(BASE)
@example(MINIMAL)
def test_emitted_bundle_is_r4_json_and_parses(transfer: PlanTransfer) -> None:
    bundle = transfer_to_bundle(transfer)
    assert r4_json_problems(bundle) == []
    Bundle.model_validate(bundle)


@settings(PROPERTY, max_examples=60)
@given(transfers())
@example(BASE)
@example(MINIMAL)
def test_emitted_bundle_follows_the_published_layout(transfer: PlanTransfer) -> None:
    """What the round trip cannot see: where each § 19 item sits, which systems it uses."""
    plan = transfer.plan
    bundle = transfer_to_bundle(transfer)
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "message")
    header = bundle["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    assert header["id"] == transfer.sender_message_id
    assert (header["eventCoding"]["system"], header["eventCoding"]["code"]) == (
        EVENT_SYSTEM,
        "plan-transfer",
    )
    assert header["source"]["endpoint"] == transfer.source_endpoint
    (focus,) = header["focus"]
    careplan = resolve(bundle, focus)
    assert careplan is resource(bundle, "CarePlan")
    # every reference points at an entry of the Bundle
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    assert set(_references(bundle)) <= full_urls

    # the person
    patient = resource(bundle, "Patient")
    assert patient["identifier"] == [
        {"system": PERSON_ID_SYSTEM[plan.patient.id_kind], "value": plan.patient.person_id}
    ]
    assert resolve(bundle, careplan["subject"]) is patient

    # CarePlan
    assert careplan["intent"] == "plan"
    assert careplan["status"] == ("active" if plan.status is PlanStatus.ACTIVE else "completed")
    assert "individuell-plan" in codes(careplan["category"][0], CAREPLAN_CATEGORY)
    assert {"system": PLAN_ID, "value": plan.plan_id} in careplan["identifier"]
    assert extension_values(careplan, "plan-version") == [plan.version]
    assert extension_values(careplan, "plan-need") == list(plan.needs)
    assert extension_values(careplan, "plan-resource") == list(plan.resources)
    assert extension_values(careplan, "plan-evaluation") == [
        d.isoformat() for d in plan.evaluations
    ]
    assert careplan["period"]["start"] == plan.period_start.isoformat()
    author = resolve(bundle, careplan["author"])
    assert (author["resourceType"], author["name"]) == ("Organization", plan.responsible.name)

    # § 19 a goals
    goals = resources(bundle, "Goal")
    assert len(goals) == len(plan.goals)
    assert [resolve(bundle, r) for r in careplan.get("goal", [])] == goals
    for goal, expected_goal in zip(goals, plan.goals, strict=True):
        assert key_of(goal) == expected_goal.key
        assert goal["description"]["text"] == expected_goal.description
        assert goal["lifecycleStatus"] == "active"
        assert resolve(bundle, goal["subject"]) is patient

    # § 19 b-d, i: one CareTeam, one participant per participant and per cooperating agency
    teams = resources(bundle, "CareTeam")
    parts = teams[0]["participant"] if teams else []
    assert len(teams) == (1 if plan.participants or plan.cooperation else 0)
    assert len(parts) == len(plan.participants) + len(plan.cooperation)
    people = [p for p in parts if "cooperating-agency" not in role_codes(p, PARTICIPANT)]
    agencies = [p for p in parts if "cooperating-agency" in role_codes(p, PARTICIPANT)]
    assert len(people) == len(plan.participants)
    members = {}
    for part, person in zip(people, plan.participants, strict=True):
        member = resolve(bundle, part["member"])
        members[person.key] = member
        assert member["resourceType"] == MEMBER_TYPE[person.kind]
        assert key_of(member) == person.key
        assert member["name"] == [{"text": person.name}]
        assert role_codes(part, PARTICIPANT) == [person.kind.value]
        hpr = [i["value"] for i in member["identifier"] if i["system"] == HPR_SYSTEM]
        assert hpr == ([str(person.hpr_nr)] if person.hpr_nr is not None else [])
        # ctm-1: onBehalfOf only when the member is a Practitioner
        if "onBehalfOf" in part:
            assert member["resourceType"] == "Practitioner"
        is_coordinator = plan.coordinator is not None and plan.coordinator.participant == (
            person.key
        )
        assert role_codes(part, ROLE_9034) == (["8"] if is_coordinator else [])
        if is_coordinator:
            assert plan.coordinator is not None
            assert role_codes(part, COORDINATOR_KIND) == [plan.coordinator.kind.value]
    for part, expected_agency in zip(agencies, plan.cooperation, strict=True):
        org = resolve(bundle, part["member"])
        assert (org["resourceType"], org["name"]) == ("Organization", expected_agency.agency.name)

    # § 19 e-f: one activity per measure
    activities = careplan.get("activity", [])
    assert len(activities) == len(plan.measures)
    for activity, measure in zip(activities, plan.measures, strict=True):
        detail = activity["detail"]
        assert detail["description"] == measure.description
        assert detail["status"] in ("in-progress", "stopped")
        assert detail.get("scheduledString") == measure.scope
        assert "scheduledPeriod" not in detail or "scheduledString" not in detail
        performers = [resolve(bundle, r) for r in detail.get("performer", [])]
        assert performers == ([members[measure.owner]] if measure.owner else [])
        assert [key_of(resolve(bundle, g)) for g in detail.get("goal", [])] == list(measure.goals)

    # § 19 h: the plan consent, and the sharing consent naming each participant's resource
    consents = resources(bundle, "Consent")
    purposes = [codes({"coding": c["provision"]["purpose"]}, PURPOSE) for c in consents]
    assert purposes == [["plan"], *([["share-confidential"]] if plan.sharing else [])]
    for consent in consents:
        assert consent["status"] == "active"
        assert resolve(bundle, consent["patient"]) is patient
    if plan.sharing:
        actors = consents[1]["provision"].get("actor", [])
        assert [resolve(bundle, a["reference"]) for a in actors] == [
            members[k] for k in plan.sharing.participants
        ]


def test_base_layout_by_hand() -> None:
    """The coordinator, owner and sharing of the hand-written plan, read off the JSON."""
    bundle = transfer_to_bundle(BASE)
    (team,) = resources(bundle, "CareTeam")
    coordinators = [p for p in team["participant"] if "8" in role_codes(p, ROLE_9034)]
    assert len(coordinators) == 1
    assert key_of(resolve(bundle, coordinators[0]["member"])) == "p-helsesjukepleiar"
    assert role_codes(coordinators[0], COORDINATOR_KIND) == ["barnekoordinator"]
    assert [r["text"] for r in coordinators[0]["role"] if "text" in r] == ["helsesjukepleiar"]
    fysio = next(p for p in team["participant"] if "onBehalfOf" in p)
    assert resolve(bundle, fysio["onBehalfOf"])["identifier"] == [
        {"system": ORGNR_SYSTEM, "value": "964338442"}
    ]
    careplan = resource(bundle, "CarePlan")
    first = careplan["activity"][0]["detail"]
    assert key_of(resolve(bundle, first["performer"][0])) == "p-fysio"
    assert first["scheduledString"] == "2 timar per veke"
    assert extension_values(first, "measure-period") == [
        {"start": "2026-12-01", "end": "2027-06-30"}
    ]
    assert extension_values(first, "measure-how") == ["På skulen, i gymsalen"]
    header = resource(bundle, "MessageHeader")
    assert extension_values(header, "new-kommune")[0]["code"] == "1508"
    assert {"system": HER_SYSTEM, "value": "99200001"} in resolve(
        bundle, resolve(bundle, header["sender"])["partOf"]
    )["identifier"]


# --------------------------------------------------------------------------- R4 JSON Schema


@pytest.fixture(scope="module")
def r4_schema() -> Draft6Validator:
    return r4_schema_validator()


def test_schema_rejects_a_broken_bundle(r4_schema: Draft6Validator) -> None:
    bundle = transfer_to_bundle(BASE)
    assert schema_problems(r4_schema, bundle) == []
    resources(bundle, "Goal")[0]["target"][0]["dueDate"] = "1.6.2027"
    assert schema_problems(r4_schema, bundle)


def test_a_choice_holds_one_type() -> None:
    """scheduled[x]: the schema lets scheduledString beside scheduledPeriod pass, the models
    do not; so the scope (scheduledString) leaves the measure period to an extension."""
    bundle = transfer_to_bundle(BASE)
    _detail(bundle)["scheduledPeriod"] = {"start": "2026-12-01"}
    refused(bundle, "T02")


@settings(PROPERTY, max_examples=12)
@given(transfers())
@example(BASE)
@example(MINIMAL)
def test_emitted_bundle_validates_against_r4_schema(
    r4_schema: Draft6Validator, transfer: PlanTransfer
) -> None:
    assert schema_problems(r4_schema, transfer_to_bundle(transfer)) == []


# --------------------------------------------------------------------------- model vs FHIR


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"hpr_nr": 1}, id="one-digit-hpr"),
        pytest.param({"name": " Kari Nordmann "}, id="name-surrounding-space"),
        pytest.param({"kind": ParticipantKind.PERSON}, id="person-with-organisation"),
        pytest.param({"kind": ParticipantKind.NEXT_OF_KIN}, id="next-of-kin-with-hpr"),
    ],
)
def test_participant_values_map_to_r4_and_back(
    r4_schema: Draft6Validator, change: dict[str, Any]
) -> None:
    fysio = BASE.plan.participants[2].model_dump() | change
    people = (
        *BASE.plan.participants[:2],
        Participant.model_validate(fysio),
        *BASE.plan.participants[3:],
    )
    transfer = BASE.model_copy(
        update={"plan": BASE.plan.model_copy(update={"participants": people})}
    )
    bundle = transfer_to_bundle(transfer)
    assert schema_problems(r4_schema, bundle) == []
    assert bundle_to_transfer(bundle, allow_synthetic_ids=True) == transfer


def test_a_version_fhir_cannot_carry_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError):
        Plan.model_validate(BASE.plan.model_dump() | {"version": 2**31})


# --------------------------------------------------------------------------- other senders


def test_reads_a_coordinator_marked_only_with_9034() -> None:
    """A sender without our coordinator-kind code: 9034 code 8 alone means koordinator."""
    bundle = transfer_to_bundle(BASE)
    (team,) = resources(bundle, "CareTeam")
    for part in team["participant"]:
        for role in part["role"]:
            role["coding"] = [c for c in role["coding"] if c["system"] != COORDINATOR_KIND]
    back = bundle_to_transfer(bundle, allow_synthetic_ids=True)
    assert back.plan.coordinator == Coordinator(
        participant="p-helsesjukepleiar", kind=CoordinatorKind.KOORDINATOR
    )


def test_reads_a_measure_period_from_scheduled_period() -> None:
    bundle = transfer_to_bundle(BASE)
    detail = resource(bundle, "CarePlan")["activity"][1]["detail"]  # no scope: scheduled free
    period = extension_values(detail, "measure-period")[0]
    detail["extension"] = [e for e in detail["extension"] if not e["url"].endswith("-period")]
    detail["scheduledPeriod"] = period
    assert bundle_to_transfer(bundle, allow_synthetic_ids=True) == BASE


# --------------------------------------------------------------------------- refusals


def _careplan(b: Json) -> Json:
    return resource(b, "CarePlan")


def _team(b: Json) -> Json:
    return resource(b, "CareTeam")


def _detail(b: Json, index: int = 0) -> Json:
    detail: Json = _careplan(b)["activity"][index]["detail"]
    return detail


def _drop_identifier(res: Json, system: str) -> None:
    res["identifier"] = [i for i in res["identifier"] if i["system"] != system]


def _second_coordinator(b: Json) -> None:
    parts = _team(b)["participant"]
    coordinator_role = next(r for p in parts for r in p["role"] if codes(r, ROLE_9034))
    parts[0]["role"].append(copy.deepcopy(coordinator_role))


def _consent(b: Json, purpose: str) -> Json:
    return next(
        c
        for c in resources(b, "Consent")
        if codes({"coding": c["provision"]["purpose"]}, PURPOSE) == [purpose]
    )


def _trust(b: Json) -> Json:
    """The sender's trust: the department's partOf (the fixed transfer has a department)."""
    return resolve(b, resolve(b, resource(b, "MessageHeader")["sender"])["partOf"])


def _patient_url(b: Json) -> str:
    urls: list[str] = [
        e["fullUrl"] for e in b["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    return urls[0]


Mutation = Callable[[Json], object]

REFUSALS: list[Any] = [
    pytest.param(lambda b: b.update(type="collection"), "T02", id="bundle-of-type-collection"),
    pytest.param(
        lambda b: resource(b, "MessageHeader")["eventCoding"].update(code="need-notice"),
        "T10",
        id="wrong-event-code",
    ),
    pytest.param(
        lambda b: resource(b, "MessageHeader")["eventCoding"].update(system="urn:x:events"),
        "T10",
        id="wrong-event-system",
    ),
    pytest.param(lambda b: _careplan(b).update(intent="proposal"), "T02", id="intent-proposal"),
    pytest.param(lambda b: _careplan(b).update(status="draft"), "T02", id="status-draft"),
    pytest.param(lambda b: _careplan(b).pop("identifier"), "T02", id="no-plan-id"),
    pytest.param(lambda b: _careplan(b).pop("period"), "T02", id="no-plan-period"),
    pytest.param(
        lambda b: _careplan(b)["period"].update(start="2026"), "T02", id="plan-period-year-only"
    ),
    pytest.param(lambda b: _careplan(b).pop("extension"), "T02", id="no-version"),
    pytest.param(lambda b: resource(b, "Patient").pop("identifier"), "E30", id="no-person-id"),
    pytest.param(lambda b: resource(b, "Patient").pop("name"), "E32", id="no-patient-name"),
    pytest.param(lambda b: _trust(b).pop("identifier"), "E20", id="trust-without-ids"),
    pytest.param(
        lambda b: _detail(b).update(
            performer=[{"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}]
        ),
        "T02",
        id="performer-does-not-resolve",
    ),
    pytest.param(
        lambda b: _detail(b).update(performer=[{"reference": _patient_url(b)}]),
        "T02",
        id="performer-not-a-participant",
    ),
    pytest.param(
        lambda b: _detail(b).update(goal=[{"reference": _patient_url(b)}]),
        "T02",
        id="measure-goal-not-a-goal",
    ),
    pytest.param(
        lambda b: _drop_identifier(resources(b, "Goal")[0], PLAN_KEY), "T02", id="goal-without-key"
    ),
    pytest.param(
        lambda b: _drop_identifier(resources(b, "Practitioner")[1], PLAN_KEY),
        "T02",
        id="participant-without-key",
    ),
    pytest.param(lambda b: _team(b)["participant"][0].pop("member"), "T02", id="no-member"),
    pytest.param(_second_coordinator, "T02", id="two-coordinators"),
    pytest.param(
        lambda b: _team(b)["participant"][0]["role"][0]["coding"][0].update(code="teacher"),
        "T02",
        id="unknown-participant-code",
    ),
    pytest.param(
        lambda b: _consent(b, "plan").update(status="rejected"), "T02", id="no-plan-consent"
    ),
    pytest.param(
        lambda b: _consent(b, "share-confidential")["provision"]["actor"][0].update(
            reference={"reference": _patient_url(b)}
        ),
        "T02",
        id="sharing-with-a-non-participant",
    ),
    pytest.param(
        lambda b: resource(b, "MessageHeader")["extension"][0]["valueCoding"].update(code="99"),
        "E21",
        id="new-kommune-not-a-kommunenummer",
    ),
    pytest.param(
        lambda b: resource(b, "Patient").update(favouriteColour="blue"), "T02", id="not-r4-json"
    ),
]


@pytest.mark.parametrize(("mutate", "code"), REFUSALS)
def test_refusal(mutate: Mutation, code: str) -> None:
    bundle = transfer_to_bundle(BASE)
    assert bundle_to_transfer(copy.deepcopy(bundle), allow_synthetic_ids=True) == BASE
    mutate(bundle)
    refused(bundle, code)


# --------------------------------------------------------------------------- robustness


@settings(
    PROPERTY,
    max_examples=120,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(transfers(distinctive=True), st.data())
def test_any_mutation_gives_a_transfer_or_a_refusal(
    transfer: PlanTransfer, data: st.DataObject
) -> None:
    """Junk in, a receipt out: never any exception but Refused, never personal data in it."""
    bundle = data.draw(mutated(transfer_to_bundle(transfer)), label="bundle")
    outcome: PlanTransfer | Refused
    try:
        outcome = bundle_to_transfer(bundle, allow_synthetic_ids=True)
    except Refused as refusal:
        outcome = refusal
    if isinstance(outcome, Refused):
        assert outcome.errors
        assert_private(outcome, secrets_of(transfer))
    else:
        assert isinstance(outcome, PlanTransfer)


def test_destination_is_written_valid_and_left_out_when_read() -> None:
    bundle = transfer_to_bundle(BASE, destination="urn:oid:2.16.578.1.12.4.1.2:99001508")
    header = resource(bundle, "MessageHeader")
    assert header["destination"] == [{"endpoint": "urn:oid:2.16.578.1.12.4.1.2:99001508"}]
    assert schema_problems(r4_schema_validator(), bundle) == []
    assert bundle_to_transfer(bundle, allow_synthetic_ids=True) == BASE
