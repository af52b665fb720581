"""Unknown JSON keys in refusals (mappings/fhir/r4json.py): named when they look like element
names, never repeated when they do not.

Found by tests/fuzz: a Consent with the key ``"\\xa0"`` (a no-break space) was refused with
that key in the OperationOutcome's diagnostics, which then was no R4 ``string`` (only space,
tab, CR and LF may stand for whitespace) — and a key is the sender's free text: a name, a
control character or 100 kB.
"""

from __future__ import annotations

import re

import pytest

from gateway.demo.peers import consent_json
from mappings.fhir.r4json import r4_json_problems

#: R4 ``string`` (the JSON Schema's pattern)
R4_STRING = re.compile(r"^[ \r\n\t\S]+$")
CONSENT = consent_json("13116900216", "need-notice")


@pytest.mark.parametrize(
    "key",
    ["\xa0", "\u2028", "\x00", "a b", "Kari Nordmann", "x" * 100_000, "ø", "", "1abc", "{}"],
    ids=lambda k: repr(k[:12]),
)
def test_a_key_that_is_no_element_name_is_not_repeated(key: str) -> None:
    problems = r4_json_problems(CONSENT | {"scope": CONSENT["scope"] | {key: None}})
    assert problems == ["scope.(a key that is no element name): not an element of this type"]
    assert all(R4_STRING.match(p) for p in problems)


@pytest.mark.parametrize("key", ["colour", "_status2", "fhir_comments", "modifierExtension2"])
def test_a_key_that_looks_like_an_element_name_is_named(key: str) -> None:
    (problem,) = r4_json_problems(CONSENT | {key: "x"})
    assert problem.startswith(f"{key}: ")
