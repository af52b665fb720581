"""Status messages about a plan (issue 6 flow 1, issue 4 "the KE is told when a delivered
plan's consent is withdrawn"), over the real broker and store, to simulated platforms over
HTTP: the old kommune is told when its plan reached the new one; the units that have a plan
are told when the consent it was shared under is withdrawn -- once, and in their format."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.config import Settings
from gateway.demo.platforms.fhir_server import FhirPlatform
from gateway.demo.platforms.nhn_msh_server import NhnMessageService
from gateway.demo.samples import make_transfer, next_version
from gateway.domain.plan import PlanEvent, PlanStatusMessage, PlanTransfer
from mappings.fhir.plan_status import bundle_to_status
from mappings.plo.plan_status import msghead_to_status
from mappings.plo.xmlsafe import parse_xml
from tests.integration.platforms import GATEWAY_HER, Platforms, ke, with_directory
from tests.integration.test_pipeline import wait_status
from tests.integration.test_plan_transfer import transfer_consent
from tests.integration.test_transfer_across_platforms import transfer
from tests.unit.test_plo_mapping import schema_set

pytestmark = pytest.mark.integration

FHIR = {"content-type": "application/fhir+json"}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, platforms: Platforms) -> Settings:
    fhir, nhn = platforms
    entries = ke("1505", "fhir_rest", fhir.base_url) + ke("1508", "nhn_msh", nhn.base_url)
    return with_directory(settings, tmp_path, entries)


async def status_copies(client: httpx.AsyncClient, message_id: str) -> list[dict[str, Any]]:
    view = (await client.get(f"/messages/{message_id}")).json()
    return [p for p in view["parties"] if p["kind"] == "plan-status"]


async def wait_status_copies(
    client: httpx.AsyncClient, message_id: str, n: int, timeout: float = 15.0
) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await status_copies(client, message_id)
        if len(found) >= n and all(p["status"] == "ACKNOWLEDGED" for p in found):
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"status messages not acknowledged: {found}")
        await asyncio.sleep(0.05)


def expect(status: PlanStatusMessage, t: PlanTransfer, event: PlanEvent, regarding: str) -> None:
    assert (status.plan_id, status.version, status.event, status.regarding) == (
        t.plan.plan_id,
        t.plan.version,
        event,
        regarding,
    )
    assert status.patient.person_id == t.plan.patient.person_id
    assert status.sender.organisation.her_id == GATEWAY_HER


def nhn_status(nhn: NhnMessageService, her_id: int, message_id: str) -> PlanStatusMessage:
    root = parse_xml(nhn.kept(her_id)[message_id], max_bytes=1_000_000)
    assert schema_set().errors(root) == []
    return msghead_to_status(root, allow_synthetic_ids=True)


async def withdraw(client: httpx.AsyncClient, t: PlanTransfer, consent_id: str) -> None:
    body = transfer_consent(t, consent_id) | {
        "status": "inactive",
        "meta": {"lastUpdated": "2026-11-22T10:00:00+00:00"},
    }
    r = await client.post("/fhir/Consent", content=orjson.dumps(body), headers=FHIR)
    assert r.status_code in (200, 201), r.text


async def test_the_old_kommune_is_told_when_its_plan_reached_the_new_one(
    client: httpx.AsyncClient, platforms: tuple[FhirPlatform, NhnMessageService]
) -> None:
    fhir, nhn = platforms
    rng = random.Random(91)

    # 1505 (FHIR) -> 1508 (NHN): acknowledged by AppRec; then 1505 gets the status as FHIR
    out = make_transfer(rng, "1505", "1508")
    there = await transfer(client, out, "transfer-91")
    [told] = await wait_status_copies(client, there, 1)
    assert told["recipient_her_id"] == 99_001_505
    bundle = fhir.bundle(told["id"])
    assert bundle is not None
    status = bundle_to_status(bundle, allow_synthetic_ids=True)
    expect(status, out, PlanEvent.TRANSFERRED, there)
    assert status.new_kommune_nr == "1508"
    assert status.new_responsible is not None
    assert status.new_responsible.her_id == 99_001_508
    # the old kommune's transfer list and the new one's inbox hold transfers only
    old = (await client.get("/ke/1505/transfers")).json()
    assert [t["id"] for t in old["outgoing"]] == [there]
    assert old["incoming"] == []

    # and back, 1508 (NHN) gets it as a Dialogmelding that the KITH schemas accept
    back = next_version(rng, out, "1505")
    home = await transfer(client, back, "transfer-92")
    [told] = await wait_status_copies(client, home, 1)
    status = nhn_status(nhn, 99_001_508, told["id"])
    expect(status, back, PlanEvent.TRANSFERRED, home)
    assert status.new_kommune_nr == "1505"


async def test_withdrawing_consent_tells_the_kommune_that_has_the_plan_once(
    client: httpx.AsyncClient, platforms: tuple[FhirPlatform, NhnMessageService]
) -> None:
    _, nhn = platforms
    out = make_transfer(random.Random(93), "1505", "1508")
    there = await transfer(client, out, "transfer-93")
    await wait_status_copies(client, there, 1)  # the old kommune told of the transfer

    await withdraw(client, out, "transfer-93")
    found = await wait_status_copies(client, there, 2)
    [withdrawn] = [p for p in found if p["recipient_her_id"] == 99_001_508]
    status = nhn_status(nhn, 99_001_508, withdrawn["id"])
    expect(status, out, PlanEvent.CONSENT_WITHDRAWN, there)
    assert status.new_kommune_nr is None
    # the delivered transfer stands (the plan is there); only the news is new
    assert (await wait_status(client, there, {"ACKNOWLEDGED"}))["status"] == "ACKNOWLEDGED"

    # the same withdrawal again tells no one again (status messages are made when the
    # consent is filed, before the answer)
    await withdraw(client, out, "transfer-93")
    assert len(await status_copies(client, there)) == 2


async def test_a_consent_that_is_given_tells_no_one(
    client: httpx.AsyncClient, platforms: tuple[FhirPlatform, NhnMessageService]
) -> None:
    out = make_transfer(random.Random(94), "1505", "1508")
    there = await transfer(client, out, "transfer-94")
    await wait_status_copies(client, there, 1)
    # a further consent (not a withdrawal) for the same person
    r = await client.post(
        "/fhir/Consent",
        content=orjson.dumps(transfer_consent(out, "transfer-94b")),
        headers=FHIR,
    )
    assert r.status_code == 201, r.text
    assert [p["recipient_her_id"] for p in await status_copies(client, there)] == [99_001_505]
