"""A plan moves between two kommuner on different platforms (issue 6, "done when"): from a
FHIR platform to an NHN/IP-XML platform and back, over the real broker and store and the
simulated platforms over HTTP; both sides' states come out right and the plan arrives whole."""

from __future__ import annotations

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
from gateway.domain.plan import PlanTransfer
from mappings.fhir.plan import bundle_to_transfer, transfer_to_bundle
from mappings.plo.plan import msghead_to_transfer
from mappings.plo.xmlsafe import parse_xml
from tests.integration.platforms import Platforms, ke, with_directory
from tests.integration.test_pipeline import post, wait_status
from tests.integration.test_plan_transfer import transfer_consent

pytestmark = pytest.mark.integration

FHIR = {"content-type": "application/fhir+json"}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, platforms: Platforms) -> Settings:
    fhir, nhn = platforms
    return with_directory(
        settings,
        tmp_path,
        ke("1505", "fhir_rest", fhir.base_url) + ke("1508", "nhn_msh", nhn.base_url),
    )


async def transfer(client: httpx.AsyncClient, t: PlanTransfer, consent_id: str) -> str:
    r = await client.post(
        "/fhir/Consent", content=orjson.dumps(transfer_consent(t, consent_id)), headers=FHIR
    )
    assert r.status_code == 201, r.text
    r = await post(client, orjson.dumps(transfer_to_bundle(t)))
    assert r.status_code == 202, r.text
    message_id = str(r.json()["id"])
    await wait_status(client, message_id, {"ACKNOWLEDGED"}, timeout=20)
    return message_id


async def states(client: httpx.AsyncClient, nr: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/ke/{nr}/transfers")).json()
    return body


async def test_from_a_fhir_platform_to_an_nhn_platform_and_back(
    client: httpx.AsyncClient, platforms: tuple[FhirPlatform, NhnMessageService]
) -> None:
    fhir, nhn = platforms
    rng = random.Random(71)

    # 1505 (FHIR platform) -> 1508 (NHN message service, IP-XML; acknowledged by AppRec)
    out = make_transfer(rng, "1505", "1508")
    there = await transfer(client, out, "transfer-71")
    kept = nhn.kept(99_001_508)
    assert there in kept  # MsgId = the gateway id
    arrived, _ = msghead_to_transfer(
        parse_xml(kept[there], max_bytes=4_000_000), allow_synthetic_ids=True
    )
    assert arrived.plan == out.plan
    old, new = await states(client, "1505"), await states(client, "1508")
    assert [(t["id"], t["status"], t["to_kommune"]) for t in old["outgoing"]] == [
        (there, "ACKNOWLEDGED", "1508")
    ]
    assert [(t["id"], t["status"]) for t in new["incoming"]] == [(there, "ACKNOWLEDGED")]
    receipt = (await client.get(f"/receipts/{there}")).json()
    assert receipt["status"]["V"] == "1"

    # the person moves back: 1508 sends version 2 to 1505 (FHIR platform, acknowledged in
    # the answer to the delivery)
    back = next_version(rng, out, "1505")
    home = await transfer(client, back, "transfer-72")
    bundle = fhir.bundle(home)
    assert bundle is not None
    assert bundle_to_transfer(bundle, allow_synthetic_ids=True).plan == back.plan
    new, old = await states(client, "1508"), await states(client, "1505")
    assert [(t["id"], t["version"]) for t in new["outgoing"]] == [(home, 2)]
    assert [(t["id"], t["version"]) for t in old["incoming"]] == [(home, 2)]
