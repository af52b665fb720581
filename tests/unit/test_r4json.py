"""The R4 JSON shape check (mappings/fhir/r4json.py), against the rules of
https://hl7.org/fhir/R4/json.html and, for generated junk, against the official R4 JSON Schema.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain.receipt import Refused
from mappings.fhir.notice import bundle_to_notice, notice_to_bundle
from mappings.fhir.r4json import MAX_PROBLEMS, r4_json_problems
from tests.standards import r4_schema_validator
from tests.strategies import mutated, need_notices

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "active": True,
    "name": [{"family": "Nordmann", "given": ["Kari", "Anne"]}],
    "birthDate": "1985-03-15",
    "multipleBirthInteger": 2,
}


def test_a_valid_resource_has_no_problems() -> None:
    assert r4_json_problems(PATIENT) == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        pytest.param({"active": "true"}, "active", id="boolean-as-string"),
        pytest.param({"active": 1}, "active", id="boolean-as-number"),
        pytest.param({"birthDate": 19850315}, "birthDate", id="date-as-number"),
        pytest.param({"multipleBirthInteger": 2.5}, "multipleBirthInteger", id="fraction"),
        pytest.param({"multipleBirthInteger": True}, "multipleBirthInteger", id="bool-as-int"),
        pytest.param({"multipleBirthInteger": "2"}, "multipleBirthInteger", id="int-as-string"),
        pytest.param({"active": None}, "active", id="null"),
        pytest.param({"name": []}, "name", id="empty-array"),
        pytest.param({"name": {"family": "Nordmann"}}, "name", id="repeating-not-array"),
        pytest.param({"birthDate": ["1985-03-15"]}, "birthDate", id="single-as-array"),
        pytest.param({"name": [{}]}, "name[0]", id="empty-object"),
        pytest.param({"name": ["Kari"]}, "name[0]", id="object-as-string"),
        pytest.param({"favouriteColour": "blue"}, "favouriteColour", id="unknown-element"),
        pytest.param({"_name": [{"id": "x"}]}, "_name", id="underscore-on-complex"),
        pytest.param({"_active": True}, "_active", id="primitive-extension-not-object"),
        pytest.param({"fhir_comments": ["x"]}, "fhir_comments", id="fhir-comments"),
        pytest.param({"gender": "kvinne"}, "gender", id="code-outside-required-binding"),
        pytest.param({"birthDate": "1985-3-15"}, "birthDate", id="date-one-digit-month"),
        pytest.param({"birthDate": "1985-03-15\n"}, "birthDate", id="date-trailing-newline"),
        pytest.param({"deceasedDateTime": "2026-11-02T09:30"}, "deceasedDateTime", id="no-seconds"),
        pytest.param({"id": "p 1"}, "id", id="id-with-space"),
        pytest.param({"meta": {"source": "Helse Midt"}}, "meta.source", id="uri-with-space"),
        pytest.param({"multipleBirthInteger": 2**31}, "multipleBirthInteger", id="int-over-32-bit"),
        pytest.param(
            {"name": [{"family": "Nordmann", "use": "offisiell"}]}, "name[0].use", id="nested-code"
        ),
    ],
)
def test_each_rule(change: dict[str, Any], where: str) -> None:
    problems = r4_json_problems({**PATIENT, **change})
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{where}: ")


def test_null_in_a_primitive_array_only_beside_an_extension() -> None:
    ext = {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}
    name = {"family": "Nordmann", "given": ["Kari", None], "_given": [None, ext]}
    assert r4_json_problems({**PATIENT, "name": [name]}) == []
    lone = {"family": "Nordmann", "given": ["Kari", None]}
    assert [p.split(":")[0] for p in r4_json_problems({**PATIENT, "name": [lone]})] == [
        "name[0].given[1]"
    ]
    short = {"family": "Nordmann", "given": ["Kari", "Anne"], "_given": [ext]}
    assert r4_json_problems({**PATIENT, "name": [short]})
    both_null = {"family": "Nordmann", "given": ["Kari", None], "_given": [None, None]}
    assert r4_json_problems({**PATIENT, "name": [both_null]})


@pytest.mark.parametrize(
    "resource_type",
    ["HumanName", "Resource", "DomainResource", "SubscriptionTopic", "Prescription", "patient", 7],
)
def test_only_r4_resource_types(resource_type: Any) -> None:
    problems = r4_json_problems({"resourceType": resource_type, "id": "x"})
    assert problems == ["resourceType: not an R4 resource type"]


def test_contained_and_entry_resources_are_checked_by_their_own_type() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {**PATIENT, "contained": [{**PATIENT, "active": "yes"}]}}],
    }
    assert [p.split(":")[0] for p in r4_json_problems(bundle)] == [
        "entry[0].resource.contained[0].active"
    ]


def test_problems_name_the_path_never_the_value() -> None:
    secret = "15838512086"
    problems = r4_json_problems({**PATIENT, "active": secret, "birthDate": [secret]})
    assert len(problems) == 2
    assert not any(secret in p for p in problems)


def test_the_list_is_bounded() -> None:
    junk = {**PATIENT, **{f"x{i}": i for i in range(50)}}
    assert len(r4_json_problems(junk)) == MAX_PROBLEMS


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(need_notices(), st.data())
def test_a_bundle_the_gateway_accepts_is_valid_r4(notice: Any, data: st.DataObject) -> None:
    """No false acceptance: what passes this check and the models passes the official schema.

    (The other way round does not hold: the schema cannot state ele-1, and its complex types
    have no ``type: object``, so it lets ``null`` stand for a Reference.)
    """
    bundle = data.draw(mutated(notice_to_bundle(notice)), label="bundle")
    try:
        bundle_to_notice(copy.deepcopy(bundle), allow_synthetic_ids=True)
    except Refused:
        return
    assert r4_schema_validator().is_valid(bundle)
