"""Routing against a directory that changes while the gateway runs: unknown and inactive KEs
make DEAD messages with E21 that an operator retries once the directory is fixed."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.config import DEFAULT_DIRECTORY, Settings
from gateway.demo.samples import make_notice
from mappings.fhir.notice import notice_to_bundle
from tests.integration.test_pipeline import post, wait_status

pytestmark = pytest.mark.integration

OPERATOR = {"X-Operator": "routing-test"}

OSLO = """
[[kommune]]
nr = "0301"
name = "Oslo"
[kommune.ke]
name = "Koordinerende enhet, Oslo kommune"
her_id = 99000301        # FICTITIOUS
orgnr = "990301018"
adapter = "ke_inbox"
"""


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test's own copy of the directory, so the test may edit it."""
    copy = tmp_path / "directory.toml"
    shutil.copy(DEFAULT_DIRECTORY, copy)
    return settings.model_copy(update={"directory_file": copy})


async def test_unknown_kommune_goes_dead_and_is_retried_once_the_directory_knows_it(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    notice = make_notice(random.Random(1), "0301")
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    message_id = r.json()["id"]
    view = await wait_status(client, message_id, {"DEAD"})
    assert view["reason"].startswith("E21")
    receipt = (await client.get(f"/receipts/{message_id}")).json()
    assert [e["V"] for e in receipt["error"]] == ["E21"]

    # retrying before the directory is fixed changes nothing but the timeline
    still = await client.post(f"/messages/{message_id}/retry", headers=OPERATOR)
    assert still.json()["status"] == "DEAD"

    settings.directory_file.write_text(
        settings.directory_file.read_text("utf-8") + OSLO, encoding="utf-8"
    )
    reload = (await client.post("/ops/directory/reload")).json()
    assert reload["changed"] is True
    assert reload["error"] is None
    retried = await client.post(f"/messages/{message_id}/retry", headers=OPERATOR)
    assert retried.json()["status"] == "ROUTED"
    await wait_status(client, message_id, {"DELIVERED"})
    await client.post(f"/ke/0301/inbox/{message_id}/ack")
    await wait_status(client, message_id, {"ACKNOWLEDGED"})
    # the latest answer stands: the receipt is now OK
    assert (await client.get(f"/receipts/{message_id}")).json()["status"]["V"] == "1"
    view = (await client.get(f"/messages/{message_id}")).json()
    assert any(e["actor"].startswith("operator") for e in view["events"])


async def test_inactive_ke_makes_messages_dead(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    text = settings.directory_file.read_text("utf-8")
    marker = 'nr = "1506"'
    head, _, tail = text.partition(marker)
    ke_at = tail.index("[kommune.ke]") + len("[kommune.ke]")
    edited = head + marker + tail[:ke_at] + "\nactive = false" + tail[ke_at:]
    settings.directory_file.write_text(edited, encoding="utf-8")
    assert (await client.post("/ops/directory/reload")).json()["changed"] is True
    r = await post(client, orjson.dumps(notice_to_bundle(make_notice(random.Random(2), "1506"))))
    view = await wait_status(client, r.json()["id"], {"DEAD"})
    assert "inactive" in view["reason"]


async def test_a_broken_directory_file_is_not_taken(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    settings.directory_file.write_text(
        settings.directory_file.read_text("utf-8") + OSLO.replace("99000301", "99001506"),
        encoding="utf-8",
    )  # the HER-id of Molde's KE a second time: a message could reach the wrong KE
    result = (await client.post("/ops/directory/reload")).json()
    assert result["changed"] is False
    assert "HER-id" in result["error"]
    r = await post(client, orjson.dumps(notice_to_bundle(make_notice(random.Random(3), "1506"))))
    await wait_status(client, r.json()["id"], {"DELIVERED"})


async def test_only_dead_messages_can_be_retried(client: httpx.AsyncClient) -> None:
    r = await post(client, orjson.dumps(notice_to_bundle(make_notice(random.Random(4), "1506"))))
    message_id = r.json()["id"]
    await wait_status(client, message_id, {"DELIVERED"})
    retry = f"/messages/{message_id}/retry"
    assert (await client.post(retry, headers=OPERATOR)).status_code == 409
    assert (await client.post("/messages/nope/retry", headers=OPERATOR)).status_code == 404
