"""Standalone FHIR Consent <-> ConsentRecord (mappings/fhir/consent.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain.consent import ConsentPurpose, ConsentRecord
from gateway.domain.identifiers import PersonIdKind
from gateway.domain.model import ConsentGiver
from gateway.domain.receipt import Refused
from mappings.fhir.consent import read_consent, write_consent
from mappings.fhir.r4json import r4_json_problems
from tests.standards import r4_schema_validator, schema_problems
from tests.strategies import KOMMUNE_NRS, fhir_text, person_ids

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
DATES = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 1, 1))


@st.composite
def records(draw: st.DrawFn) -> ConsentRecord:
    given_on = draw(DATES)
    start = draw(st.none() | st.dates(min_value=given_on, max_value=dt.date(2100, 1, 1)))
    until = draw(st.none() | st.dates(min_value=start or given_on, max_value=dt.date(2110, 1, 1)))
    withdrawn = draw(st.booleans())
    return ConsentRecord(
        id=draw(st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)),
        purposes=tuple(draw(st.lists(st.sampled_from(ConsentPurpose), min_size=1, unique=True))),
        given_by=draw(st.sampled_from(ConsentGiver)),
        lacks_capacity_reason=draw(st.none() | fhir_text(60)),
        given_on=given_on,
        valid_from=start,
        valid_until=until,
        refused=not withdrawn and draw(st.booleans()),
        withdrawn_at=NOW - dt.timedelta(hours=1) if withdrawn else None,
        kommuner=tuple(draw(st.lists(KOMMUNE_NRS, max_size=3, unique=True))),
        participants=tuple(
            draw(st.lists(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), max_size=3))
        ),
        recorded_at=NOW,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(), person_ids(kinds=(PersonIdKind.FNR, PersonIdKind.DNR, PersonIdKind.FHN)))
def test_round_trip(record: ConsentRecord, person: tuple[str, PersonIdKind]) -> None:
    number, kind = person
    resource = write_consent(number, kind, record)
    assert r4_json_problems(resource) == []
    person_id, back = read_consent(resource, allow_synthetic_ids=True, now=NOW)
    assert person_id == number
    assert back == record


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(), person_ids(kinds=(PersonIdKind.FNR,)))
def test_written_consent_is_valid_r4(record: ConsentRecord, person: tuple[str, Any]) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": write_consent(person[0], person[1], record)}],
    }
    assert schema_problems(r4_schema_validator(), bundle) == []


BASE: dict[str, Any] = {
    "resourceType": "Consent",
    "id": "c1",
    "status": "active",
    "scope": {"coding": [{"code": "patient-privacy"}]},
    "category": [{"coding": [{"code": "59284-0"}]}],
    "patient": {"identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": "15838512086"}},
    "dateTime": "2026-11-20",
    "provision": {
        "purpose": [
            {"system": "https://ipgw.example/fhir/CodeSystem/consent-purpose", "code": "plan"}
        ]
    },
}


@pytest.mark.parametrize(
    ("status", "refused", "withdrawn"),
    [
        ("active", False, False),
        ("rejected", True, False),
        ("inactive", False, True),
        ("entered-in-error", False, True),
    ],
)
def test_status_means(status: str, refused: bool, withdrawn: bool) -> None:
    _, record = read_consent(BASE | {"status": status}, allow_synthetic_ids=True, now=NOW)
    assert record.refused is refused
    assert (record.withdrawn_at == NOW) is withdrawn


def test_provision_deny_is_a_refusal() -> None:
    provision = BASE["provision"] | {"type": "deny"}
    _, record = read_consent(BASE | {"provision": provision}, allow_synthetic_ids=True, now=NOW)
    assert record.refused


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"status": "proposed"}, "T02"),
        ({"id": None}, "T02"),
        ({"provision": {"purpose": [{"system": "urn:x", "code": "plan"}]}}, "T02"),
        ({"dateTime": "2026"}, "T02"),
        ({"patient": {"identifier": {"system": "urn:x", "value": "15838512086"}}}, "E30"),
        (
            {
                "patient": {
                    "identifier": {
                        "system": "urn:oid:2.16.578.1.12.4.1.4.2",
                        "value": "15838512086",
                    }
                }
            },
            "E31",
        ),
        ({"resourceType": "Patient"}, "T02"),
    ],
)
def test_refusals(change: dict[str, Any], code: str) -> None:
    with pytest.raises(Refused) as info:
        read_consent(BASE | change, allow_synthetic_ids=True, now=NOW)
    assert {e.code for e in info.value.errors} == {code}
    assert "15838512086" not in str(info.value)


def test_synthetic_id_only_when_allowed() -> None:
    with pytest.raises(Refused) as info:
        read_consent(BASE, allow_synthetic_ids=False, now=NOW)
    assert [e.code for e in info.value.errors] == ["E31"]
