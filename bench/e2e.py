"""End-to-end benchmark: N notices from C concurrent hospital clients, through a gateway
process with its embedded broker and SQLite, into three KE inboxes that acknowledge.

Prints ingest latency (p50/p95/p99 of the HTTP POST) and throughput: notices/s accepted,
delivered into inboxes, and acknowledged. A measurement, not a test.

    .venv/bin/python bench/e2e.py -n 2000 -c 16
    .venv/bin/python bench/e2e.py --url http://127.0.0.1:8080 --data-dir var   # one you started
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from gateway.auth.dev_issuer import DevIssuer
from gateway.config import DEFAULT_DIRECTORY
from gateway.demo import traffic
from gateway.demo.process import GatewayProcess
from gateway.demo.tokens import PartyTokens
from gateway.directory import load_directory

KOMMUNER = ["1506", "1508", "5001"]


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] * 1000


async def watch_delivered(base_url: str, n: int, started: float, auth: PartyTokens) -> float:
    """Seconds from start until n messages have left the pipeline for an inbox."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10, auth=auth) as client:
        while True:
            statuses = (await client.get("/stats")).json()["statuses"]
            done = sum(statuses.get(s, 0) for s in ("DELIVERED", "ACKNOWLEDGED", "REJECTED"))
            if done >= n:
                return time.perf_counter() - started
            await asyncio.sleep(0.25)  # /stats counts whole tables: poll gently


async def run(base_url: str, n: int, concurrency: int, auth: PartyTokens) -> None:
    items = traffic.notices(n, KOMMUNER, seed=7)
    report = traffic.SendReport()
    started = time.perf_counter()
    delivered = asyncio.create_task(watch_delivered(base_url, n, started, auth))
    await traffic.send_all(base_url, items, concurrency=concurrency, report=report, auth=auth)
    sent_s = time.perf_counter() - started
    expected = {next(iter(report.accepted[i.sender_message_id])): i.kommune_nr for i in items}
    await traffic.drain(base_url, expected, give_up_after=600, interval=0.1, auth=auth)
    acked_s = time.perf_counter() - started
    delivered_s = await delivered

    lat = report.latencies
    print(f"notices: {n}, concurrent clients: {concurrency}, kommuner: {len(KOMMUNER)}")
    print(
        f"ingest latency ms: p50 {pct(lat, 50):.1f}  p95 {pct(lat, 95):.1f}  "
        f"p99 {pct(lat, 99):.1f}  max {max(lat) * 1000:.1f}"
    )
    print(f"accepted:      {n / sent_s:8.0f} notices/s  ({sent_s:.2f} s)")
    print(f"in KE inboxes: {n / delivered_s:8.0f} notices/s  ({delivered_s:.2f} s)")
    print(f"acknowledged:  {n / acked_s:8.0f} notices/s  ({acked_s:.2f} s, receipts issued)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="notices to send")
    parser.add_argument("-c", type=int, default=16, help="concurrent hospital clients")
    parser.add_argument("--url", help="an already running gateway (synthetic ids accepted)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="with --url: that gateway's IPGW_DATA_DIR (its development issuer mints the tokens)",
    )
    args = parser.parse_args()
    if args.url:
        if args.data_dir is None:
            parser.error("--url needs --data-dir: the tokens come from that gateway's issuer")
        issuer = DevIssuer.load_or_create(args.data_dir)
        directory = load_directory(DEFAULT_DIRECTORY)
        asyncio.run(run(args.url, args.n, args.c, PartyTokens(issuer, lambda: directory)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        gw = GatewayProcess(Path(tmp), {"IPGW_TOPIC_PREFIX": "bench"})
        gw.start()
        try:
            asyncio.run(run(gw.base_url, args.n, args.c, gw.auth()))
        finally:
            gw.stop()


if __name__ == "__main__":
    main()
