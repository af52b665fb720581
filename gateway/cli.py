"""``ipgw``: run the gateway, the demo, or the embedded broker alone."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

import typer

from gateway.config import Settings
from gateway.logs import configure

app = typer.Typer(
    help="ip-gateway: need-for-IP notices and plans between hospitals and kommuner.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address [IPGW_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="port [IPGW_PORT]")] = None,
) -> None:
    """Run the gateway: HTTP API, pipeline and delivery workers.

    Configured by IPGW_* environment variables (see README). Without IPGW_KAFKA_BOOTSTRAP it
    starts the bundled broker on 127.0.0.1; without IPGW_DATABASE_URL it uses SQLite in
    IPGW_DATA_DIR.
    """
    import uvicorn

    from gateway.api.app import create_app

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure(settings.log_level, json=settings.log_format == "json")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="HTTP port of the demo gateway")] = 8080,
    kommuner: Annotated[
        str, typer.Option(help="comma-separated kommunenummer with a simulated KE")
    ] = "1506,1508,5001",
    rate: Annotated[float, typer.Option(help="notices per second from the hospital")] = 5.0,
    data_dir: Annotated[Path, typer.Option(help="where the demo keeps its store")] = Path(
        "var/demo"
    ),
    fresh: Annotated[bool, typer.Option(help="start from an empty store")] = True,
) -> None:
    """Run the gateway with a simulated hospital and KE clients, showing live counts.

    Uses synthetic person ids only (IPGW_ACCEPT_SYNTHETIC_IDS is switched on for the demo).
    """
    from gateway.demo import runner

    settings = Settings(
        port=port, data_dir=data_dir, accept_synthetic_ids=True, topic_prefix="ipgw-demo"
    )
    configure("WARNING", json=False)
    runner.prepare(settings, fresh)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(runner.run(settings, [k.strip() for k in kommuner.split(",")], rate))
    typer.echo("demo stopped")


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="port to listen on")] = 9092,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
) -> None:
    """Run only the bundled Kafka-protocol broker (Tansu, memory only) until Ctrl-C.

    Point gateways at it with IPGW_KAFKA_BOOTSTRAP=host:port, e.g. to run several instances.
    """
    from gateway.broker import EmbeddedBroker

    b = EmbeddedBroker(host=host, port=port)

    async def run() -> None:
        await b.start()
        typer.echo(f"broker on {b.bootstrap} (pid {b.pid}); Ctrl-C stops it")
        await asyncio.Event().wait()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    finally:
        b.stop()


def main() -> None:
    app()
