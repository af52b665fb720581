"""End to end over HTTP, against ``python -m gateway serve`` with its own embedded broker."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.demo import traffic
from gateway.demo.process import GatewayProcess

pytestmark = pytest.mark.e2e

KOMMUNER = ["1506", "1508", "5001"]


def check_outcome(
    gw: GatewayProcess,
    items: list[traffic.Outgoing],
    sent: traffic.SendReport,
    drained: traffic.DrainReport,
) -> None:
    """Every notice in the right inbox exactly once, every receipt OK, one delivery each."""
    assert len(sent.accepted) == len(items)
    # a re-sent notice got the id of the first one: one gateway message per notice
    assert all(len(ids) == 1 for ids in sent.accepted.values())
    gateway_ids = {
        next(iter(ids)): i.kommune_nr for i in items for ids in [sent.accepted[i.sender_message_id]]
    }
    assert len(gateway_ids) == len(items)
    assert drained.misrouted == []
    for kommune, acked in drained.acked.items():
        assert {g for g, k in gateway_ids.items() if k == kommune} == set(acked)

    with httpx.Client(base_url=gw.base_url, timeout=10, auth=gw.auth()) as client:
        for gid in gateway_ids:
            receipt = client.get(f"/receipts/{gid}").json()
            assert receipt["status"]["V"] == "1", receipt
            events = client.get(f"/messages/{gid}").json()["events"]
            per_status = Counter(e["status"] for e in events if e["status"])
            assert per_status == Counter(
                RECEIVED=1, VALIDATED=1, ROUTED=1, DELIVERED=1, ACKNOWLEDGED=1
            ), events
        stats = client.get("/stats").json()
    assert stats["statuses"] == {"ACKNOWLEDGED": len(items)}
    assert stats["inbox_depth"] == {}


def test_200_notices_for_3_kommuner(gateway_process: GatewayProcess) -> None:
    gateway_process.env["IPGW_LOG_LEVEL"] = "INFO"
    gateway_process.start()
    items = traffic.notices(200, KOMMUNER, seed=1)

    async def run() -> tuple[traffic.SendReport, traffic.DrainReport]:
        auth = gateway_process.auth()
        sent = await traffic.send_all(gateway_process.base_url, items, concurrency=8, auth=auth)
        expected = {next(iter(sent.accepted[i.sender_message_id])): i.kommune_nr for i in items}
        return sent, await traffic.drain(
            gateway_process.base_url, expected, give_up_after=60, auth=auth
        )

    sent, drained = asyncio.run(run())
    assert sent.failed_attempts == 0
    check_outcome(gateway_process, items, sent, drained)
    gateway_process.stop()
    assert_no_person_data_in_log(gateway_process.data_dir / "gateway.log", items)


def assert_no_person_data_in_log(log: Path, items: list[traffic.Outgoing]) -> None:
    text = log.read_text()
    assert "gateway started" in text  # the log is the one we think it is
    # structured: every line one JSON object with the message and correlation ids
    lines = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message_id", "correlation_id"} <= set(x) for x in lines)
    assert any(x["logger"] == "uvicorn.access" and x["correlation_id"] for x in lines)
    for item in items:
        bundle = orjson.loads(item.body)
        patient = next(
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        )
        name = patient["name"][0]
        assert patient["identifier"][0]["value"] not in text
        assert f"{name['given'][0]} {name['family']}" not in text


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); read its state
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _broker_pids(gw: GatewayProcess) -> list[int]:
    assert gw.proc is not None
    children = Path(f"/proc/{gw.proc.pid}/task/{gw.proc.pid}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


@pytest.mark.parametrize("broker_kind", ["embedded", "external"])
def test_kill_and_restart_loses_nothing_and_delivers_nothing_twice(
    tmp_path: Path, broker_kind: str, request: pytest.FixtureRequest
) -> None:
    """SIGKILL the gateway while 200 notices flow, start it again, check the outcome.

    embedded: the gateway's own broker dies with it (memory gone: the store re-drives).
    external: the broker survives, with committed offsets and unconsumed records.
    """
    env: dict[str, str] = {"IPGW_TOPIC_PREFIX": f"restart-{broker_kind}"}
    if broker_kind == "external":
        env |= {
            "IPGW_KAFKA_BOOTSTRAP": request.getfixturevalue("broker").bootstrap,
            "IPGW_KAFKA_GROUP_MODE": "assign",
        }
    gw = GatewayProcess(tmp_path, env)
    items = traffic.notices(200, KOMMUNER, seed=2)
    try:
        gw.start()
        killed = asyncio.Event()

        async def killer(sent_so_far: traffic.SendReport) -> None:
            while len(sent_so_far.accepted) < 80:
                await asyncio.sleep(0.01)
            children = _broker_pids(gw)
            gw.kill()
            killed.set()
            await asyncio.sleep(0.5)
            # the embedded broker must not outlive its gateway
            assert not [p for p in children if _alive(p)]
            gw.start()

        async def run() -> tuple[traffic.SendReport, traffic.DrainReport]:
            report = traffic.SendReport()
            kill_task = asyncio.create_task(killer(report))
            sender = asyncio.create_task(
                traffic.send_all(gw.base_url, items, concurrency=4, report=report, auth=gw.auth())
            )
            await asyncio.gather(kill_task, sender)
            expected = {
                next(iter(report.accepted[i.sender_message_id])): i.kommune_nr for i in items
            }
            return report, await traffic.drain(
                gw.base_url, expected, give_up_after=90, auth=gw.auth()
            )

        sent, drained = asyncio.run(run())
        assert killed.is_set()
        check_outcome(gw, items, sent, drained)
    finally:
        gw.stop()
        if gw.proc is not None and gw.proc.poll() is None:
            os.kill(gw.proc.pid, signal.SIGKILL)
