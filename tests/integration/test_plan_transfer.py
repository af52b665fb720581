"""Plan transfer between kommuner over the real broker and store (issue 6): held without the
person's consent to the transfer, released when it comes, delivered to the new kommune's KE,
acknowledged, and the old kommune told; an older version is refused with a clear reason."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
import orjson
import pytest

from gateway.demo.samples import make_transfer
from gateway.domain.model import Organisation
from gateway.domain.plan import PlanTransfer
from mappings.fhir import systems as sy
from mappings.fhir.plan import bundle_to_transfer, transfer_to_bundle
from mappings.plo.msghead import Party, to_bytes
from mappings.plo.plan import transfer_to_msghead
from tests.integration.test_pipeline import post, wait_status
from tests.standards import FNR_SYSTEM as FNR

pytestmark = pytest.mark.integration

FHIR = {"content-type": "application/fhir+json"}


def transfer_consent(transfer: PlanTransfer, consent_id: str) -> dict[str, Any]:
    """The person's consent to moving the plan, as the old kommune's platform posts it."""
    return plan_consent(transfer, consent_id, "transfer")


def plan_consent(transfer: PlanTransfer, consent_id: str, purpose: str) -> dict[str, Any]:
    """The consent of the person the plan is for to ``purpose`` (a consent-purpose code)."""
    return {
        "resourceType": "Consent",
        "id": consent_id,
        "status": "active",
        "scope": {"coding": [{"system": sy.CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"identifier": {"system": FNR, "value": transfer.plan.patient.person_id}},
        "dateTime": "2026-11-20",
        "policyRule": {"coding": [{"system": sy.ACT_CODE_SYSTEM, "code": "OPTIN"}]},
        "provision": {"purpose": [{"system": sy.CONSENT_PURPOSE_SYSTEM, "code": purpose}]},
    }


async def send(client: httpx.AsyncClient, transfer: PlanTransfer) -> str:
    r = await post(client, orjson.dumps(transfer_to_bundle(transfer)))
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def test_a_transfer_waits_for_consent_then_reaches_the_new_kommune(
    client: httpx.AsyncClient,
) -> None:
    transfer = make_transfer(random.Random(61), "1505", "1508")
    message_id = await send(client, transfer)
    view = await wait_status(client, message_id, {"HELD_CONSENT"})
    assert "transfer" in view["reason"]
    assert (await client.get("/ke/1508/inbox")).json()["items"] == []

    r = await client.post(
        "/fhir/Consent",
        content=orjson.dumps(transfer_consent(transfer, "transfer-61")),
        headers=FHIR,
    )
    assert r.status_code == 201, r.text
    await wait_status(client, message_id, {"DELIVERED"})
    assert [i["id"] for i in (await client.get("/ke/1508/inbox")).json()["items"]] == [message_id]
    assert (await client.get("/ke/1505/inbox")).json()["items"] == []

    bundle = (await client.get(f"/ke/1508/inbox/{message_id}")).json()
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "CarePlan" in kinds
    assert "CareTeam" in kinds
    xml = await client.get(f"/ke/1508/inbox/{message_id}", headers={"accept": "application/xml"})
    assert b"IP_PLAN" in xml.content
    assert message_id.encode() in xml.content  # MsgId = the gateway id

    assert (await client.post(f"/ke/1508/inbox/{message_id}/ack")).status_code == 200
    await wait_status(client, message_id, {"ACKNOWLEDGED"})
    # the old kommune's completion: an OK receipt to its KE, answered by the new one
    receipt = (await client.get(f"/receipts/{message_id}")).json()
    assert receipt["status"]["V"] == "1"
    assert receipt["originalMsgId"]["id"] == transfer.sender_message_id

    # both KEs see where it stands: the new one incoming, the old one outgoing and done
    new_side = (await client.get("/ke/1508/transfers")).json()
    old_side = (await client.get("/ke/1505/transfers")).json()
    assert [(t["id"], t["status"]) for t in new_side["incoming"]] == [(message_id, "ACKNOWLEDGED")]
    assert [(t["id"], t["plan_id"], t["to_kommune"]) for t in old_side["outgoing"]] == [
        (message_id, transfer.plan.plan_id, "1508")
    ]
    assert old_side["incoming"] == []
    assert transfer.plan.patient.person_id not in str(old_side)


async def test_an_older_version_is_refused_over_a_newer_one(client: httpx.AsyncClient) -> None:
    rng = random.Random(62)
    v2 = make_transfer(rng, "1505", "1508", version=2, previous_version_id="v1-id")
    r = await client.post(
        "/fhir/Consent", content=orjson.dumps(transfer_consent(v2, "transfer-62")), headers=FHIR
    )
    assert r.status_code == 201
    first = await send(client, v2)
    await wait_status(client, first, {"DELIVERED"})

    v1 = make_transfer(
        rng, "1505", "1508", plan_id=v2.plan.plan_id, version=1, person=v2.plan.patient
    )
    second = await send(client, v1)
    view = await wait_status(client, second, {"REJECTED"})
    assert (
        view["reason"] == "X99 plan version: version 1 is older than version 2, already passed on"
    )
    receipt = (await client.get(f"/receipts/{second}")).json()
    assert receipt["status"]["V"] == "2"
    assert [i["id"] for i in (await client.get("/ke/1508/inbox")).json()["items"]] == [first]

    # the same version again (e.g. moved on once more) is no conflict
    again = make_transfer(
        rng,
        "1508",
        "1506",
        plan_id=v2.plan.plan_id,
        version=2,
        previous_version_id="v1-id",
        person=v2.plan.patient,
    )
    again = again.model_copy(
        update={"plan": again.plan.model_copy(update={"version_id": v2.plan.version_id})}
    )
    third = await send(client, again)
    await wait_status(client, third, {"DELIVERED", "HELD_CONSENT"})


async def test_a_transfer_as_kith_xml_takes_the_same_way(client: httpx.AsyncClient) -> None:
    transfer = make_transfer(random.Random(63), "1505", "1506")
    r = await client.post(
        "/fhir/Consent",
        content=orjson.dumps(transfer_consent(transfer, "transfer-63")),
        headers=FHIR,
    )
    assert r.status_code == 201
    body = to_bytes(
        transfer_to_msghead(
            transfer,
            msg_id=str(uuid.uuid4()),
            receiver=Party(Organisation(name="ip-gateway", her_id=99999999)),
        )
    )
    r = await client.post("/plo", content=body, headers={"content-type": "application/xml"})
    assert r.status_code == 202, r.text
    message_id = r.headers["x-message-id"]
    view = await wait_status(client, message_id, {"DELIVERED"})
    assert view["kind"] == "plan-transfer"
    bundle = (await client.get(f"/ke/1506/inbox/{message_id}")).json()
    assert bundle_to_transfer(bundle, allow_synthetic_ids=True).plan == transfer.plan
