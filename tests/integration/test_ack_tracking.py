"""Acknowledgement tracking over the real broker and store: a KE that never acknowledges gets
its notice resent with the same id, then the message goes DEAD (with a dead-letter record); an
acknowledgement that comes later still counts."""

from __future__ import annotations

import asyncio
import random

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from gateway.config import Settings
from gateway.demo.samples import make_notice
from gateway.runtime import Runtime
from gateway.transport import Command
from mappings.fhir.notice import notice_to_bundle
from tests.integration.test_pipeline import post, wait_status

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "ack_timeout_seconds": 0.6,
            "ack_resends": 2,
            "ack_check_interval_seconds": 0.1,
        }
    )


async def dead_letters(bootstrap: str, topic: str) -> list[Command]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=2000)
        return [Command.decode(r.value) for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()


async def test_unacknowledged_notice_is_resent_then_dead_and_a_late_ack_still_counts(
    gateway: tuple[httpx.AsyncClient, Runtime], settings: Settings
) -> None:
    client, rt = gateway
    notice = make_notice(random.Random(5), "1506")
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    message_id = r.json()["id"]

    view = await wait_status(client, message_id, {"DEAD"}, timeout=20)
    details = [e["detail"] for e in view["events"]]
    resent = [d for d in details if "resent with the same message id" in d]
    assert len(resent) == settings.ack_resends
    assert view["reason"].startswith("X99 delivered but never acknowledged")
    delivered = [e for e in view["events"] if e["status"] == "DELIVERED"]
    assert len(delivered) == 1 + settings.ack_resends  # the first delivery and each resend
    tries = view["deliveries"]
    assert [(d["attempt"], d["outcome"], d["adapter"]) for d in tries] == [
        (n, "delivered", "ke_inbox") for n in range(1 + settings.ack_resends)
    ]
    assert view["resends"] == settings.ack_resends

    # the KE's inbox shows it once, under the same id, however often it was resent
    inbox = (await client.get("/ke/1506/inbox")).json()["items"]
    assert [i["id"] for i in inbox].count(message_id) == 1
    receipt = (await client.get(f"/receipts/{message_id}")).json()
    assert receipt["status"]["V"] == "2"

    assert settings.kafka_bootstrap is not None
    letters = await dead_letters(settings.kafka_bootstrap, rt.topics.dlq)
    assert [c.message_id for c in letters] == [message_id]

    # the KE acknowledges at last: the answer stands, the sender's receipt becomes OK
    ack = await client.post(f"/ke/1506/inbox/{message_id}/ack")
    assert ack.status_code == 200
    view = await wait_status(client, message_id, {"ACKNOWLEDGED"})
    receipt = (await client.get(f"/receipts/{message_id}")).json()
    assert receipt["status"]["V"] == "1"


async def test_an_acknowledged_notice_is_not_resent(client: httpx.AsyncClient) -> None:
    notice = make_notice(random.Random(6), "1508")
    message_id = (await post(client, orjson.dumps(notice_to_bundle(notice)))).json()["id"]
    await wait_status(client, message_id, {"DELIVERED"})
    assert (await client.post(f"/ke/1508/inbox/{message_id}/ack")).status_code == 200
    view = await wait_status(client, message_id, {"ACKNOWLEDGED"})
    await asyncio.sleep(1.0)  # longer than the ack timeout
    after = (await client.get(f"/messages/{message_id}")).json()
    assert after["status"] == "ACKNOWLEDGED"
    assert len(after["events"]) == len(view["events"])
