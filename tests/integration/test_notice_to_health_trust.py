"""A need notice that says the health trust takes part reaches the trust's own KE too
(issue 4, routing: "the HF's own KE is a recipient too when the message says the health trust
takes part"), over the real broker and store, the trust on a simulated FHIR platform and the
kommune on the pull inbox."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.config import Settings
from gateway.demo.peers import GATEWAY
from gateway.demo.samples import HELSE_MORE_OG_ROMSDAL, make_notice
from gateway.domain.model import NeedNotice, Organisation
from mappings.fhir.notice import bundle_to_notice, notice_to_bundle
from mappings.plo.msghead import to_bytes
from mappings.plo.notice import notice_to_msghead
from tests.integration.platforms import Platforms, trust, with_directory
from tests.integration.test_pipeline import post, wait_status

pytestmark = pytest.mark.integration

HMR = HELSE_MORE_OG_ROMSDAL
MOLDE = (
    '[[kommune]]\nnr = "1506"\nname = "Molde"\n[kommune.ke]\n'
    'name = "Koordinerende enhet, Molde"\nher_id = 99001506\n'
    'orgnr = "991506004"\nadapter = "ke_inbox"\n'
)


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, platforms: Platforms) -> Settings:
    fhir, _ = platforms
    return with_directory(settings, tmp_path, MOLDE + trust(HMR, "fhir_rest", fhir.base_url))


def notice(seed: int, *, takes_part: bool, sender: Organisation = HMR) -> NeedNotice:
    n = make_notice(random.Random(seed), "1506")
    return n.model_copy(
        update={
            "health_trust_takes_part": takes_part,
            "sender": n.sender.model_copy(update={"organisation": sender}),
        }
    )


async def ack_all(client: httpx.AsyncClient) -> None:
    for item in (await client.get("/ke/1506/inbox")).json()["items"]:
        r = await client.post(f"/ke/1506/inbox/{item['id']}/ack")
        assert r.status_code == 200, r.text


async def parties_when(
    client: httpx.AsyncClient, message_id: str, status: str, timeout: float = 15.0
) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        view = (await client.get(f"/messages/{message_id}")).json()
        if view["parties"] and all(p["status"] == status for p in view["parties"]):
            return list(view["parties"])
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"parties not {status}: {view['parties']}")
        await asyncio.sleep(0.05)


async def test_the_trusts_own_ke_gets_the_notice_beside_the_kommune(
    client: httpx.AsyncClient, platforms: Platforms
) -> None:
    fhir, _ = platforms
    sent = notice(101, takes_part=True)
    r = await post(client, orjson.dumps(notice_to_bundle(sent)))
    assert r.status_code == 202, r.text
    message_id = r.json()["id"]
    await wait_status(client, message_id, {"DELIVERED"})
    [copy] = await parties_when(client, message_id, "ACKNOWLEDGED")
    assert copy["recipient_her_id"] == HMR.her_id
    bundle = fhir.bundle(copy["id"])
    assert bundle is not None
    at_trust = bundle_to_notice(bundle, allow_synthetic_ids=True)
    assert at_trust.need == sent.need
    assert at_trust.patient == sent.patient
    assert at_trust.health_trust_takes_part

    # the kommune's KE answers the hospital, as for any notice; the copy answers no one
    await ack_all(client)
    await wait_status(client, message_id, {"ACKNOWLEDGED"})
    receipt = (await client.get(f"/receipts/{message_id}")).json()
    assert receipt["sender"]["hcp"]["inst"]["id"] == "99001506"


async def test_the_flag_travels_in_the_xml_notice_too(
    client: httpx.AsyncClient, platforms: Platforms
) -> None:
    fhir, _ = platforms
    sent = notice(102, takes_part=True)
    body = to_bytes(notice_to_msghead(sent, msg_id=sent.sender_message_id, receiver=GATEWAY))
    r = await client.post("/plo", content=body, headers={"content-type": "application/xml"})
    assert r.status_code == 202, r.text
    message_id = r.headers["x-message-id"]
    [copy] = await parties_when(client, message_id, "ACKNOWLEDGED")
    assert fhir.bundle(copy["id"]) is not None

    # the operator finds the whole conversation from either message, and nothing else
    other = await post(client, orjson.dumps(notice_to_bundle(notice(103, takes_part=False))))
    assert other.status_code == 202, other.text
    for start in (message_id, copy["id"]):
        page = (await client.get("/ops/messages", params={"conversation": start})).json()
        assert {m["id"] for m in page["items"]} == {message_id, copy["id"]}
    unknown = (await client.get("/ops/messages", params={"conversation": "nope"})).json()
    assert unknown["items"] == []


async def test_without_the_flag_or_a_listed_trust_only_the_kommune_gets_it(
    client: httpx.AsyncClient,
) -> None:
    plain = notice(103, takes_part=False)
    # a trust not in the directory: its token and the message name its organisasjonsnummer
    other = Organisation(name="Sykehuset i Vestfold HF", her_id=99200001, orgnr="983975267")
    unlisted = notice(104, takes_part=True, sender=other)
    ids = []
    for n in (plain, unlisted):
        r = await post(client, orjson.dumps(notice_to_bundle(n)))
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    for message_id in ids:
        view = await wait_status(client, message_id, {"DELIVERED"})
        assert view["parties"] == []
    unlisted_view = (await client.get(f"/messages/{ids[1]}")).json()
    assert any("not in the directory" in (e["detail"] or "") for e in unlisted_view["events"])
