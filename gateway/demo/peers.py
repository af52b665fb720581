"""Simulated peers over real HTTP: a hospital department that sends notices, and KE systems
that poll their inbox and acknowledge. Used by ``ipgw demo`` and the benchmarks."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter

import httpx
import orjson

from gateway.demo.samples import make_notice
from mappings.fhir.notice import notice_to_bundle

log = logging.getLogger(__name__)

FHIR_JSON = {"content-type": "application/fhir+json"}


def notice_body(rng: random.Random, kommune_nr: str, *, flaw: str | None = None) -> bytes:
    """A notice as the hospital would send it; ``flaw`` makes the kind of mistake real senders do.

    ``no-consent``: held for consent; ``bad-person-id``: a wrong control digit;
    ``unknown-kommune``: a kommune without a KE in the directory.
    """
    notice = make_notice(
        rng, "0301" if flaw == "unknown-kommune" else kommune_nr, with_consent=flaw != "no-consent"
    )
    bundle = notice_to_bundle(notice)
    if flaw == "bad-person-id":
        for entry in bundle["entry"]:
            res = entry["resource"]
            if res["resourceType"] == "Patient":
                value = res["identifier"][0]["value"]
                res["identifier"][0]["value"] = value[:-1] + str((int(value[-1]) + 1) % 10)
    return orjson.dumps(bundle)


async def hospital(
    base_url: str,
    kommuner: list[str],
    rate: float,
    sent: Counter[str],
    *,
    seed: int = 1,
    flaws: bool = True,
) -> None:
    """Post notices at ``rate`` per second until cancelled."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        while True:
            roll = rng.random()
            flaw = None
            if flaws:
                flaw = (
                    "no-consent"
                    if roll < 0.04
                    else "bad-person-id"
                    if roll < 0.07
                    else "unknown-kommune"
                    if roll < 0.09
                    else None
                )
            body = notice_body(rng, rng.choice(kommuner), flaw=flaw)
            try:
                r = await client.post("/fhir/$process-message", content=body, headers=FHIR_JSON)
                sent["accepted" if r.status_code == 202 else f"refused {r.status_code}"] += 1
            except httpx.HTTPError as e:
                sent[f"error {type(e).__name__}"] += 1
            await asyncio.sleep(1 / rate)


async def coordinating_unit(
    base_url: str, kommune_nr: str, acked: Counter[str], *, interval: float = 1.0
) -> None:
    """Poll the KE inbox and acknowledge every notice, until cancelled."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        while True:
            try:
                r = await client.get(f"/ke/{kommune_nr}/inbox", params={"limit": 100})
                r.raise_for_status()
                for item in r.json()["items"]:
                    a = await client.post(f"/ke/{kommune_nr}/inbox/{item['id']}/ack")
                    if a.status_code == 200:
                        acked[kommune_nr] += 1
            except httpx.HTTPError as e:
                log.debug("KE %s: %s", kommune_nr, type(e).__name__)
            await asyncio.sleep(interval)
