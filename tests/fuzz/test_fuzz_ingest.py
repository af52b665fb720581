"""Fuzzing the ingest endpoints of the real gateway (broker, store, pipeline in process).

Whatever comes in — a valid document broken on any level, junk, a bomb, the wrong content
type — the answer is < 500 and says why in the endpoint's own language: a rejecting AppRec
1.1 that passes the official XSD on ``POST /plo``, an OperationOutcome that passes the
official R4 JSON Schema on ``/fhir``; its error texts carry no person data; and the gateway is
healthy after each batch, with every message it took processed without an unexpected error.

One gateway per test function, not per example (starting one takes a second): each example
is a batch of inputs, so a failure shrinks to the one input that breaks it. The inputs come
from tests/fuzz/fuzz_inputs.py. ``IPGW_FUZZ_SCALE`` (default 1) multiplies the number of
batches for a longer run by hand.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft6Validator
from lxml import etree

from gateway.demo.samples import make_notice
from mappings.plo.xmlsafe import parse_xml
from mappings.plo.xsd import SchemaSet, load_schema_set
from tests.fuzz.fuzz_inputs import (
    JSON_TYPES,
    ODD_TYPES,
    XML_TYPES,
    Samples,
    consent_sample,
    fhir_samples,
    json_bodies,
    xml_documents,
    xml_samples,
)
from tests.integration.test_pipeline import wait_status
from tests.standards import r4_schema_validator, standards_dir

pytestmark = [pytest.mark.fuzz, pytest.mark.integration]

SCALE = int(os.environ.get("IPGW_FUZZ_SCALE", "1"))
BATCH = 25
APPREC_11 = "http://www.kith.no/xmlstds/apprec/2012-02-15"
#: statuses a message the gateway took may rest in once the pipeline has looked at it
SETTLED = {"REJECTED", "DELIVERED", "ACKNOWLEDGED", "HELD_CONSENT", "HELD_ROUTING", "DEAD"}
SETTLED |= {"RETRYING"}


async def post(
    client: httpx.AsyncClient, path: str, body: bytes, content_type: str
) -> httpx.Response:
    """The request; an exception out of the app (the in-process transport raises what would be
    a 500) fails the test as it comes: each is a finding (see test_fuzz_findings.py)."""
    return await client.post(path, content=body, headers={"content-type": content_type})


def fuzz_settings(batches: int) -> settings:
    return settings(
        max_examples=batches * SCALE,
        deadline=None,
        # one gateway for all examples of a test is the point (see the module docstring)
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# --------------------------------------------------------------------------- the oracles


_schemas: list[SchemaSet] = []


def kith_schemas() -> SchemaSet:
    if not _schemas:
        _schemas.append(load_schema_set(standards_dir() / "xsd"))
    return _schemas[0]


def r4_validator(resource_type: str) -> Draft6Validator:
    definitions = r4_schema_validator().schema["definitions"]
    return Draft6Validator({"definitions": definitions, "$ref": f"#/definitions/{resource_type}"})


#: what error texts must never hold: the person in the samples (ids and names)
PERSON = make_notice(__import__("random").Random(1), "1506").patient
SECRETS = (PERSON.person_id, PERSON.name.family, PERSON.name.given)


def assert_private(texts: Iterable[str]) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, "an error text repeats the person's data"


def check_problem(r: httpx.Response) -> None:
    """An RFC 9457 problem (a caller the gateway does not let send: 401, 403, 429)."""
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == r.status_code
    assert problem["type"].startswith("https://ipgw.example/problems/")
    assert problem["title"]


def check_plo_answer(r: httpx.Response) -> str | None:
    """A /plo answer is 202 (taken), 201 (a consent statement filed, AppRec OK) or a 4xx
    with a rejecting AppRec (or a problem, for a caller not let in); the message id when the
    gateway took the message on."""
    assert r.status_code < 500, r.text[:500]
    assert r.status_code in (201, 202) or 400 <= r.status_code < 500, r.status_code
    if r.status_code == 202:
        assert r.headers["x-message-id"]
        return str(r.headers["x-message-id"])
    if not r.headers["content-type"].startswith("application/xml"):
        assert r.status_code in (401, 403, 429)
        check_problem(r)
        return None
    root = parse_xml(r.content, max_bytes=10**6)
    assert etree.QName(root).namespace == APPREC_11
    assert kith_schemas().errors(root) == [], "the AppRec is not valid against the XSD"
    status = root.xpath("string(a:Status/@V)", namespaces={"a": APPREC_11})
    errors = root.xpath("a:Error", namespaces={"a": APPREC_11})
    if r.status_code == 201:
        assert status == "1"
        return None
    assert status == "2"
    assert errors, "a rejecting AppRec says why"
    assert_private(e.get("OT") or "" for e in errors)
    return None


def check_fhir_answer(r: httpx.Response, taken: int, resource_type: str) -> str | None:
    """A /fhir answer is ``taken`` with ``resource_type``, or a 4xx OperationOutcome; both
    valid R4 JSON. The message id when the gateway took the message on."""
    assert r.status_code < 500, r.text[:500]
    assert r.status_code == taken or 400 <= r.status_code < 500, r.status_code
    assert r.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = r.json()
    expected = resource_type if r.status_code == taken else "OperationOutcome"
    assert body["resourceType"] == expected
    problems = [e.message[:200] for e in r4_validator(expected).iter_errors(body)]
    assert problems == [], f"not a valid R4 {expected}"
    if expected == "OperationOutcome" and r.status_code != taken:
        assert any(i["severity"] == "error" for i in body["issue"])
        assert_private(i.get("diagnostics", "") for i in body["issue"])
    return r.headers.get("x-message-id") if r.status_code == taken else None


async def assert_healthy(client: httpx.AsyncClient, taken: list[str]) -> None:
    """Up and ready, and every message taken has been through the pipeline."""
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    for message_id in taken:
        await wait_status(client, message_id, SETTLED, timeout=20)


@pytest.fixture
def errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """ERROR records of the product (an unexpected exception in the pipeline is one)."""
    caplog.set_level(logging.WARNING)
    return caplog.records


def assert_no_errors_logged(records: list[logging.LogRecord]) -> None:
    ours = [
        f"{r.name}: {r.getMessage()}"
        for r in records
        if r.levelno >= logging.ERROR
        and r.name.split(".")[0] in ("gateway", "adapters", "mappings")
    ]
    assert ours == []


# --------------------------------------------------------------------------- POST /plo

XML_SAMPLES = xml_samples()


@fuzz_settings(batches=120)
@given(
    bodies=st.lists(xml_documents(XML_SAMPLES), min_size=1, max_size=BATCH),
    content_type=st.sampled_from(XML_TYPES),
)
async def test_any_xml_gets_an_apprec_never_a_500(
    client: httpx.AsyncClient,
    errors_logged: list[logging.LogRecord],
    bodies: list[bytes],
    content_type: str,
) -> None:
    taken = []
    for body in bodies:
        r = await post(client, "/plo", body, content_type)
        if (message_id := check_plo_answer(r)) is not None:
            taken.append(message_id)
    await assert_healthy(client, taken)
    assert_no_errors_logged(errors_logged)


async def test_the_xml_samples_are_taken(client: httpx.AsyncClient) -> None:
    """The fuzzer starts from documents the gateway takes (else it fuzzes the first check
    only); the official KITH sample is a type it does not take (T10)."""
    statuses = []
    for body in XML_SAMPLES:
        r = await client.post("/plo", content=body, headers={"content-type": "application/xml"})
        check_plo_answer(r)
        statuses.append(r.status_code)
    assert statuses == [202, 202, 201, 400]


# --------------------------------------------------------------------------- POST /fhir/...

FHIR_SAMPLES = fhir_samples()
CONSENT = consent_sample()


@fuzz_settings(batches=90)
@given(
    bodies=st.lists(json_bodies(FHIR_SAMPLES), min_size=1, max_size=BATCH),
    content_type=st.sampled_from(JSON_TYPES),
)
async def test_any_json_message_gets_an_operation_outcome_never_a_500(
    client: httpx.AsyncClient,
    errors_logged: list[logging.LogRecord],
    bodies: list[bytes],
    content_type: str,
) -> None:
    taken = []
    for body in bodies:
        r = await post(client, "/fhir/$process-message", body, content_type)
        if (message_id := check_fhir_answer(r, 202, "OperationOutcome")) is not None:
            taken.append(message_id)
    await assert_healthy(client, taken)
    assert_no_errors_logged(errors_logged)


@fuzz_settings(batches=50)
@given(bodies=st.lists(json_bodies(Samples([CONSENT])), min_size=1, max_size=BATCH))
async def test_any_json_consent_gets_an_operation_outcome_never_a_500(
    client: httpx.AsyncClient, errors_logged: list[logging.LogRecord], bodies: list[bytes]
) -> None:
    for body in bodies:
        r = await post(client, "/fhir/Consent", body, "application/fhir+json")
        check_fhir_answer(r, 201, "Consent")
    await assert_healthy(client, [])
    assert_no_errors_logged(errors_logged)


async def test_the_json_samples_are_taken(client: httpx.AsyncClient) -> None:
    for bundle in FHIR_SAMPLES:
        r = await client.post(
            "/fhir/$process-message",
            content=orjson.dumps(bundle),
            headers={"content-type": "application/fhir+json"},
        )
        assert r.status_code == 202, r.text
    r = await client.post(
        "/fhir/Consent", content=orjson.dumps(CONSENT), headers={"content-type": "application/json"}
    )
    assert r.status_code == 201, r.text


# --------------------------------------------------------------------------- any endpoint

ANY_BODY = st.one_of(
    xml_documents(XML_SAMPLES),
    json_bodies(Samples([*FHIR_SAMPLES, CONSENT])),
    st.sampled_from([*XML_SAMPLES, *(orjson.dumps(b) for b in FHIR_SAMPLES)]),
)


@fuzz_settings(batches=50)
@given(
    requests=st.lists(
        st.tuples(
            st.sampled_from(["/plo", "/fhir/$process-message", "/fhir/Consent"]),
            ANY_BODY,
            st.sampled_from([*ODD_TYPES, *XML_TYPES, *JSON_TYPES]),
        ),
        min_size=1,
        max_size=BATCH,
    )
)
async def test_any_body_with_any_content_type_on_any_endpoint(
    client: httpx.AsyncClient,
    errors_logged: list[logging.LogRecord],
    requests: list[tuple[str, bytes, str]],
) -> None:
    """XML to the JSON endpoints and back, and content types no endpoint reads (415)."""
    taken = []
    for path, body, content_type in requests:
        r = await post(client, path, body, content_type)
        if path == "/plo":
            message_id = check_plo_answer(r)
        elif path == "/fhir/Consent":
            message_id = check_fhir_answer(r, 201, "Consent")
            message_id = None  # a consent is filed, not sent through the pipeline
        else:
            message_id = check_fhir_answer(r, 202, "OperationOutcome")
        if message_id is not None:
            taken.append(message_id)
    await assert_healthy(client, taken)
    assert_no_errors_logged(errors_logged)


async def test_a_body_past_the_limit_is_413_on_every_endpoint(client: httpx.AsyncClient) -> None:
    """The fixture's limit is 256 KiB; the body is refused without being read whole."""
    body = b"<a>" + b"x" * (300 * 1024) + b"</a>"
    r = await client.post("/plo", content=body, headers={"content-type": "application/xml"})
    assert r.status_code == 413
    check_plo_answer(r)
    for path, taken, resource_type in (
        ("/fhir/$process-message", 202, "OperationOutcome"),
        ("/fhir/Consent", 201, "Consent"),
    ):
        r = await client.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 413
        check_fhir_answer(r, taken, resource_type)
