"""``fhir_rest`` (and its ``samspill`` profile) over real HTTP against the simulated FHIR
platform (gateway/demo/platforms/fhir_server.py): every answer the platform can give, and what
the adapter makes of it (acknowledgement, or a failure with the cause the policy table reads).

Expected codes come from code list 8221 and the R4 issue-type value set as
mappings/fhir/outcome.py documents the table; expected retry behaviour from
gateway/delivery_policy.py's table (a failure's ``retryable`` is asserted, not just its cause).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from adapters import fhir_rest, samspill
from adapters.fhir_rest import FhirRest
from gateway.config import Settings
from gateway.delivery import AdapterContext, Delivered, Delivery, DeliveryFailed
from gateway.delivery_policy import Cause
from gateway.demo.platforms.fhir_server import FhirPlatform
from gateway.demo.samples import make_notice
from gateway.domain.model import CoordinatingUnit, NeedNotice
from gateway.store.database import Database
from tests.standards import r4_schema_validator, schema_problems

UNIT = CoordinatingUnit(
    kommune_nr="1506",
    kommune_name="Molde",
    name="Koordinerende enhet Molde",
    her_id=99001506,
    adapter="fhir_rest",
)
CLIENT_ID = "ip-gateway"
SECRET = "not-a-real-secret-4711"
SECRET_ENV = "IPGW_TEST_FHIR_SECRET"


@pytest.fixture
def platform() -> Iterator[FhirPlatform]:
    p = FhirPlatform()
    p.start()
    yield p
    p.stop()


@pytest.fixture
def secured() -> Iterator[FhirPlatform]:
    p = FhirPlatform(client_id=CLIENT_ID, client_secret=SECRET)
    p.start()
    yield p
    p.stop()


@pytest_asyncio.fixture
async def context(tmp_path: Path) -> AsyncIterator[AdapterContext]:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    yield AdapterContext(settings=Settings(data_dir=tmp_path), db=db)
    await db.close()


@pytest_asyncio.fixture
async def adapter(context: AdapterContext) -> AsyncIterator[FhirRest]:
    a = fhir_rest.create(context)
    yield a
    await a.aclose()


@pytest.fixture
def notice() -> NeedNotice:
    return make_notice(random.Random(1506), "1506")


def delivery(
    notice: NeedNotice, settings: dict[str, Any], message_id: str | None = None
) -> Delivery:
    return Delivery(message_id or str(uuid.uuid4()), 0, notice, UNIT, settings)


def person_data(notice: NeedNotice) -> list[str]:
    p = notice.patient
    return [p.person_id, p.name.family, *p.name.given.split()]


def assert_no_person_data(text: str, notice: NeedNotice) -> None:
    for value in person_data(notice):
        assert value not in text, f"person data in {text!r}"


def patient_entry(notice: NeedNotice) -> int:
    types = [
        e["resource"]["resourceType"] for e in fhir_rest.message_bundle(notice, "x").bundle["entry"]
    ]
    return types.index("Patient")


# --------------------------------------------------------------------------- delivered


async def test_ok_delivery_is_acknowledged_and_posts_a_valid_r4_bundle_under_the_gateway_id(
    platform: FhirPlatform, adapter: FhirRest, notice: NeedNotice
) -> None:
    d = delivery(notice, {"base_url": platform.base_url})
    result = await adapter.deliver(d)

    assert result.acknowledgement is not None
    assert result.acknowledgement.ok
    assert result.acknowledgement.message_id == d.message_id
    assert result.remote_ref is not None
    assert result.remote_ref != d.message_id
    assert platform.received == {d.message_id: 1}

    bundle = platform.bundle(d.message_id)
    assert bundle is not None
    assert bundle["id"] == d.message_id
    header = bundle["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    # the hospital's id stays the logical message's id: only the Bundle id is the gateway's
    assert header["id"] == notice.sender_message_id
    assert header["destination"] == [{"endpoint": platform.base_url}]
    assert schema_problems(r4_schema_validator(), bundle) == []


async def test_the_same_message_twice_is_stored_once_and_a_new_id_would_show(
    platform: FhirPlatform, adapter: FhirRest, notice: NeedNotice
) -> None:
    d = delivery(notice, {"base_url": platform.base_url})
    first = await adapter.deliver(d)
    again = await adapter.deliver(d)

    assert first.acknowledgement is not None
    assert first.acknowledgement.ok
    assert again.acknowledgement is not None
    assert again.acknowledgement.ok
    # the platform answers a redelivery with its first answer
    assert again.remote_ref == first.remote_ref
    stats = platform.stats()
    assert stats["received"] == {d.message_id: 2}
    assert (stats["distinct"], stats["redeliveries"], stats["duplicates_in_effect"]) == (1, 1, 0)

    # the counter the chaos runs rely on: the same notice under another Bundle id is caught
    await adapter.deliver(delivery(notice, {"base_url": platform.base_url}))
    assert platform.distinct == 2
    assert platform.duplicates_in_effect == 1


async def test_accepted_for_later_is_delivered_without_acknowledgement(
    platform: FhirPlatform, adapter: FhirRest, notice: NeedNotice
) -> None:
    platform.set_mode("accept_only")
    d = delivery(notice, {"base_url": platform.base_url})
    result = await adapter.deliver(d)
    assert isinstance(result, Delivered)
    assert result.acknowledgement is None
    assert "202" in result.detail
    assert platform.received == {d.message_id: 1}


async def test_fatal_error_response_is_delivered_with_a_rejecting_acknowledgement(
    platform: FhirPlatform, adapter: FhirRest, notice: NeedNotice
) -> None:
    platform.set_mode("reject", issue="required", status=200, expression=["CarePlan.description"])
    d = delivery(notice, {"base_url": platform.base_url})
    result = await adapter.deliver(d)

    ack = result.acknowledgement
    assert ack is not None
    assert not ack.ok
    assert [e.code for e in ack.errors] == ["T02"]
    assert ack.errors[0].detail == "FHIR issue 'required' at CarePlan.description"
    assert ack.message_id == d.message_id
    for text in (result.detail, ack.detail, *(e.detail or "" for e in ack.errors)):
        assert_no_person_data(text, notice)
    assert platform.distinct == 0  # refused: the platform did not keep it


async def test_a_duplicate_only_refusal_means_already_received(
    platform: FhirPlatform, adapter: FhirRest, notice: NeedNotice
) -> None:
    platform.set_mode("reject", issue="duplicate", status=409)
    result = await adapter.deliver(delivery(notice, {"base_url": platform.base_url}))
    assert result.acknowledgement is not None
    assert result.acknowledgement.ok
    assert "already received" in result.detail


# --------------------------------------------------------------------------- failures


async def failure(adapter: FhirRest, d: Delivery) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        await adapter.deliver(d)
    assert isinstance(d.content, NeedNotice)
    assert_no_person_data(caught.value.detail, d.content)
    assert_no_person_data(str(caught.value), d.content)
    return caught.value


async def test_503_is_a_retryable_server_error(
    platform: FhirPlatform, adapter: FhirRest, notice: NeedNotice
) -> None:
    platform.set_mode("unavailable")
    f = await failure(adapter, delivery(notice, {"base_url": platform.base_url}))
    assert f.cause is Cause.SERVER_ERROR
    assert f.retryable
    assert "HTTP 503" in f.detail
    assert platform.posts == 1
    assert platform.distinct == 0


async def test_connection_refused_is_retryable_and_the_platform_keeps_its_state(
    platform: FhirPlatform, adapter: FhirRest, notice: NeedNotice
) -> None:
    settings = {"base_url": platform.base_url}
    first = delivery(notice, settings)
    await adapter.deliver(first)
    platform.stop()
    f = await failure(adapter, delivery(notice, settings))
    assert f.cause is Cause.CONNECTION
    assert f.retryable

    platform.start()
    await adapter.deliver(first)
    assert platform.received == {first.message_id: 2}


async def test_timeout_after_the_platform_stored_it_then_the_resend_is_a_redelivery(
    platform: FhirPlatform, adapter: FhirRest, notice: NeedNotice
) -> None:
    platform.set_mode("slow", seconds=3)
    d = delivery(notice, {"base_url": platform.base_url, "timeout_seconds": 0.3})
    f = await failure(adapter, d)
    assert f.cause is Cause.TIMEOUT
    assert f.retryable

    platform.set_mode("ok")
    result = await adapter.deliver(d)
    assert result.acknowledgement is not None
    assert result.acknowledgement.ok
    assert platform.received == {d.message_id: 2}
    assert platform.duplicates_in_effect == 0


@pytest.mark.parametrize(
    ("issue", "expression", "code"),
    [
        ("invalid", ["Bundle.entry[0].resource.eventCoding"], "T02"),
        ("code-invalid", [], "T02"),
        ("not-supported", [], "T10"),
        ("not-found", ["Patient.identifier[0]"], "E35"),
        ("not-found", ["PATIENT_ENTRY.resource.identifier[0]"], "E35"),
        ("not-found", ["MessageHeader.destination[0].endpoint"], "E21"),
        ("business-rule", [], "X99"),
    ],
)
async def test_422_is_refused_with_the_code_of_its_operation_outcome(
    platform: FhirPlatform,
    adapter: FhirRest,
    notice: NeedNotice,
    issue: str,
    expression: list[str],
    code: str,
) -> None:
    expression = [
        e.replace("PATIENT_ENTRY", f"Bundle.entry[{patient_entry(notice)}]") for e in expression
    ]
    platform.set_mode("reject", issue=issue, status=422, expression=expression)
    f = await failure(adapter, delivery(notice, {"base_url": platform.base_url}))
    assert f.cause is Cause.CLIENT_ERROR
    assert not f.retryable
    assert f.code == code
    assert f"HTTP 422; OperationOutcome: '{issue}'" in f.detail
    for path in expression:
        assert path in f.detail


@pytest.mark.parametrize("issue", ["transient", "throttled", "timeout", "lock-error"])
async def test_a_transient_issue_in_a_4xx_is_recipient_busy(
    platform: FhirPlatform, adapter: FhirRest, notice: NeedNotice, issue: str
) -> None:
    platform.set_mode("reject", issue=issue, status=400)
    f = await failure(adapter, delivery(notice, {"base_url": platform.base_url}))
    assert f.cause is Cause.RECIPIENT_BUSY
    assert f.retryable


async def test_an_unreadable_200_is_retryable_and_the_resend_is_deduped(
    platform: FhirPlatform, adapter: FhirRest, notice: NeedNotice
) -> None:
    platform.set_mode("garbled")
    d = delivery(notice, {"base_url": platform.base_url})
    f = await failure(adapter, d)
    assert f.cause is Cause.UNREADABLE_ANSWER
    assert f.retryable
    platform.set_mode("ok")
    await adapter.deliver(d)
    assert platform.received == {d.message_id: 2}


async def test_a_missing_base_url_is_misconfigured(adapter: FhirRest, notice: NeedNotice) -> None:
    f = await failure(adapter, delivery(notice, {}))
    assert f.cause is Cause.MISCONFIGURED
    assert not f.retryable


# --------------------------------------------------------------------------- OAuth2


def oauth(platform: FhirPlatform) -> dict[str, Any]:
    return {
        "base_url": platform.base_url,
        "token_url": platform.token_url,
        "client_id": CLIENT_ID,
        "client_secret_env": SECRET_ENV,
    }


async def test_token_is_fetched_cached_and_fetched_again_after_a_401(
    secured: FhirPlatform,
    adapter: FhirRest,
    notice: NeedNotice,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    settings = oauth(secured)
    for _ in range(2):
        result = await adapter.deliver(delivery(notice, settings))
        assert result.acknowledgement is not None
        assert result.acknowledgement.ok
    assert secured.token_requests == 1

    secured.revoke_tokens()
    result = await adapter.deliver(delivery(notice, settings))
    assert result.acknowledgement is not None
    assert result.acknowledgement.ok
    stats = secured.stats()
    assert stats["token_requests"] == 2
    assert stats["unauthorised"] == 1
    assert stats["posts"] == 4


async def test_without_a_token_the_platform_answers_401_not_authorised(
    secured: FhirPlatform, adapter: FhirRest, notice: NeedNotice
) -> None:
    f = await failure(adapter, delivery(notice, {"base_url": secured.base_url}))
    assert f.cause is Cause.NOT_AUTHORISED
    assert not f.retryable
    assert f.code == "S99"  # OperationOutcome 'login'


async def test_a_wrong_secret_is_not_authorised(
    secured: FhirPlatform,
    adapter: FhirRest,
    notice: NeedNotice,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, "wrong")
    f = await failure(adapter, delivery(notice, oauth(secured)))
    assert f.cause is Cause.NOT_AUTHORISED
    assert "token endpoint" in f.detail
    assert secured.posts == 0


async def test_a_missing_secret_is_misconfigured_and_nothing_is_posted(
    secured: FhirPlatform,
    adapter: FhirRest,
    notice: NeedNotice,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    f = await failure(adapter, delivery(notice, oauth(secured)))
    assert f.cause is Cause.MISCONFIGURED
    assert not f.retryable
    assert SECRET_ENV in f.detail
    assert (secured.token_requests, secured.posts) == (0, 0)


# --------------------------------------------------------------------------- samspill


@pytest_asyncio.fixture
async def samspill_adapter(context: AdapterContext) -> AsyncIterator[FhirRest]:
    a = samspill.create(context)
    yield a
    await a.aclose()


def careplan(bundle: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan"
    ]
    assert len(found) == 1
    return found[0]


async def test_samspill_cuts_a_long_need_and_carries_the_full_text_in_a_note(
    platform: FhirPlatform, samspill_adapter: FhirRest, notice: NeedNotice
) -> None:
    assert samspill_adapter.name == "samspill"
    need = " ".join(f"behov{i}" for i in range(500))  # ~4900 characters
    long = notice.model_copy(update={"need": need})
    d = delivery(long, {"base_url": platform.base_url})
    result = await samspill_adapter.deliver(d)

    assert result.acknowledgement is not None
    assert result.acknowledgement.ok
    assert "cut to 2000 characters" in result.detail
    bundle = platform.bundle(d.message_id)
    assert bundle is not None
    plan = careplan(bundle)
    description = plan["description"]
    assert len(description) <= samspill.TEXT_LIMIT
    assert description.endswith(samspill.CUT_MARKER)
    kept = description.removesuffix(samspill.CUT_MARKER)
    assert need.startswith(kept)
    assert need[len(kept)] == " "  # cut at a word boundary
    assert plan["note"] == [{"text": need}]
    assert schema_problems(r4_schema_validator(), bundle) == []


async def test_samspill_posts_a_need_within_the_limit_as_fhir_rest_does(
    platform: FhirPlatform, samspill_adapter: FhirRest, adapter: FhirRest, notice: NeedNotice
) -> None:
    settings = {"base_url": platform.base_url}
    a, b = delivery(notice, settings), delivery(notice, settings)
    result = await samspill_adapter.deliver(a)
    await adapter.deliver(b)
    assert "cut" not in result.detail
    sent_a, sent_b = platform.bundle(a.message_id), platform.bundle(b.message_id)
    assert sent_a is not None
    assert sent_b is not None
    assert {**sent_a, "id": "x"} == {**sent_b, "id": "x"}
    assert careplan(sent_a)["description"] == notice.need


@given(st.text(st.sampled_from("ab \n"), min_size=1, max_size=60), st.integers(8, 40))
def test_shorten_keeps_within_the_limit_and_cuts_only_at_whitespace(text: str, limit: int) -> None:
    out = samspill.shorten(text, limit)
    assert len(out) <= limit
    if len(text) <= limit:
        assert out == text
        return
    kept = out.removesuffix(samspill.CUT_MARKER)
    assert out.endswith(samspill.CUT_MARKER)
    assert text.startswith(kept)
    # at a word boundary, unless the text has no whitespace to cut at in reach
    room = text[: limit - len(samspill.CUT_MARKER)]
    if any(c.isspace() for c in room.lstrip()):
        assert text[len(kept)].isspace() or not kept


# --------------------------------------------------------------------------- the simulator


def test_the_platform_is_controlled_and_read_over_http(platform: FhirPlatform) -> None:
    root = platform.base_url.removesuffix("/fhir")
    r = httpx.post(f"{root}/_sim/mode", json={"mode": "unavailable"})
    assert r.status_code == 200
    assert platform.mode == "unavailable"
    assert httpx.post(f"{root}/_sim/mode", json={"mode": "sleepy"}).status_code == 400
    post = httpx.post(
        f"{platform.base_url}/$process-message",
        content=b'{"resourceType": "Bundle"}',
        headers={"content-type": "application/fhir+json"},
    )
    assert post.status_code == 400  # not a message Bundle: refused before the mode applies
    assert post.json()["issue"][0]["code"] == "structure"
    stats = httpx.get(f"{root}/_sim/stats").json()
    assert stats["mode"] == "unavailable"
    assert (stats["posts"], stats["distinct"], stats["received"]) == (1, 0, {})
