"""A hospital's MsgHead that reaches the gateway through the NHN message service (addressed to
the gateway's HER-id) is taken in like a POST /plo and goes on its way; one that cannot be
read is kept as REJECTED; neither is marked read before it is kept."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import Settings
from gateway.demo.peers import notice_xml_body
from gateway.demo.platforms.nhn_msh_server import NhnMessageService

pytestmark = pytest.mark.integration

GATEWAY_HER = 99999999
HOSPITAL_HER = 99123456


@pytest.fixture
def service() -> Iterator[NhnMessageService]:
    s = NhnMessageService()
    s.start()
    yield s
    s.stop()


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, service: NhnMessageService) -> Settings:
    directory = tmp_path / "directory.toml"
    directory.write_text(
        f"""
[[kommune]]
nr = "1506"
name = "Molde"
[kommune.ke]
name = "KE Molde"
her_id = 99001506
adapter = "ke_inbox"

[[kommune]]
nr = "1508"
name = "Ålesund"
[kommune.ke]
name = "KE Ålesund"
her_id = 99001508
adapter = "nhn_msh"
[kommune.ke.settings]
base_url = "{service.base_url}"
""",
        "utf-8",
    )
    return settings.model_copy(
        update={
            "directory_file": directory,
            "gateway_her_id": GATEWAY_HER,
            "ack_check_interval_seconds": 0.1,
        }
    )


async def listed(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    for _ in range(100):
        items: list[dict[str, Any]] = (await client.get("/ops/messages", params=params)).json()[
            "items"
        ]
        if items:
            return items
        await asyncio.sleep(0.1)
    raise AssertionError(f"nothing listed for {params}")


async def test_a_notice_through_nhn_is_taken_in_and_delivered(
    client: httpx.AsyncClient, service: NhnMessageService
) -> None:
    body = notice_xml_body(random.Random(3), "1506")
    nhn_id = service.put_message(GATEWAY_HER, body, sender_her_id=HOSPITAL_HER)
    items = await listed(client, status=["DELIVERED", "ACKNOWLEDGED"], kommune="1506")
    assert len(items) == 1
    inbox = (await client.get("/ke/1506/inbox")).json()["items"]
    assert [i["id"] for i in inbox] == [items[0]["id"]]
    for _ in range(50):
        if nhn_id not in service.unread(GATEWAY_HER):
            break
        await asyncio.sleep(0.1)
    assert nhn_id not in service.unread(GATEWAY_HER)  # marked read once kept
    events = (await client.get(f"/messages/{items[0]['id']}")).json()["events"]
    assert events[0]["actor"] == "adapter:nhn_msh"


async def test_an_unreadable_document_through_nhn_is_kept_rejected(
    client: httpx.AsyncClient, service: NhnMessageService
) -> None:
    service.put_message(GATEWAY_HER, b"\x00 not xml at all", sender_her_id=HOSPITAL_HER)
    items = await listed(client, status="REJECTED")
    assert len(items) == 1
    assert items[0]["reason"].startswith("T01")
