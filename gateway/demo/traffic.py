"""Load drivers for end-to-end tests and benchmarks: a hospital that keeps re-sending a notice
until the gateway has it (as real senders do after a timeout), and KE systems that drain their
inboxes. Both survive a gateway restart in the middle."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
import orjson

from gateway.demo.samples import make_notice
from mappings.fhir.notice import notice_to_bundle

FHIR_JSON = {"content-type": "application/fhir+json"}


@dataclass(frozen=True)
class Outgoing:
    kommune_nr: str
    sender_message_id: str
    body: bytes


def notices(n: int, kommuner: list[str], seed: int = 42) -> list[Outgoing]:
    rng = random.Random(seed)  # noqa: S311 - test data
    out = []
    for i in range(n):
        notice = make_notice(rng, kommuner[i % len(kommuner)])
        out.append(
            Outgoing(
                notice.patient.kommune_nr or "",
                notice.sender_message_id,
                orjson.dumps(notice_to_bundle(notice)),
            )
        )
    return out


@dataclass
class SendReport:
    #: sender's message id -> every gateway id answered for it (one, if dedupe works)
    accepted: dict[str, set[str]] = field(default_factory=dict)
    #: seconds per successful POST
    latencies: list[float] = field(default_factory=list)
    failed_attempts: int = 0


async def send_all(
    base_url: str,
    items: Iterable[Outgoing],
    *,
    concurrency: int,
    give_up_after: float = 120.0,
    report: SendReport | None = None,
    auth: httpx.Auth | None = None,
) -> SendReport:
    """Send every item until accepted; ``report`` fills as answers come (watchable meanwhile)."""
    report = report or SendReport()
    queue: asyncio.Queue[Outgoing] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    deadline = time.monotonic() + give_up_after

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            item = queue.get_nowait()
            while True:
                start = time.perf_counter()
                try:
                    r = await client.post(
                        "/fhir/$process-message", content=item.body, headers=FHIR_JSON
                    )
                    if r.status_code == 202:
                        report.latencies.append(time.perf_counter() - start)
                        report.accepted.setdefault(item.sender_message_id, set()).add(
                            r.json()["id"]
                        )
                        break
                except httpx.HTTPError:
                    pass
                report.failed_attempts += 1
                if time.monotonic() > deadline:
                    raise TimeoutError("gateway did not take the notice")
                await asyncio.sleep(0.2)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=10, limits=limits, auth=auth) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return report


@dataclass
class DrainReport:
    #: kommune -> gateway ids this KE acknowledged (each ack answered 200)
    acked: dict[str, list[str]] = field(default_factory=dict)
    #: gateway ids seen in the wrong kommune's inbox
    misrouted: list[str] = field(default_factory=list)


async def drain(
    base_url: str,
    expected: dict[str, str],
    *,
    give_up_after: float = 120.0,
    interval: float = 0.1,
    auth: httpx.Auth | None = None,
) -> DrainReport:
    """Poll each kommune's inbox and acknowledge until every expected id is acknowledged.

    ``expected``: gateway id -> the kommune it must reach.
    """
    report = DrainReport()
    outstanding = set(expected)
    kommuner = sorted(set(expected.values()))
    deadline = time.monotonic() + give_up_after

    async def ke(client: httpx.AsyncClient, kommune_nr: str) -> None:
        acked = report.acked.setdefault(kommune_nr, [])
        while outstanding and time.monotonic() < deadline:
            try:
                r = await client.get(f"/ke/{kommune_nr}/inbox", params={"limit": 200})
                items = r.json()["items"] if r.status_code == 200 else []
                for item in items:
                    if expected.get(item["id"]) != kommune_nr:
                        report.misrouted.append(item["id"])
                    a = await client.post(f"/ke/{kommune_nr}/inbox/{item['id']}/ack")
                    if a.status_code == 200:
                        acked.append(item["id"])
                        outstanding.discard(item["id"])
            except httpx.HTTPError:
                pass
            await asyncio.sleep(interval)

    async with httpx.AsyncClient(base_url=base_url, timeout=10, auth=auth) as client:
        await asyncio.gather(*(ke(client, k) for k in kommuner))
    if outstanding:
        raise TimeoutError(f"{len(outstanding)} notices never reached an inbox")
    return report
