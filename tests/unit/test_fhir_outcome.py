"""OperationOutcome -> 8221 (mappings/fhir/outcome.py).

The issue codes are spelled out here from the R4 value set
(http://hl7.org/fhir/R4/codesystem-issue-type.html), and the expected 8221 codes from the
table the module documents, not read from the module: a code added to or dropped from the
mapping shows up as a failure here.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.receipt import ERROR_TEXTS
from mappings.fhir.outcome import (
    ISSUE_CODES,
    Outcome,
    about_patient,
    error_code,
    plain_paths,
    read_outcome,
)
from tests.strategies import json_values

#: R4 issue-type, all 31 codes, with the 8221 code the module's table promises (None:
#: duplicate, "already received"); not-found/deleted without a Patient expression
R4_ISSUE_TYPES: dict[str, str | None] = {
    "invalid": "T02",
    "structure": "T02",
    "required": "T02",
    "value": "T02",
    "invariant": "T02",
    "security": "S99",
    "login": "S99",
    "unknown": "S99",
    "expired": "S99",
    "forbidden": "S99",
    "suppressed": "X99",
    "processing": "X99",
    "not-supported": "T10",
    "duplicate": None,
    "multiple-matches": "E36",
    "not-found": "E21",
    "deleted": "E21",
    "too-long": "T02",
    "code-invalid": "T02",
    "extension": "T10",
    "too-costly": "X99",
    "business-rule": "X99",
    "conflict": "X99",
    "transient": "X99",
    "lock-error": "X99",
    "no-store": "X99",
    "exception": "X99",
    "timeout": "X99",
    "incomplete": "X99",
    "throttled": "X99",
    "informational": "X99",
}
TRANSIENT_FAMILY = {"transient", "lock-error", "no-store", "exception", "timeout"}
TRANSIENT_FAMILY |= {"incomplete", "throttled"}

#: a synthetic fødselsnummer (month + 80) and a name, as a careless server would echo them
FNR = "15838512086"
NAME = "Øyehaug-Ødegård"

issue_codes = st.sampled_from(sorted(R4_ISSUE_TYPES))
any_code = issue_codes | json_values(3)
expressions = st.lists(
    st.sampled_from(
        [
            "Patient.identifier[0]",
            "Bundle.entry[4].resource",
            "Bundle.entry[1].resource.name",
            "CarePlan.description",
            "MessageHeader.destination[0].endpoint",
            f"Patient.identifier.where(value='{FNR}')",
            f"Bundle.entry[{FNR}]",
            f"Patient.name.family = '{NAME}'",
        ]
    )
    | st.text(max_size=20),
    max_size=4,
)
severities = st.sampled_from(["fatal", "error", "warning", "information"]) | json_values(1)


@st.composite
def issues(draw: st.DrawFn) -> dict[str, Any]:
    issue: dict[str, Any] = {}
    if draw(st.booleans()):
        issue["severity"] = draw(severities)
    issue["code"] = draw(any_code)
    if draw(st.booleans()):
        issue["expression"] = draw(expressions)
    # free text a server may fill with the person: never to be copied
    issue["diagnostics"] = f"patient {FNR} {NAME}"
    issue["details"] = {"text": f"{NAME} ({FNR}) not known"}
    return issue


outcomes = st.builds(
    lambda issues: {"resourceType": "OperationOutcome", "issue": issues},
    st.lists(issues(), max_size=5),
)
entry_types = st.lists(st.sampled_from(["MessageHeader", "Organization", "Patient", "CarePlan"]))


def test_the_module_knows_exactly_the_r4_issue_codes() -> None:
    assert set(R4_ISSUE_TYPES) == ISSUE_CODES
    assert len(ISSUE_CODES) == 31


def test_each_issue_code_maps_as_the_table_says() -> None:
    for code, expected in R4_ISSUE_TYPES.items():
        assert error_code(code) == expected, code


def test_not_found_about_the_patient_is_e35() -> None:
    for code in ("not-found", "deleted"):
        assert error_code(code, ["Patient.identifier[0]"]) == "E35"
        assert error_code(code, ["Bundle.entry[2].resource.identifier"], ["A", "B", "Patient"])
        assert error_code(code, ["Bundle.entry[2].resource"], ["A", "B", "CarePlan"]) == "E21"
        assert error_code(code, ["Bundle.entry[9].resource"], ["Patient"]) == "E21"
        # a word that merely contains "Patient" is not the Patient
        assert error_code(code, ["PatientFoo.x"]) == "E21"


@given(any_code, st.lists(json_values(2), max_size=3), entry_types)
def test_mapping_is_total_and_deterministic(code: Any, exprs: list[Any], types: list[str]) -> None:
    mapped = error_code(code, exprs, types)
    assert mapped == error_code(code, exprs, types)
    if code == "duplicate":
        assert mapped is None
    else:
        assert mapped in ERROR_TEXTS
    known = isinstance(code, str) and code in ISSUE_CODES
    if not known:
        assert mapped == "X99"
    elif code not in ("not-found", "deleted"):
        # only not-found looks at where the issue points
        assert mapped == R4_ISSUE_TYPES[code]


@given(json_values(8), entry_types)
def test_any_json_reads_without_raising(value: Any, types: list[str]) -> None:
    outcome = read_outcome(value, types)
    assert isinstance(outcome, Outcome)
    assert all(e.code in ERROR_TEXTS for e in outcome.errors)


@given(outcomes, entry_types)
def test_reading_an_outcome(outcome: dict[str, Any], types: list[str]) -> None:
    read = read_outcome(outcome, types)
    assert read == read_outcome(outcome, types)

    counted = [
        i for i in outcome["issue"] if str(i.get("severity")) not in ("warning", "information")
    ]
    not_duplicate = [i for i in counted if i["code"] != "duplicate"]
    codes = [i["code"] if isinstance(i["code"], str) else None for i in not_duplicate]
    assert [e.code for e in read.errors] == [
        error_code(i["code"], i.get("expression", []), types) for i in not_duplicate
    ]
    assert all(e.code in ERROR_TEXTS for e in read.errors)
    assert read.duplicate == any(i["code"] == "duplicate" for i in counted)
    assert read.transient == any(c in TRANSIENT_FAMILY for c in codes)
    assert read.only_duplicate == (read.duplicate and not not_duplicate)

    # no person data: diagnostics, texts and expressions holding values are never copied
    for text in (read.summary, *(e.detail or "" for e in read.errors)):
        assert FNR not in text
        assert NAME not in text
    # what is shown of an issue code is a code of the value set, or says it is unknown
    for error, code in zip(read.errors, codes, strict=True):
        shown = code if code in ISSUE_CODES else "unknown issue code"
        assert (error.detail or "").startswith(f"FHIR issue '{shown}'")


def test_plain_paths_keep_element_paths_only() -> None:
    paths = [
        "Bundle.entry[3].resource.identifier[0]",
        "CarePlan.description",
        f"Patient.identifier.where(value='{FNR}')",
        f"Bundle.entry[{FNR}]",
        "Patient.name[0].family = 'x'",
        7,
    ]
    assert plain_paths(paths) == ["Bundle.entry[3].resource.identifier[0]", "CarePlan.description"]
    assert plain_paths("CarePlan.description") == []


def test_about_patient_ignores_what_is_not_text() -> None:
    assert not about_patient([None, 3, {"Patient": 1}], ["Patient"])
    assert about_patient(["Bundle.entry[0]"], ["Patient"])


def test_severity_decides_what_counts() -> None:
    def one(severity: Any) -> Outcome:
        issue = {"code": "invalid"} | ({} if severity is None else {"severity": severity})
        return read_outcome({"resourceType": "OperationOutcome", "issue": [issue]})

    assert one("warning").errors == ()
    assert one("information").errors == ()
    for counted in ("fatal", "error", None, "bogus"):
        assert [e.code for e in one(counted).errors] == ["T02"], counted


def test_a_duplicate_beside_another_error_is_no_acknowledgement() -> None:
    read = read_outcome(
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "error", "code": "duplicate"},
                {"severity": "error", "code": "required", "expression": ["CarePlan.subject"]},
            ],
        }
    )
    assert read.duplicate
    assert not read.only_duplicate
    assert [(e.code, e.detail) for e in read.errors] == [
        ("T02", "FHIR issue 'required' at CarePlan.subject")
    ]
    assert read.summary == "'duplicate'; 'required' at CarePlan.subject"
