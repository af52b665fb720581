"""The whole flow in one process, with the real broker and a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from gateway.config import Settings
from gateway.demo.peers import notice_body
from gateway.demo.samples import make_notice
from gateway.demo.tokens import PartyTokens
from mappings.fhir.notice import bundle_to_notice, notice_to_bundle

pytestmark = pytest.mark.integration

FHIR = {"content-type": "application/fhir+json"}


async def post(client: httpx.AsyncClient, body: bytes, **headers: str) -> httpx.Response:
    return await client.post("/fhir/$process-message", content=body, headers=FHIR | headers)


async def wait_status(
    client: httpx.AsyncClient, message_id: str, statuses: set[str], timeout: float = 15.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        view: dict[str, Any] = (await client.get(f"/messages/{message_id}")).json()
        if view["status"] in statuses:
            return view
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"message stuck in {view['status']}: {view['events']}")
        await asyncio.sleep(0.05)


async def test_notice_reaches_inbox_and_receipt_comes_back(client: httpx.AsyncClient) -> None:
    rng = random.Random(7)
    notice = make_notice(rng, "1506")
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    assert r.status_code == 202
    message_id = r.json()["id"]
    assert r.headers["location"] == f"/receipts/{message_id}"

    pending = await client.get(f"/receipts/{message_id}")
    assert pending.status_code == 404
    assert pending.headers["content-type"] == "application/problem+json"

    await wait_status(client, message_id, {"DELIVERED"})
    inbox = (await client.get("/ke/1506/inbox")).json()
    assert [i["id"] for i in inbox["items"]] == [message_id]
    assert inbox["items"][0]["notice"]["patient"]["kommune_nr"] == "1506"
    # no other kommune sees it
    assert (await client.get("/ke/1508/inbox")).json()["items"] == []

    fhir = await client.get(f"/ke/1506/inbox/{message_id}")
    assert fhir.headers["content-type"] == "application/fhir+json"
    assert bundle_to_notice(fhir.json(), allow_synthetic_ids=True) == notice

    ack = await client.post(f"/ke/1506/inbox/{message_id}/ack")
    assert ack.json() == {"id": message_id, "status": "ACKNOWLEDGED", "repeated": False}
    again = await client.post(f"/ke/1506/inbox/{message_id}/ack")
    assert again.json()["repeated"] is True
    assert (await client.get("/ke/1506/inbox")).json()["items"] == []

    receipt = (await client.get(f"/receipts/{message_id}")).json()
    assert receipt["status"] == {"V": "1", "DN": "OK"}
    assert receipt["originalMsgId"]["id"] == notice.sender_message_id
    assert receipt["sender"]["hcp"]["inst"]["id"] == "99001506"

    view = await wait_status(client, message_id, {"ACKNOWLEDGED"})
    statuses = [e["status"] for e in view["events"] if e["status"]]
    assert statuses == ["RECEIVED", "VALIDATED", "ROUTED", "DELIVERED", "ACKNOWLEDGED"]


async def test_same_message_twice_is_processed_once(client: httpx.AsyncClient) -> None:
    body = notice_body(random.Random(3), "1508")
    first, second = await asyncio.gather(post(client, body), post(client, body))
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    await wait_status(client, first.json()["id"], {"DELIVERED"})
    assert len((await client.get("/ke/1508/inbox")).json()["items"]) == 1


@pytest.mark.parametrize(
    ("flaw", "code", "status"),
    [
        ("bad-person-id", "E31", "REJECTED"),
        # no KE for the kommune: DEAD (retryable once the directory has one), sender told
        ("unknown-kommune", "E21", "DEAD"),
    ],
)
async def test_invalid_notice_is_rejected_with_receipt(
    client: httpx.AsyncClient, flaw: str, code: str, status: str
) -> None:
    r = await post(client, notice_body(random.Random(11), "1506", flaw=flaw))
    assert r.status_code == 202  # checked in the pipeline, answered by receipt
    message_id = r.json()["id"]
    view = await wait_status(client, message_id, {status})
    assert code in view["reason"]
    receipt = (await client.get(f"/receipts/{message_id}")).json()
    assert receipt["status"]["V"] == "2"
    assert [e["V"] for e in receipt["error"]] == [code]
    assert (await client.get("/ke/1506/inbox")).json()["items"] == []


async def test_notice_without_consent_is_held_not_delivered(client: httpx.AsyncClient) -> None:
    r = await post(client, notice_body(random.Random(5), "1506", flaw="no-consent"))
    view = await wait_status(client, r.json()["id"], {"HELD_CONSENT"})
    assert "consent" in view["reason"]
    await asyncio.sleep(0.3)
    assert (await client.get("/ke/1506/inbox")).json()["items"] == []
    assert (await client.get(f"/receipts/{r.json()['id']}")).json()["messageStatus"] == (
        "HELD_CONSENT"
    )


@pytest.mark.parametrize(
    ("body", "code", "issue"),
    [
        (b"{not json", "T01", "structure"),
        (b"[]", "T02", "structure"),
        (b'{"resourceType": "Patient"}', "T02", "structure"),
        (b'{"resourceType": "Bundle", "type": "message", "entry": []}', "T02", "structure"),
    ],
)
async def test_malformed_input_is_refused_and_kept(
    client: httpx.AsyncClient, body: bytes, code: str, issue: str
) -> None:
    r = await post(client, body)
    assert r.status_code == 400
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == issue
    assert outcome["issue"][0]["diagnostics"].startswith(code)
    view = (await client.get(f"/messages/{outcome['id']}")).json()
    assert view["status"] == "REJECTED"
    receipt = (await client.get(f"/receipts/{outcome['id']}")).json()
    assert receipt["error"][0]["V"] == code


async def test_oversized_and_wrong_type_are_refused_and_kept(client: httpx.AsyncClient) -> None:
    big = b'{"resourceType": "Bundle", "pad": "' + b"x" * 300_000 + b'"}'
    r = await post(client, big)
    assert r.status_code == 413
    assert (await client.get(f"/messages/{r.json()['id']}")).json()["status"] == "REJECTED"

    r = await client.post(
        "/fhir/$process-message", content=b"<Bundle/>", headers={"content-type": "application/xml"}
    )
    assert r.status_code == 415
    receipt = (await client.get(f"/receipts/{r.json()['id']}")).json()
    assert receipt["error"][0]["V"] == "T10"


async def test_inbox_is_only_for_its_kommune(client: httpx.AsyncClient) -> None:
    r = await post(client, notice_body(random.Random(9), "1506"))
    message_id = r.json()["id"]
    await wait_status(client, message_id, {"DELIVERED"})
    other = await client.post(f"/ke/1508/inbox/{message_id}/ack")
    assert other.status_code == 404
    assert other.json()["type"].endswith("/not-in-inbox")
    # no KE's token opens a kommune the directory does not list for its organisation
    unknown = await client.get("/ke/0301/inbox")
    assert unknown.status_code == 403
    assert unknown.json()["type"].endswith("/not-your-inbox")
    # a KE's own token, on a kommunenummer that is not one
    assert isinstance(client.auth, PartyTokens)
    ke_1506 = client.auth.token_for(client.build_request("GET", "/ke/1506/inbox"))
    bad = await client.get("/ke/15x6/inbox", headers={"Authorization": f"Bearer {ke_1506}"})
    assert bad.status_code == 422


async def test_ke_rejection_reaches_the_sender(client: httpx.AsyncClient) -> None:
    r = await post(client, notice_body(random.Random(13), "5001"))
    message_id = r.json()["id"]
    await wait_status(client, message_id, {"DELIVERED"})
    bad = await client.post(
        f"/ke/5001/inbox/{message_id}/ack", json={"status": "REJECTED", "errors": []}
    )
    assert bad.status_code == 422
    rej = await client.post(
        f"/ke/5001/inbox/{message_id}/ack",
        json={"status": "REJECTED", "errors": [{"code": "E35", "detail": "ukjent i fagsystem"}]},
    )
    assert rej.json()["status"] == "REJECTED"
    receipt = (await client.get(f"/receipts/{message_id}")).json()
    assert receipt["status"]["V"] == "2"
    assert receipt["error"][0]["V"] == "E35"
    assert receipt["sender"]["hcp"]["inst"]["id"] == "99005001"
    assert receipt["error"][0]["OT"] == "ukjent i fagsystem"
    # what every operator sees has the code and the code list's words, not the KE's own
    view = (await client.get(f"/messages/{message_id}")).json()
    assert view["reason"].startswith("E35 ")
    assert "ukjent i fagsystem" not in orjson.dumps(view).decode()


async def test_the_receipts_topic_carries_codes_not_a_recipients_words(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    notice = make_notice(random.Random(14), "5001")
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    message_id = r.json()["id"]
    await wait_status(client, message_id, {"DELIVERED"})
    words = f"{notice.patient.name.given} er ikke kjent her"  # a KE may name the person
    await client.post(
        f"/ke/5001/inbox/{message_id}/ack",
        json={"status": "REJECTED", "errors": [{"code": "E35", "detail": words}]},
    )
    await wait_status(client, message_id, {"REJECTED"})
    assert (await client.get(f"/receipts/{message_id}")).json()["error"][0]["OT"] == words
    consumer = AIOKafkaConsumer(
        f"{settings.topic_prefix}.receipts",
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        records = []
        for _ in range(20):  # the outbox relay publishes shortly after the commit
            batch = await consumer.getmany(timeout_ms=500)
            records += [rec for rs in batch.values() for rec in rs]
            if any(dict(rec.headers).get("message-id") == message_id.encode() for rec in records):
                break
    finally:
        await consumer.stop()
    [record] = [rec for rec in records if dict(rec.headers)["message-id"] == message_id.encode()]
    on_topic = orjson.loads(record.value)
    assert on_topic["error"] == [
        {"S": "2.16.578.1.12.4.1.1.8221", "V": "E35", "DN": on_topic["error"][0]["DN"]}
    ]
    assert notice.patient.name.given.encode() not in record.value


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": "ok", "broker": "ok"}
    spec = (await client.get("/openapi.json")).json()
    assert {"/fhir/$process-message", "/ke/{kommunenr}/inbox", "/receipts/{message_id}"} <= set(
        spec["paths"]
    )


async def test_hostile_nesting_is_refused_at_the_door(client: httpx.AsyncClient) -> None:
    """Deep nesting would exhaust the FHIR models' recursion; it is answered, not crashed on."""
    bundle = notice_to_bundle(make_notice(random.Random(21), "1506"))
    nested: dict[str, Any] = {"url": "x", "valueString": "y"}
    for _ in range(200):
        nested = {"url": "x", "extension": [nested]}
    bundle["entry"][0]["resource"]["extension"] = [nested]
    r = await post(client, json.dumps(bundle).encode())  # orjson refuses to write this deep
    assert r.status_code == 400
    assert "nested deeper" in r.json()["issue"][0]["diagnostics"]
    assert (await client.get(f"/messages/{r.json()['id']}")).json()["status"] == "REJECTED"


async def test_old_kommunenummer_is_mapped_and_a_split_one_waits_for_an_operator(
    client: httpx.AsyncClient,
) -> None:
    rng = random.Random(21)
    old = make_notice(rng, "1502")  # Molde before 2020
    r = await post(client, orjson.dumps(notice_to_bundle(old)))
    view = await wait_status(client, r.json()["id"], {"DELIVERED"})
    assert view["recipient_kommune"] == "1506"
    assert any("1502" in (e["detail"] or "") for e in view["events"])

    split = make_notice(rng, "1507")  # Ålesund 2020-2023, split in 2024
    r = await post(client, orjson.dumps(notice_to_bundle(split)))
    view = await wait_status(client, r.json()["id"], {"HELD_ROUTING"})
    assert "1508" in view["reason"]
    assert "1580" in view["reason"]
    for kommune in ("1508", "1580"):
        assert (await client.get(f"/ke/{kommune}/inbox")).json()["items"] == []
