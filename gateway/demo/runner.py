"""``ipgw demo``: the gateway plus simulated hospital and KE peers, with live counts."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections import Counter

import httpx
import uvicorn
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gateway.api.app import create_app
from gateway.config import Settings
from gateway.demo import peers
from gateway.demo.pki import SimulatedPki
from gateway.demo.platforms.fhir_server import FhirPlatform
from gateway.demo.platforms.nhn_msh_server import NhnMessageService
from gateway.demo.tokens import ROLE_SCOPES, PartyTokens
from gateway.directory import Directory, load_directory
from gateway.domain.model import ReceivingUnit
from gateway.domain.status import MessageStatus

#: the demo's kommuner on the simulated platforms (the rest use the pull inbox)
PLATFORM_KOMMUNER = {"1508": "fhir_rest", "5001": "sampro"}
#: the health trusts on the simulated platforms: Helse Møre og Romsdal on FHIR
PLATFORM_TRUSTS = {99100001: "fhir_rest", 99100002: "nhn_msh"}
#: where the demo's people move with their plans (old kommune -> new)
PLAN_MOVES = [("1506", "1508"), ("1506", "5001"), ("1508", "1506")]
DEMO_GATEWAY_HER_ID = 99999999


def _view(
    base: str,
    console: str,
    stats: dict[str, object],
    sent: Counter[str],
    acked: Counter[str],
    names: dict[str, str],
    platforms: dict[str, tuple[str, int]],
) -> Group:
    head = Text.assemble(
        ("ip-gateway demo", "bold"),
        "  ·  API docs ",
        (f"{base}/docs", "cyan"),
        "  ·  ",
        (f"{base}/stats", "cyan"),
        "  ·  Ctrl-C stops\n",
        "operator console (an operator's token in the address; `ipgw token --as privileged` "
        "for one that may see content): ",
        (f"{base}/console/#token={console}", "cyan"),
    )
    statuses = stats.get("statuses", {})
    assert isinstance(statuses, dict)
    st = Table(title="messages per status", min_width=40)
    st.add_column("status")
    st.add_column("count", justify="right")
    for s in MessageStatus:
        st.add_row(s.value, str(statuses.get(s.value, 0)))
    depth = stats.get("inbox_depth", {})
    assert isinstance(depth, dict)
    kt = Table(title="KEs", min_width=40)
    kt.add_column("kommune")
    kt.add_column("adapter")
    kt.add_column("waiting in inbox", justify="right")
    kt.add_column("acknowledged / at platform", justify="right")
    for nr, name in names.items():
        adapter, received = platforms.get(nr, ("ke_inbox", -1))
        shown = str(acked.get(nr, 0)) if received < 0 else str(received)
        kt.add_row(f"{nr} {name}", adapter, str(depth.get(nr, 0)), shown)
    sent_text = ", ".join(f"{k}: {v}" for k, v in sorted(sent.items())) or "nothing yet"
    return Group(head, Text(f"peers sent — {sent_text}"), st, kt)


def _directory_toml(settings: Settings, fhir_base: str, nhn_base: str) -> str:
    """The shipped directory, with the demo's platform kommuner pointed at the simulators."""
    out = ["[meta]\nfictitious_her_ids = true\n"]
    for nr, entry in load_directory(settings.directory_file).entries.items():
        u = entry.unit
        adapter = PLATFORM_KOMMUNER.get(nr, u.adapter)
        ke_orgnr = f'orgnr = "{u.orgnr}"\n' if u.orgnr else ""
        out.append(
            f'[[kommune]]\nnr = "{nr}"\nname = "{u.kommune_name}"\n[kommune.ke]\n'
            f'name = "{u.name}"\nher_id = {u.her_id}\n{ke_orgnr}adapter = "{adapter}"\n'
        )
        if nr in PLATFORM_KOMMUNER:
            base = fhir_base if adapter == "fhir_rest" else nhn_base
            out.append(f'[kommune.ke.settings]\nbase_url = "{base}"\n')
    for her_id, trust in load_directory(settings.directory_file).health_trusts.items():
        hf = trust.unit
        adapter = PLATFORM_TRUSTS.get(her_id, hf.adapter)
        base = fhir_base if adapter == "fhir_rest" else nhn_base
        orgnr = f'orgnr = "{hf.orgnr}"\n' if hf.orgnr else ""
        out.append(
            f'[[helseforetak]]\nname = "{hf.name}"\n{orgnr}her_id = {her_id}\n'
            f'adapter = "{adapter}"\n[helseforetak.settings]\nbase_url = "{base}"\n'
        )
    return "\n".join(out)


async def run(settings: Settings, kommuner: list[str], rate: float) -> None:
    # the NHN path runs signed and encrypted (CMS) with a demo CA and key pairs kept in the
    # data directory (gateway/demo/pki.py), made at the first start
    pki = SimulatedPki(settings.data_dir / "pki")
    fhir, nhn = FhirPlatform(), NhnMessageService(pki=pki)
    directory = settings.data_dir / "directory.toml"
    directory.write_text(_directory_toml(settings, fhir.start(), nhn.start()), "utf-8")
    pki.ensure(*_nhn_her_ids(load_directory(directory)))
    settings = settings.model_copy(
        update={
            "directory_file": directory,
            "gateway_her_id": DEMO_GATEWAY_HER_ID,
            **pki.gateway_settings(DEMO_GATEWAY_HER_ID),
        }
    )
    try:
        await _run(settings, kommuner, rate, fhir, nhn)
    finally:
        fhir.stop()
        nhn.stop()


async def _run(
    settings: Settings, kommuner: list[str], rate: float, fhir: FhirPlatform, nhn: NhnMessageService
) -> None:
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.host, port=settings.port, log_level="warning", proxy_headers=False
        )
    )
    base = f"http://{settings.host}:{settings.port}"
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving  # start-up failed: let the error out
            return
        await asyncio.sleep(0.05)

    rt = app.state.runtime
    # every peer calls with the token its real counterpart would get from HelseID, minted by
    # the development issuer the gateway trusts (no way in without one)
    auth = PartyTokens(rt.dev_issuer, lambda: rt.directory, operator="demo-operator")
    console = auth.mint("ipgw-console", ROLE_SCOPES["operator"], None, subject="demo-operator")
    names = {nr: (u.kommune_name if (u := rt.directory.unit_for(nr)) else "?") for nr in kommuner}
    sent: Counter[str] = Counter()
    acked: Counter[str] = Counter()
    workers = [
        asyncio.create_task(
            peers.hospital(base, kommuner, rate, sent, takes_part_share=0.2, auth=auth)
        )
    ]
    moves = [(a, b) for a, b in PLAN_MOVES if a in names and b in names]
    if moves:
        workers.append(asyncio.create_task(peers.plan_platform(base, moves, sent, auth=auth)))
    workers += [
        asyncio.create_task(peers.coordinating_unit(base, nr, acked, auth=auth))
        for nr in kommuner
        if nr not in PLATFORM_KOMMUNER
    ]
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5, auth=auth) as client:
            with Live(refresh_per_second=4) as live:
                while not serving.done():
                    with contextlib.suppress(httpx.HTTPError):
                        stats = (await client.get("/stats")).json()
                        at_platform = {
                            nr: (adapter, _received(fhir, nhn, adapter))
                            for nr, adapter in PLATFORM_KOMMUNER.items()
                            if nr in names
                        }
                        live.update(_view(base, console, stats, sent, acked, names, at_platform))
                    await asyncio.wait({serving}, timeout=0.5)
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        server.should_exit = True
        await serving


def _nhn_her_ids(directory: Directory) -> list[int]:
    """The units the demo reaches through the simulated NHN service: each needs a key pair
    (its certificate is what the gateway encrypts to)."""
    units: list[ReceivingUnit] = [
        e.unit for e in directory.entries.values() if "base_url" in e.settings
    ]
    units += [e.unit for e in directory.health_trusts.values() if "base_url" in e.settings]
    return [u.her_id for u in units if u.adapter in {"nhn_msh", "sampro", "acos"}]


def _received(fhir: FhirPlatform, nhn: NhnMessageService, adapter: str) -> int:
    """Messages the simulated platform keeps (one per id, however often it was resent)."""
    return int(fhir.stats()["distinct"]) if adapter == "fhir_rest" else nhn.stats().distinct


def prepare(settings: Settings, fresh: bool) -> None:
    if fresh and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
