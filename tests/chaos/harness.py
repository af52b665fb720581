"""What the chaos runs share: five kommuner on mixed adapters, each reached over real HTTP (the
gateway's own pull inbox, a simulated FHIR platform, a simulated NHN message service), the
gateway as a child process with a fast delivery policy, a hospital sending notices, and the
figures every run prints: sent, delivered, duplicates, lost.

"Delivered" counts logical messages (the hospital's own message id) that reached their KE;
"duplicates" counts logical messages a platform stored more than once under different ids (a
resend with the same id is deduped by the receiver, as real receivers do, and is not one).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.demo import traffic
from gateway.demo.platforms.fhir_server import FhirPlatform
from gateway.demo.platforms.nhn_msh_server import NhnMessageService
from gateway.demo.process import GatewayProcess
from gateway.demo.samples import ke_orgnr

GATEWAY_HER_ID = 99999999

#: kommune -> adapter: every transport and two vendor profiles
KOMMUNER: dict[str, str] = {
    "1505": "ke_inbox",
    "1506": "fhir_rest",
    "1508": "nhn_msh",
    "5001": "sampro",
    "1577": "samspill",
}
FHIR_ADAPTERS = frozenset({"fhir_rest", "samspill"})
NHN_ADAPTERS = frozenset({"nhn_msh", "sampro", "acos"})
TERMINAL = frozenset({"ACKNOWLEDGED", "REJECTED", "DEAD"})

#: fast enough for a test: tiers of 0.5/1/2 s, acknowledgements due after 3 s
FAST_POLICY = {
    "IPGW_RETRY_TIERS_SECONDS": "[0.5, 1, 2]",
    "IPGW_DELIVERY_QUICK_TRIES": "2",
    "IPGW_DELIVERY_QUICK_MAX_WAIT": "0.2",
    "IPGW_ACK_TIMEOUT_SECONDS": "3",
    "IPGW_ACK_RESENDS": "2",
    "IPGW_ACK_CHECK_INTERVAL_SECONDS": "0.3",
    "IPGW_RECOVERY_INTERVAL_SECONDS": "2",
    "IPGW_STALE_AFTER_SECONDS": "8",
    "IPGW_CIRCUIT_FAILURES": "3",
    "IPGW_CIRCUIT_OPEN_SECONDS": "1",
    "IPGW_GATEWAY_HER_ID": str(GATEWAY_HER_ID),
}


def directory_toml(fhir_base: str, nhn_base: str, kommuner: dict[str, str]) -> str:
    out = []
    for nr, adapter in kommuner.items():
        out.append(
            f'[[kommune]]\nnr = "{nr}"\nname = "Kommune {nr}"\n[kommune.ke]\n'
            f'name = "Koordinerende enhet {nr}"\nher_id = {99_000_000 + int(nr)}\n'
            f'orgnr = "{ke_orgnr(nr)}"\nadapter = "{adapter}"\n'
        )
        if adapter in FHIR_ADAPTERS:
            out.append(f'[kommune.ke.settings]\nbase_url = "{fhir_base}"\ntimeout_seconds = 2\n')
        elif adapter in NHN_ADAPTERS:
            # plain MsgHeads: the chaos runs measure delivery, not CMS (tested on its own)
            out.append(
                f'[kommune.ke.settings]\nbase_url = "{nhn_base}"\ntimeout_seconds = 2\n'
                'encryption = "none"\n'
            )
    return "\n".join(out)


@dataclass
class Figures:
    sent: int
    delivered: int
    duplicates: int
    lost: int
    statuses: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)

    def show(self, title: str) -> None:
        extra = "".join(f", {k} {v}" for k, v in self.extra.items())
        print(
            f"\n[chaos] {title}: sent {self.sent}, delivered {self.delivered}, duplicates "
            f"{self.duplicates}, lost {self.lost}; statuses {self.statuses}{extra}"
        )


class ChaosRun:
    """The platforms, the gateway process and the hospital of one run."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        kommuner: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.kommuner = kommuner or KOMMUNER
        self.fhir = FhirPlatform()
        self.nhn = NhnMessageService()
        fhir_base = self.fhir.start()
        nhn_base = self.nhn.start()
        self.directory = tmp_path / "directory.toml"
        self.directory.write_text(directory_toml(fhir_base, nhn_base, self.kommuner))
        self.gw = GatewayProcess(
            tmp_path / "gateway",
            {**FAST_POLICY, "IPGW_DIRECTORY_FILE": str(self.directory), **(env or {})},
        )
        (tmp_path / "gateway").mkdir(exist_ok=True)
        #: the tokens the hospital, the KEs and the operator carry
        self.auth = self.gw.auth(operator="chaos-operator")
        #: gateway id -> kommune, for what the hospital got accepted
        self.expected: dict[str, str] = {}
        #: sender's message id -> kommune
        self.by_sender: dict[str, str] = {}
        #: gateway ids the pull-inbox KE acknowledged, in order (a repeat would be a duplicate)
        self.inbox_acked: list[str] = []
        self._stop_inbox = asyncio.Event()

    def close(self) -> None:
        self.gw.stop()
        self.fhir.stop()
        self.nhn.stop()

    # -------------------------------------------------------------------- the hospital

    def notices(self, n: int, seed: int) -> list[traffic.Outgoing]:
        items = traffic.notices(n, list(self.kommuner), seed=seed)
        self.by_sender.update({i.sender_message_id: i.kommune_nr for i in items})
        return items

    async def send(
        self,
        items: list[traffic.Outgoing],
        *,
        concurrency: int = 16,
        report: traffic.SendReport | None = None,
    ) -> traffic.SendReport:
        report = await traffic.send_all(
            self.gw.base_url,
            items,
            concurrency=concurrency,
            report=report,
            give_up_after=180,
            auth=self.auth,
        )
        for item in items:
            for gid in report.accepted[item.sender_message_id]:
                self.expected[gid] = item.kommune_nr
        return report

    # -------------------------------------------------------------------- the pull-inbox KE

    async def inbox_ke(self, kommune_nr: str) -> None:
        """Poll and acknowledge, as a KE's system does, until stopped."""
        async with httpx.AsyncClient(
            base_url=self.gw.base_url, timeout=10, auth=self.auth
        ) as client:
            while not self._stop_inbox.is_set():
                try:
                    r = await client.get(f"/ke/{kommune_nr}/inbox", params={"limit": 200})
                    items = r.json()["items"] if r.status_code == 200 else []
                    for item in items:
                        a = await client.post(f"/ke/{kommune_nr}/inbox/{item['id']}/ack")
                        if a.status_code == 200 and not a.json().get("repeated"):
                            self.inbox_acked.append(item["id"])
                except (httpx.HTTPError, ValueError):
                    pass  # the gateway is down for a moment: poll again
                await asyncio.sleep(0.1)

    def start_inbox_kes(self) -> list[asyncio.Task[None]]:
        self._stop_inbox.clear()
        return [
            asyncio.create_task(self.inbox_ke(k))
            for k, adapter in self.kommuner.items()
            if adapter == "ke_inbox"
        ]

    async def stop_inbox_kes(self, tasks: list[asyncio.Task[None]]) -> None:
        self._stop_inbox.set()
        await asyncio.gather(*tasks)

    # -------------------------------------------------------------------- the gateway

    async def statuses(self) -> dict[str, int]:
        async with httpx.AsyncClient(
            base_url=self.gw.base_url, timeout=10, auth=self.auth
        ) as client:
            counts: dict[str, int] = (await client.get("/stats")).json()["statuses"]
            return counts

    async def settle(
        self, total: int, *, done: frozenset[str] = TERMINAL, timeout: float = 180
    ) -> dict[str, int]:
        """Wait until ``total`` messages are in ``done`` statuses; the counts."""
        deadline = time.monotonic() + timeout
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            try:
                counts = await self.statuses()
            except httpx.HTTPError:
                counts = {}
            if sum(n for s, n in counts.items() if s in done) >= total:
                return counts
            await asyncio.sleep(0.25)
        raise TimeoutError(f"not settled: {counts}")

    async def events(self, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        async with httpx.AsyncClient(
            base_url=self.gw.base_url, timeout=10, auth=self.auth
        ) as client:
            sem = asyncio.Semaphore(16)

            async def one(gid: str) -> tuple[str, list[dict[str, Any]]]:
                async with sem:
                    body = (await client.get(f"/messages/{gid}")).json()
                    return gid, body["events"]

            return dict(await asyncio.gather(*(one(g) for g in ids)))

    # -------------------------------------------------------------------- the figures

    def figures(self, statuses: dict[str, int], sent: int) -> Figures:
        fhir, nhn = self.fhir.stats(), asdict(self.nhn.stats())
        inbox_distinct = len(set(self.inbox_acked))
        delivered = fhir["distinct"] + nhn["distinct"] + inbox_distinct
        duplicates = (
            fhir["duplicates_in_effect"]
            + nhn["duplicates_in_effect"]
            + (len(self.inbox_acked) - inbox_distinct)
        )
        return Figures(
            sent=sent,
            delivered=delivered,
            duplicates=duplicates,
            lost=sent - delivered,
            statuses=statuses,
            extra={
                "fhir posts": fhir["posts"],
                "nhn posts": nhn["posts"],
                "inbox acks": len(self.inbox_acked),
            },
        )


def latencies(events: dict[str, list[dict[str, Any]]]) -> list[float]:
    """Seconds from receipt to delivery, per message."""
    out = []
    for evs in events.values():
        at = {e["status"]: e["at"] for e in evs if e["status"]}
        if "RECEIVED" in at and "DELIVERED" in at:
            out.append(_seconds(at["DELIVERED"]) - _seconds(at["RECEIVED"]))
    return out


def _seconds(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso).timestamp()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def chunks(items: list[traffic.Outgoing], n: int) -> Iterator[list[traffic.Outgoing]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
