"""Chaos runs (issue 5): the gateway killed, the broker killed, a platform failing, down or
never answering. Each prints its figures and asserts 0 lost and 0 duplicates delivered."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest

from gateway.broker import EmbeddedBroker, free_port
from gateway.demo import traffic
from tests.chaos.harness import (
    FHIR_ADAPTERS,
    ChaosRun,
    latencies,
    percentile,
)

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.timeout(600)]


def test_1_sigkill_the_gateway_during_1000_notices(tmp_path: Path) -> None:
    run = ChaosRun(tmp_path)
    try:
        run.gw.start()
        items = run.notices(1000, seed=11)

        async def go() -> dict[str, int]:
            kes = run.start_inbox_kes()
            report = traffic.SendReport()

            async def killer() -> None:
                while len(report.accepted) < 350:
                    await asyncio.sleep(0.01)
                run.gw.kill()
                await asyncio.sleep(0.3)
                await asyncio.to_thread(run.gw.start)

            await asyncio.gather(killer(), run.send(items, report=report))
            statuses = await run.settle(len(items))
            await run.stop_inbox_kes(kes)
            return statuses

        statuses = asyncio.run(go())
        figures = run.figures(statuses, len(items))
        figures.show("1. SIGKILL the gateway mid-run, restart")
        assert statuses == {"ACKNOWLEDGED": len(items)}
        assert len(run.expected) == len(items)
        assert figures.lost == 0
        assert figures.duplicates == 0
    finally:
        run.close()


def test_2_kill_and_restart_the_broker(tmp_path: Path) -> None:
    broker = EmbeddedBroker(port=free_port(), log_file=tmp_path / "broker.log")
    asyncio.run(broker.start())
    run = ChaosRun(
        tmp_path,
        env={"IPGW_KAFKA_BOOTSTRAP": broker.bootstrap, "IPGW_KAFKA_GROUP_MODE": "assign"},
    )
    try:
        run.gw.start()
        items = run.notices(600, seed=12)

        async def go() -> dict[str, int]:
            kes = run.start_inbox_kes()
            report = traffic.SendReport()

            async def killer() -> None:
                while len(report.accepted) < 200:
                    await asyncio.sleep(0.01)
                assert broker._proc is not None
                broker._proc.kill()  # SIGKILL: the memory-only broker keeps nothing
                broker._proc.wait()
                await asyncio.sleep(1.0)
                await broker.start()

            await asyncio.gather(killer(), run.send(items, report=report))
            statuses = await run.settle(len(items), timeout=240)
            await run.stop_inbox_kes(kes)
            return statuses

        statuses = asyncio.run(go())
        figures = run.figures(statuses, len(items))
        figures.show("2. kill and restart the broker mid-run")
        # the gateway saw the empty broker and re-drove from its store (not luck)
        log = (run.gw.data_dir / "gateway.log").read_text()
        assert "the broker lost" in log
        assert statuses == {"ACKNOWLEDGED": len(items)}
        assert figures.lost == 0
        assert figures.duplicates == 0
    finally:
        run.close()
        broker.stop()


def test_3_a_platform_answers_503_for_a_while_then_recovers(tmp_path: Path) -> None:
    # the platform is away for about 5 s (while the hospital sends, and 2 s more): a policy
    # whose retry tiers (1+2+4+8 s) outlast that, as the real one (1 min, 10 min, 1 h) does
    run = ChaosRun(tmp_path, env={"IPGW_RETRY_TIERS_SECONDS": "[1, 2, 4, 8]"})
    try:
        run.gw.start()
        items = run.notices(300, seed=13)
        run.fhir.set_mode("unavailable")

        async def go() -> dict[str, int]:
            kes = run.start_inbox_kes()
            await run.send(items)
            await asyncio.sleep(2.0)
            run.fhir.set_mode("ok")
            statuses = await run.settle(len(items))
            await run.stop_inbox_kes(kes)
            return statuses

        statuses = asyncio.run(go())
        figures = run.figures(statuses, len(items))
        figures.show("3. one platform answers 503 for a while (about 5 s), then recovers")
        fhir = run.fhir.stats()
        to_fhir = sum(1 for k in run.expected.values() if run.kommuner[k] in FHIR_ADAPTERS)
        assert statuses == {"ACKNOWLEDGED": len(items)}
        assert fhir["distinct"] == to_fhir
        assert fhir["posts"] > to_fhir  # it was retried, not lucky
        assert figures.lost == 0
        assert figures.duplicates == 0
    finally:
        run.close()


def test_4_a_platform_down_all_run_does_not_slow_the_others(tmp_path: Path) -> None:
    run = ChaosRun(tmp_path)
    try:
        run.gw.start()
        healthy_items = run.notices(250, seed=14)
        down_items = run.notices(250, seed=15)

        def others(ids: list[str]) -> list[str]:
            return [g for g in ids if run.kommuner[run.expected[g]] not in FHIR_ADAPTERS]

        async def go() -> tuple[list[float], list[float], dict[str, int], dict[str, int]]:
            kes = run.start_inbox_kes()
            # a steady hospital (two at a time), so latency shows delivery, not a queue
            await run.send(healthy_items, concurrency=2)
            healthy_ids = list(run.expected)
            await run.settle(len(healthy_items))
            healthy = latencies(await run.events(others(healthy_ids)))

            run.fhir.stop()  # down for the whole second run: connection refused
            await run.send(down_items, concurrency=2)
            down_ids = [g for g in run.expected if g not in set(healthy_ids)]
            dead_expected = len(down_ids) - len(others(down_ids))
            during = await run.settle(len(healthy_items) + len(down_items))
            degraded = latencies(await run.events(others(down_ids)))

            # the platform comes back; the operator retries what went DEAD
            run.fhir.start()
            async with httpx.AsyncClient(
                base_url=run.gw.base_url, timeout=30, auth=run.auth
            ) as client:
                for gid in down_ids:
                    if run.kommuner[run.expected[gid]] in FHIR_ADAPTERS:
                        r = await client.post(f"/messages/{gid}/retry")
                        assert r.status_code == 200, r.text
            assert during.get("DEAD") == dead_expected
            after = await run.settle(
                len(healthy_items) + len(down_items), done=frozenset({"ACKNOWLEDGED"})
            )
            await run.stop_inbox_kes(kes)
            return healthy, degraded, during, after

        healthy, degraded, during, after = asyncio.run(go())
        h50, h95 = percentile(healthy, 50), percentile(healthy, 95)
        d50, d95 = percentile(degraded, 50), percentile(degraded, 95)
        figures = run.figures(after, len(healthy_items) + len(down_items))
        figures.extra |= {
            "healthy p50/p95 ms": f"{h50 * 1000:.0f}/{h95 * 1000:.0f}",
            "one down p50/p95 ms": f"{d50 * 1000:.0f}/{d95 * 1000:.0f}",
            "DEAD while down": during.get("DEAD", 0),
        }
        figures.show("4. one platform down all run; operator retry after it is back")
        # within 2x of the all-healthy run (with some slack for a shared 2-core machine)
        assert d50 <= 2 * h50 + 0.05
        assert d95 <= 2 * h95 + 0.1
        assert after == {"ACKNOWLEDGED": len(healthy_items) + len(down_items)}
        assert figures.lost == 0
        assert figures.duplicates == 0
    finally:
        run.close()


def test_5_a_platform_that_never_acknowledges(tmp_path: Path) -> None:
    run = ChaosRun(tmp_path, kommuner={"1508": "nhn_msh"})
    try:
        run.gw.start()
        run.nhn.set_mode("never_ack")
        items = run.notices(40, seed=16)

        async def go() -> tuple[dict[str, int], dict[str, list[dict[str, object]]]]:
            await run.send(items)
            statuses = await run.settle(len(items), timeout=120)
            return statuses, await run.events(list(run.expected))

        statuses, events = asyncio.run(go())
        nhn = asdict(run.nhn.stats())
        figures = run.figures(statuses, len(items))
        figures.show("5. a platform accepts but never acknowledges")
        resends = 2  # FAST_POLICY's IPGW_ACK_RESENDS
        assert statuses == {"DEAD": len(items)}
        assert nhn["distinct"] == len(items)  # every one arrived, under one id each
        assert nhn["posts"] == len(items) * (1 + resends)  # resent with the same MsgId
        for evs in events.values():
            details = [str(e["detail"]) for e in evs]
            assert sum("resent with the same message id" in d for d in details) == resends
            assert "never acknowledged" in str(evs[-2]["detail"]) + str(evs[-1]["detail"])
        assert figures.lost == 0
        assert figures.duplicates == 0
    finally:
        run.close()
