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
from gateway.domain.status import MessageStatus


def _view(
    settings: Settings,
    base: str,
    stats: dict[str, object],
    sent: Counter[str],
    acked: Counter[str],
    names: dict[str, str],
) -> Group:
    head = Text.assemble(
        ("ip-gateway demo", "bold"),
        "  ·  API docs ",
        (f"{base}/docs", "cyan"),
        "  ·  ",
        (f"{base}/stats", "cyan"),
        "  ·  Ctrl-C stops",
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
    kt = Table(title="KE inboxes", min_width=40)
    kt.add_column("kommune")
    kt.add_column("waiting", justify="right")
    kt.add_column("acknowledged", justify="right")
    for nr, name in names.items():
        kt.add_row(f"{nr} {name}", str(depth.get(nr, 0)), str(acked.get(nr, 0)))
    sent_text = ", ".join(f"{k}: {v}" for k, v in sorted(sent.items())) or "nothing yet"
    return Group(head, Text(f"hospital sent — {sent_text}"), st, kt)


async def run(settings: Settings, kommuner: list[str], rate: float) -> None:
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning")
    )
    base = f"http://{settings.host}:{settings.port}"
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving  # start-up failed: let the error out
            return
        await asyncio.sleep(0.05)

    rt = app.state.runtime
    names = {nr: (u.kommune_name if (u := rt.directory.unit_for(nr)) else "?") for nr in kommuner}
    sent: Counter[str] = Counter()
    acked: Counter[str] = Counter()
    workers = [asyncio.create_task(peers.hospital(base, kommuner, rate, sent))]
    workers += [asyncio.create_task(peers.coordinating_unit(base, nr, acked)) for nr in kommuner]
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            with Live(refresh_per_second=4) as live:
                while not serving.done():
                    with contextlib.suppress(httpx.HTTPError):
                        stats = (await client.get("/stats")).json()
                        live.update(_view(settings, base, stats, sent, acked, names))
                    await asyncio.wait({serving}, timeout=0.5)
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        server.should_exit = True
        await serving


def prepare(settings: Settings, fresh: bool) -> None:
    if fresh and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
