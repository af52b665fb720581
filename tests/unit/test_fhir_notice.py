"""Need notice <-> FHIR R4 message Bundle (mappings/fhir/notice.py).

Expected values come from the generated or hand-written notice and from the standards
(../shared/standards/README.md, the official R4 JSON Schema), never from running the mapping
the same way: identifier systems are spelled out here as the README gives them, person ids are
built by tests/strategies.py from the published control-digit rule.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft6Validator
from pydantic import ValidationError

from gateway.domain.identifiers import PersonIdKind
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
from gateway.domain.receipt import Refused
from mappings.fhir.notice import bundle_to_notice, notice_to_bundle, patient_identifier
from tests.standards import (
    DNR_SYSTEM,
    FHN_SYSTEM,
    FNR_SYSTEM,
    HER_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    PERSON_ID_SYSTEM,
    r4_schema_validator,
    schema_problems,
)
from tests.strategies import (
    json_values,
    mutated,
    need_notices,
    with_control_digits,
)

Json = dict[str, Any]


PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- fixed notices

#: synthetic (month + 80: 15.03.85), so it can never be a real person's number
SYNTHETIC_FNR = "15838512086"

BASE = NeedNotice(
    sender_message_id="a3f1c2d4-0b1e-4c5f-9a8b-7c6d5e4f3a2b",
    sent_at=dt.datetime(2026, 11, 2, 9, 30, 15, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    source_endpoint="urn:oid:2.16.578.1.12.4.1.2:99100001",
    patient=Patient(
        person_id=SYNTHETIC_FNR,
        id_kind=PersonIdKind.FNR,
        name=PersonName(given="Åsne Kjærstin", family="Øyehaug-Ødegård"),
        kommune_nr="1507",
    ),
    sender=Sender(
        organisation=Organisation(
            name="Helse Møre og Romsdal HF", her_id=99100001, orgnr="997005562"
        ),
        department=Organisation(name="Barne- og ungdomsavdelinga, Molde sjukehus", her_id=99100012),
        contact=Contact(name="Koordinerende enhet HMR", phone="+4770000000"),
    ),
    requested=(NoticeKind.BARNEKOORDINATOR, NoticeKind.INDIVIDUELL_PLAN),
    need="Barn med alvorleg sjukdom; familien treng barnekoordinator og individuell plan.",
    urgent=True,
    next_of_kin_involved=True,
    interpreter_language="ar",
    consent=ConsentAttestation(
        given_by=ConsentGiver.PARENTS, given_on=dt.date(2026, 11, 1), reference="samtykke-17"
    ),
)

MINIMAL = NeedNotice(
    sender_message_id="m1",
    sent_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    source_endpoint="https://fhir.helse-mr.no/ip",
    patient=Patient(
        person_id="55437010063",  # synthetic D-nummer: day 15 + 40, month 03 + 40, 1970
        id_kind=PersonIdKind.DNR,
        name=PersonName(given="Ørjan", family="Æsøy"),
    ),
    sender=Sender(organisation=Organisation(name="Helse Nord-Trøndelag HF", orgnr="983974791")),
    requested=(NoticeKind.KOORDINATOR,),
    need="Treng koordinator.",
)


def test_fixed_person_ids_follow_the_published_rule() -> None:
    assert with_control_digits(SYNTHETIC_FNR[:9]) == SYNTHETIC_FNR
    assert SYNTHETIC_FNR[2:4] == "83"  # month 03 + 80: synthetic
    assert with_control_digits(MINIMAL.patient.person_id[:9]) == MINIMAL.patient.person_id


# --------------------------------------------------------------------------- helpers


def resources(bundle: Json, resource_type: str) -> list[Json]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def resource(bundle: Json, resource_type: str) -> Json:
    found = resources(bundle, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return found[0]


def trust(bundle: Json) -> Json:
    """The health trust: the Organization that is not partOf another."""
    (org,) = [o for o in resources(bundle, "Organization") if "partOf" not in o]
    return org


def secrets_of(notice: NeedNotice) -> list[str]:
    name = notice.patient.name
    # whole names: a part of a generated name ("0") may stand in any error text
    return [notice.patient.person_id, name.given, name.family]


def assert_private(refusal: Refused, secrets: Iterable[str]) -> None:
    text = str(refusal)
    for secret in secrets:
        assert secret not in text, "a Refused text holds a person id or name"


def refused(
    bundle: Json,
    code: str,
    *,
    allow_synthetic_ids: bool = True,
    secrets: Iterable[str] = (),
) -> Refused:
    """Read ``bundle``, expect a refusal whose every error has ``code``, check its privacy."""
    with pytest.raises(Refused) as info:
        bundle_to_notice(bundle, allow_synthetic_ids=allow_synthetic_ids)
    codes = [e.code for e in info.value.errors]
    assert codes, "Refused without errors"
    assert set(codes) == {code}, f"{codes} (detail: {info.value})"
    assert_private(info.value, [*secrets_of(BASE), *secrets])
    return info.value


# --------------------------------------------------------------------------- round trip


@settings(PROPERTY, max_examples=200)
@given(need_notices())
@example(BASE)
@example(MINIMAL)
def test_round_trip(notice: NeedNotice) -> None:
    back = bundle_to_notice(notice_to_bundle(notice), allow_synthetic_ids=True)
    assert back == notice
    # FHIR carries the sender's UTC offset: the kommune sees the time as it was written
    assert back.sent_at.utcoffset() == notice.sent_at.utcoffset()


def is_synthetic(number: str) -> bool:
    """README: synthetic test ids have month + 40 or + 80; felles hjelpenummer carry no date."""
    return number[0] not in "89" and int(number[2:4]) > 12


@settings(PROPERTY, max_examples=100)
@given(need_notices(distinctive_names=True))
def test_synthetic_ids_are_refused_unless_allowed(notice: NeedNotice) -> None:
    bundle = notice_to_bundle(notice)
    if is_synthetic(notice.patient.person_id):
        with pytest.raises(Refused) as info:
            bundle_to_notice(bundle, allow_synthetic_ids=False)
        assert [e.code for e in info.value.errors] == ["E31"]
        assert_private(info.value, secrets_of(notice))
    else:
        assert bundle_to_notice(bundle, allow_synthetic_ids=False) == notice


def test_synthetic_id_refused_when_not_allowed() -> None:
    bundle = notice_to_bundle(BASE)
    refused(bundle, "E31", allow_synthetic_ids=False)
    assert bundle_to_notice(bundle, allow_synthetic_ids=True) == BASE


@settings(PROPERTY, max_examples=50)
@given(need_notices().filter(lambda n: n.consent is not None))
def test_missing_consent_gives_a_notice_without_consent(notice: NeedNotice) -> None:
    """No Consent is not an error: the notice is read and held for consent later."""
    bundle = notice_to_bundle(notice)
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Consent"]
    assert bundle_to_notice(bundle, allow_synthetic_ids=True) == notice.model_copy(
        update={"consent": None}
    )


@settings(PROPERTY, max_examples=100)
@given(need_notices())
def test_emitted_bundle_uses_the_norwegian_systems_and_the_message_layout(
    notice: NeedNotice,
) -> None:
    """What the round trip cannot see: systems and layout the receiver relies on."""
    bundle = notice_to_bundle(notice)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "message"
    assert bundle["entry"][0]["resource"]["resourceType"] == "MessageHeader"
    assert bundle["entry"][0]["resource"]["id"] == notice.sender_message_id
    patient = resource(bundle, "Patient")
    assert patient["identifier"] == [
        {"system": PERSON_ID_SYSTEM[notice.patient.id_kind], "value": notice.patient.person_id}
    ]
    ids = {(i["system"], i["value"]) for i in trust(bundle).get("identifier", [])}
    org = notice.sender.organisation
    expected = {(HER_SYSTEM, str(org.her_id))} if org.her_id is not None else set()
    expected |= {(ORGNR_SYSTEM, org.orgnr)} if org.orgnr is not None else set()
    assert ids == expected
    careplan = resource(bundle, "CarePlan")
    assert (careplan["status"], careplan["intent"]) == ("draft", "proposal")
    assert len(resources(bundle, "Consent")) == (notice.consent is not None)
    # every reference points at an entry of the Bundle
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    refs = set(_references(bundle))
    assert refs <= full_urls, refs - full_urls


def _references(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "reference":
                yield child
            else:
                yield from _references(child)
    elif isinstance(value, list):
        for child in value:
            yield from _references(child)


# --------------------------------------------------------------------------- R4 JSON Schema


@pytest.fixture(scope="module")
def r4_schema() -> Draft6Validator:
    """The official schema: ~0.1-0.25 s per notice Bundle."""
    return r4_schema_validator()


def test_schema_rejects_a_broken_bundle(r4_schema: Draft6Validator) -> None:
    """The schema check itself can fail (guards against a validator that passes everything)."""
    bundle = notice_to_bundle(BASE)
    assert schema_problems(r4_schema, bundle) == []
    resource(bundle, "Patient")["birthDate"] = "15.03.1985"
    assert schema_problems(r4_schema, bundle)


@settings(PROPERTY, max_examples=20)
@given(need_notices())
@example(BASE)
@example(MINIMAL)
def test_emitted_bundle_validates_against_r4_schema(
    r4_schema: Draft6Validator, notice: NeedNotice
) -> None:
    assert schema_problems(r4_schema, notice_to_bundle(notice)) == []


# --------------------------------------------------------------------------- model vs FHIR


def _contact(name: str) -> dict[str, Any]:
    return {"sender": {**BASE.sender.model_dump(), "contact": {"name": name}}}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"source_endpoint": "Helse Møre og Romsdal HF"}, id="endpoint-with-spaces"),
        pytest.param({"interpreter_language": "nb  NO"}, id="language-with-double-space"),
        pytest.param({"interpreter_language": " ar"}, id="language-with-leading-space"),
        pytest.param(
            {
                "sent_at": dt.datetime(
                    1930, 5, 1, 12, tzinfo=dt.timezone(dt.timedelta(seconds=1172))
                )
            },
            id="offset-with-seconds",  # Europe/Amsterdam until 1937: +00:19:32
        ),
        pytest.param(
            {"sent_at": dt.datetime(2026, 5, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=15)))},
            id="offset-beyond-14h",
        ),
        pytest.param(_contact(" Kari Nordmann "), id="contact-name-surrounding-space"),
    ],
)
def test_model_values_fhir_cannot_carry(r4_schema: Draft6Validator, change: dict[str, Any]) -> None:
    """A notice the model accepts must map to valid R4 and back (or the model must refuse it)."""
    try:
        notice = NeedNotice.model_validate({**BASE.model_dump(), **change})
    except ValidationError:
        return  # the model refuses what FHIR cannot carry: fine
    bundle = notice_to_bundle(notice)
    assert schema_problems(r4_schema, bundle) == []
    assert bundle_to_notice(bundle, allow_synthetic_ids=True) == notice


# --------------------------------------------------------------------------- refusals


def _move_header_last(b: Json) -> None:
    b["entry"].append(b["entry"].pop(0))


def _change_digit(b: Json, index: int) -> None:
    ident = resource(b, "Patient")["identifier"][0]
    value = ident["value"]
    ident["value"] = f"{value[:index]}{(int(value[index]) + 1) % 10}{value[index + 1 :]}"


def _add_requested(b: Json, code: str) -> None:
    careplan = resource(b, "CarePlan")
    # the project's own requested-service system, as the emitted Bundle spells it
    systems = {c["system"] for cat in careplan["category"] for c in cat["coding"]}
    (system,) = [s for s in systems if s.endswith("/requested-service")]
    careplan["category"].append({"coding": [{"system": system, "code": code}]})


Mutation = Callable[[Json], object]

REFUSALS: list[Any] = [
    pytest.param(lambda b: b.update(type="collection"), "T02", id="bundle-of-type-collection"),
    pytest.param(lambda b: b.update(resourceType="Parameters"), "T02", id="not-a-bundle"),
    pytest.param(lambda b: b.update(entry=[]), "T02", id="no-entries"),
    pytest.param(_move_header_last, "T02", id="first-entry-not-messageheader"),
    pytest.param(
        lambda b: resource(b, "MessageHeader")["eventCoding"].update(code="plan-transfer"),
        "T10",
        id="wrong-event-code",
    ),
    pytest.param(
        lambda b: resource(b, "MessageHeader")["eventCoding"].update(system="urn:x:events"),
        "T10",
        id="wrong-event-system",
    ),
    pytest.param(lambda b: resource(b, "Patient").pop("identifier"), "E30", id="no-person-id"),
    pytest.param(
        lambda b: resource(b, "Patient")["identifier"][0].update(system=HPR_SYSTEM),
        "E30",
        id="only-an-hpr-number",
    ),
    pytest.param(
        # R4 JSON has no empty strings: a structure error before it is a missing id
        lambda b: resource(b, "Patient")["identifier"][0].update(value=""),
        "T02",
        id="empty-person-id",
    ),
    pytest.param(lambda b: _change_digit(b, 10), "E31", id="wrong-second-control-digit"),
    pytest.param(lambda b: _change_digit(b, 9), "E31", id="wrong-first-control-digit"),
    pytest.param(lambda b: _change_digit(b, 0), "E31", id="changed-day-digit"),
    pytest.param(
        lambda b: resource(b, "Patient")["identifier"][0].update(value="1583851208"),
        "E31",
        id="ten-digits",
    ),
    pytest.param(
        lambda b: resource(b, "Patient")["identifier"][0].update(system=DNR_SYSTEM),
        "E31",
        id="fnr-declared-as-d-nummer",
    ),
    pytest.param(lambda b: resource(b, "Patient").pop("name"), "E32", id="no-patient-name"),
    pytest.param(
        lambda b: resource(b, "Patient")["name"][0].pop("family"), "E32", id="no-family-name"
    ),
    pytest.param(
        lambda b: resource(b, "Patient")["name"][0].update(given=[" "]),
        "E32",
        id="blank-given-name",
    ),
    pytest.param(lambda b: _add_requested(b, "avlastning"), "T02", id="unknown-requested-service"),
    pytest.param(
        lambda b: resource(b, "CarePlan").update(status="active"), "T02", id="careplan-active"
    ),
    pytest.param(
        lambda b: resource(b, "CarePlan").update(intent="plan"), "T02", id="careplan-intent-plan"
    ),
    pytest.param(
        lambda b: resource(b, "Patient").update(birthDate="15.03.1985"), "T02", id="bad-birthdate"
    ),
    pytest.param(
        lambda b: resource(b, "Patient").update(favouriteColour="blue"),
        "T02",
        id="unknown-element",
    ),
    pytest.param(
        lambda b: b["entry"].append(
            {
                "fullUrl": "urn:uuid:0c9a4b3e-1f2d-4e5f-8a9b-0c1d2e3f4a5b",
                "resource": {"resourceType": "Prescription", "id": "x"},
            }
        ),
        "T02",
        id="unknown-resource-type",
    ),
    pytest.param(lambda b: trust(b).pop("identifier"), "E20", id="trust-without-her-id-or-orgnr"),
    pytest.param(
        lambda b: [
            i.update(value="997005563")
            for i in trust(b)["identifier"]
            if i["system"] == ORGNR_SYSTEM
        ],
        "E20",
        id="trust-orgnr-wrong-check-digit",
    ),
]


@pytest.mark.parametrize(("mutate", "code"), REFUSALS)
def test_refusal(mutate: Mutation, code: str) -> None:
    bundle = notice_to_bundle(BASE)
    assert bundle_to_notice(copy.deepcopy(bundle), allow_synthetic_ids=True) == BASE
    mutate(bundle)
    person_ids = [
        i.get("value", "") for p in resources(bundle, "Patient") for i in p.get("identifier", [])
    ]
    refused(bundle, code, secrets=[p for p in person_ids if p])


NOT_FHIR_JSON: list[Any] = [
    # R4 JSON: a boolean is a JSON boolean, an instant or dateTime a JSON string
    pytest.param(
        lambda b: resource(b, "CarePlan")["extension"][0].update(valueBoolean="false"),
        id="valueBoolean-as-string",
    ),
    pytest.param(lambda b: b.update(timestamp=1762072215), id="timestamp-as-number"),
    pytest.param(
        lambda b: resource(b, "Consent").update(dateTime=20261101), id="consent-dateTime-as-number"
    ),
    pytest.param(
        lambda b: resource(b, "MessageHeader")["source"].update(endpoint=True),
        id="endpoint-as-boolean",
    ),
    # R4 JSON: "null values are not allowed"
    pytest.param(lambda b: b.update(entry=None), id="entry-null"),
    pytest.param(lambda b: resource(b, "MessageHeader").update(focus=None), id="focus-null"),
    pytest.param(lambda b: resource(b, "CarePlan").update(category=None), id="category-null"),
    pytest.param(lambda b: resource(b, "CarePlan").update(extension=None), id="extension-null"),
    pytest.param(
        lambda b: resource(b, "Patient").update(identifier=None), id="patient-identifier-null"
    ),
    pytest.param(
        lambda b: resource(b, "Patient")["name"][0].update(given=[None]), id="given-name-null"
    ),
    pytest.param(lambda b: trust(b).update(identifier=None), id="organization-identifier-null"),
    pytest.param(
        lambda b: resource(b, "Consent").update(performer=None), id="consent-performer-null"
    ),
]


@pytest.mark.parametrize("mutate", NOT_FHIR_JSON)
def test_json_that_is_not_r4_is_refused(mutate: Mutation) -> None:
    """Not silently misread (the string "false" is not true) and no crash: a T02 receipt."""
    bundle = notice_to_bundle(BASE)
    mutate(bundle)
    refused(bundle, "T02")


# --------------------------------------------------------------------------- robustness


@settings(
    PROPERTY,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(need_notices(distinctive_names=True), st.data())
def test_any_mutation_gives_a_notice_or_a_refusal(notice: NeedNotice, data: st.DataObject) -> None:
    """Junk in, a receipt out: never any exception but Refused, never personal data in it."""
    bundle = data.draw(mutated(notice_to_bundle(notice)), label="bundle")
    outcome: NeedNotice | Refused
    try:
        outcome = bundle_to_notice(bundle, allow_synthetic_ids=True)
    except Refused as refusal:
        outcome = refusal
    if isinstance(outcome, Refused):
        assert outcome.errors
        assert_private(outcome, secrets_of(notice))
    else:
        assert isinstance(outcome, NeedNotice)


# --------------------------------------------------------------------------- patient_identifier


@settings(PROPERTY, max_examples=100)
@given(need_notices())
@example(BASE)
def test_patient_identifier_of_a_valid_bundle(notice: NeedNotice) -> None:
    assert patient_identifier(notice_to_bundle(notice)) == notice.patient.person_id


NON_STRINGS = json_values().filter(lambda v: not isinstance(v, str))
JUNK_IDENTIFIERS = json_values() | st.lists(
    json_values()
    | st.fixed_dictionaries(
        {"system": st.sampled_from([FNR_SYSTEM, DNR_SYSTEM, FHN_SYSTEM, HPR_SYSTEM, "urn:x"])},
        optional={"value": NON_STRINGS},
    ),
    max_size=3,
)
JUNK_ENTRIES = json_values() | st.lists(
    json_values()
    | st.fixed_dictionaries(
        {
            "resource": json_values()
            | st.fixed_dictionaries(
                {"resourceType": st.sampled_from(["Patient", "MessageHeader", "Patient "])},
                optional={"identifier": JUNK_IDENTIFIERS},
            )
        },
    ),
    max_size=4,
)
JUNK_BUNDLES = st.fixed_dictionaries(
    {},
    optional={
        "resourceType": st.just("Bundle") | json_values(),
        "type": st.just("message") | json_values(),
        "entry": JUNK_ENTRIES,
    },
)


@settings(PROPERTY, max_examples=300)
@given(JUNK_BUNDLES)
@example({"entry": [{"resource": {"resourceType": "Patient", "identifier": None}}]})
@example(
    {"entry": [{"resource": {"resourceType": "Patient", "identifier": [{"system": FNR_SYSTEM}]}}]}
)
def test_patient_identifier_of_junk_is_none(junk: Json) -> None:
    """No person id of string type anywhere in the junk, so nothing to find and no crash."""
    assert patient_identifier(junk) is None


@settings(
    PROPERTY,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(need_notices(), st.data())
def test_patient_identifier_of_a_mutated_bundle_never_raises(
    notice: NeedNotice, data: st.DataObject
) -> None:
    bundle = data.draw(mutated(notice_to_bundle(notice)), label="bundle")
    found = patient_identifier(bundle)
    assert found is None or isinstance(found, str)


@pytest.mark.parametrize(
    "text", ["Kari\u00a0Nordmann", "Ka\u2028ri", "Ka\ufeffri", "Kari\ufffe", "Ka\x01ri", "Ka\x0bri"]
)
def test_model_refuses_characters_fhir_or_xml_cannot_carry(text: str) -> None:
    with pytest.raises(ValidationError):
        PersonName(given=text, family="Nordmann")


def test_model_keeps_tab_cr_lf_inside_and_drops_surrounding_whitespace() -> None:
    name = PersonName(given="  Kari\tAnne\r\nMarie \n", family="Nordmann")
    assert name.given == "Kari\tAnne\r\nMarie"


def test_destination_is_written_valid_and_left_out_when_read() -> None:
    bundle = notice_to_bundle(BASE, destination="urn:oid:2.16.578.1.12.4.1.2:99001506")
    header = resource(bundle, "MessageHeader")
    assert header["destination"] == [{"endpoint": "urn:oid:2.16.578.1.12.4.1.2:99001506"}]
    assert schema_problems(r4_schema_validator(), bundle) == []
    assert bundle_to_notice(bundle, allow_synthetic_ids=True) == BASE
