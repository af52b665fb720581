"""What the ingest fuzzing found, each pinned down as a plain test.

Each was a crash or a leak the fuzzer found; it stays here as a regression test.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import orjson
import pytest

from gateway.auth.spoofing import fhir_sender
from tests.fuzz.fuzz_inputs import consent_sample, fhir_samples

pytestmark = [pytest.mark.fuzz]

NOTICE = fhir_samples()[0]
#: fixed (gateway/auth/spoofing.py fhir_sender): a MessageHeader.sender.reference (or an
#: Organization.partOf.reference) that was a list or an object was hashed as a key, raised
#: TypeError, and POST /fhir/$process-message answered 500; the reference is now taken only
#: when it is a string


def with_reference(value: Any, *, part_of: bool = False) -> dict[str, Any]:
    """The notice sample with MessageHeader.sender.reference (or the sender's partOf
    reference) set to ``value``."""
    bundle = copy.deepcopy(NOTICE)
    header = bundle["entry"][0]["resource"]
    if not part_of:
        header["sender"]["reference"] = value
        return bundle
    for entry in bundle["entry"]:
        if entry["fullUrl"] == header["sender"]["reference"]:
            entry["resource"]["partOf"] = {"reference": value}
    return bundle


ODD_REFERENCES = [[], ["urn:uuid:x"], {}, {"reference": "x"}]


@pytest.mark.parametrize("value", ODD_REFERENCES, ids=["list", "list-of-str", "dict", "nested"])
@pytest.mark.parametrize("part_of", [False, True], ids=["sender", "partOf"])
def test_a_sender_reference_that_is_no_string_names_no_sender(value: Any, part_of: bool) -> None:
    named = fhir_sender(with_reference(value, part_of=part_of))
    # an unresolvable sender names nothing (the caller is then refused as unverifiable); a
    # partOf that does not resolve leaves the department alone
    assert len(named) == (1 if part_of else 0)


@pytest.mark.integration
async def test_a_sender_reference_that_is_no_string_is_a_4xx(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/fhir/$process-message",
        content=orjson.dumps(with_reference([])),
        headers={"content-type": "application/fhir+json"},
    )
    assert 400 <= r.status_code < 500
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.integration
async def test_a_consent_key_that_is_no_element_name_is_not_echoed(
    client: httpx.AsyncClient,
) -> None:
    """Fixed (mappings/fhir/r4json.py): the key came back in the diagnostics, which then were
    no R4 string (a no-break space); tests/unit/test_r4json_keys.py has the rule."""
    consent = consent_sample()
    consent["scope"]["\xa0Kari"] = None
    r = await client.post(
        "/fhir/Consent", content=orjson.dumps(consent), headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    (issue,) = r.json()["issue"]
    assert "Kari" not in issue["diagnostics"]
    assert "\xa0" not in issue["diagnostics"]
