"""``ipgw``: run the gateway, the demo, or the embedded broker alone."""

from __future__ import annotations

import asyncio
import contextlib
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.config import Settings
from gateway.logs import configure

if TYPE_CHECKING:
    from gateway.sealing import KeyRing

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
    # proxy_headers off: the request's client address stays the TCP peer, which is what
    # decides whether a Client-Cert header came from the TLS proxy (gateway/auth/client_certs.py);
    # uvicorn would otherwise replace it with X-Forwarded-For from 127.0.0.1
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=False,
    )


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


class Preset(StrEnum):
    hospital = "hospital"
    ke = "ke"
    viewer = "viewer"
    operator = "operator"
    privileged = "privileged"


@app.command()
def token(
    preset: Annotated[
        Preset | None, typer.Option("--as", help="a kind of caller: sets its scopes")
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(help="client_id claim (default: ipgw-dev-<preset>)")
    ] = None,
    scope: Annotated[
        list[str] | None, typer.Option(help="a scope to grant, added to the preset's; repeatable")
    ] = None,
    orgnr_parent: Annotated[str | None, typer.Option(help="organisation number (parent)")] = None,
    orgnr_child: Annotated[str | None, typer.Option(help="organisation number (child)")] = None,
    subject: Annotated[
        str | None, typer.Option(help="sub claim: who acts, e.g. an operator (default: client id)")
    ] = None,
    lifetime: Annotated[int, typer.Option(min=1, help="seconds the token is valid")] = 3600,
    data_dir: Annotated[
        Path | None, typer.Option(help="where the development key is [IPGW_DATA_DIR]")
    ] = None,
) -> None:
    """Print an access token from the gateway's development issuer.

    For the demo, tests and trying the API by hand, e.g.
    `curl -H "Authorization: Bearer $(ipgw token --as hospital --orgnr-parent 983974899)"`.
    The gateway accepts these tokens only when IPGW_AUTH_ISSUER is unset; with a real issuer
    set this command refuses (that issuer mints its own tokens).

    Presets (--as): hospital = ipgw/messages.send; ke = ipgw/inbox; operator =
    ipgw/ops.read + ipgw/ops.act; privileged = operator + ipgw/ops.content.
    """
    from gateway.auth.dev_issuer import DEV_ISSUER, PRESETS, DevIssuer

    settings = Settings()
    if settings.auth_issuer:
        typer.echo(
            "IPGW_AUTH_ISSUER is set: the gateway trusts that issuer, not the development "
            "one; get a token from it instead",
            err=True,
        )
        raise typer.Exit(2)
    scopes = [*(PRESETS[preset.value] if preset else ()), *(scope or [])]
    client = client_id or (f"ipgw-dev-{preset.value}" if preset else None)
    if not client:
        typer.echo("give --client-id or --as", err=True)
        raise typer.Exit(2)
    issuer = DevIssuer.load_or_create(data_dir or settings.data_dir, DEV_ISSUER)
    try:
        minted = issuer.mint(
            client_id=client,
            audience=settings.auth_audience,
            scopes=scopes,
            orgnr_parent=orgnr_parent,
            orgnr_child=orgnr_child,
            subject=subject,
            lifetime_seconds=lifetime,
        )
    except ValueError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    typer.echo(minted)


keys = typer.Typer(
    help="Keys that seal person data at rest (README: Keys and encryption at rest).",
    no_args_is_help=True,
)
app.add_typer(keys, name="keys")


def _keyring(settings: Settings) -> KeyRing:
    """The configured keys, or exit 2 with why they cannot be used (never a key)."""
    from gateway.sealing import KeyConfigError, load_keyring

    try:
        return load_keyring(settings)
    except KeyConfigError as e:
        typer.echo(f"keys: {e}", err=True)
        raise typer.Exit(2) from None


@keys.command("new")
def keys_new(
    key_id: Annotated[
        str | None, typer.Option("--id", help="the key's id (default: k<date>-<random>)")
    ] = None,
) -> None:
    """Print a fresh key line (id:base64) to put first in IPGW_DATA_KEYS or the key file."""
    from gateway.sealing import new_key_line

    typer.echo(new_key_line(key_id))


@keys.command("status")
def keys_status() -> None:
    """How many stored values each key id seals, per column (no data is read)."""
    from gateway.store.database import Database
    from gateway.store.rotation import key_status

    settings = Settings()
    configure("WARNING", json=False)
    keyring = _keyring(settings)

    async def run() -> dict[str, dict[str, int]]:
        db = Database(settings.resolved_database_url, keyring)
        try:
            return {c: dict(n) for c, n in (await key_status(db)).items()}
        finally:
            await db.close()

    counts = asyncio.run(run())
    typer.echo(f"current key: {keyring.current_id}; configured: {', '.join(keyring.key_ids)}")
    totals: dict[str, int] = {}
    for column, per_key in counts.items():
        shown = ", ".join(f"{k} {n}" for k, n in sorted(per_key.items())) or "empty"
        typer.echo(f"{column}: {shown}")
        for k, n in per_key.items():
            totals[k] = totals.get(k, 0) + n
    for key_id in keyring.key_ids:
        n = totals.get(key_id, 0)
        note = (
            " (current)"
            if key_id == keyring.current_id
            else (" (nothing left: may be removed from the configuration)" if n == 0 else "")
        )
        typer.echo(f"key {key_id}: {n}{note}")
    for key_id in sorted(set(totals) - set(keyring.key_ids)):
        typer.echo(f"key {key_id}: {totals[key_id]} (NOT CONFIGURED: these do not open)")


@keys.command("rotate")
def keys_rotate(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="values per transaction")] = 500,
    pause: Annotated[float, typer.Option(min=0, help="seconds between transactions")] = 0.0,
    vacuum: Annotated[
        bool,
        typer.Option(
            help="SQLite: then rebuild the file, so no value under an old key is left in free "
            "pages (holds writers meanwhile: for retiring a key that leaked)"
        ),
    ] = False,
) -> None:
    """Re-seal under the current key every value sealed under an older one, beside a running
    gateway (short transactions); safe to stop and run again."""
    from gateway.store.database import Database
    from gateway.store.rotation import rotate

    settings = Settings()
    configure("WARNING", json=False)
    keyring = _keyring(settings)

    async def run() -> bool:
        # secure_delete: what is re-sealed does not stay readable in SQLite's free pages
        db = Database(settings.resolved_database_url, keyring, secure_delete=True)
        try:
            await db.migrate()
            done = await rotate(db, batch=batch, pause=pause)
            if vacuum:
                await db.vacuum()
        finally:
            await db.close()
        clean = True
        for column, r in done.items():
            line = f"{column}: {r.resealed} re-sealed under {keyring.current_id}"
            if r.skipped:
                line += f", {r.skipped} changed meanwhile (already current)"
            if r.unreadable:
                clean = False
                shown = ", ".join(r.unreadable[:10]) + (" …" if len(r.unreadable) > 10 else "")
                line += f", {len(r.unreadable)} DO NOT OPEN (row ids: {shown})"
            typer.echo(line)
        if vacuum and not db.is_sqlite:
            typer.echo("PostgreSQL: old row versions stay until VACUUM FULL of the tables above")
        return clean

    if not asyncio.run(run()):
        raise typer.Exit(1)


audit = typer.Typer(help="The audit log (hash-chained, append-only).", no_args_is_help=True)
app.add_typer(audit, name="audit")


@audit.command("verify")
def audit_verify(
    page: Annotated[int, typer.Option(min=1, max=100_000, help="entries read at a time")] = 5000,
) -> None:
    """Walk the audit log and check every entry's link and hash; exit 1 naming each entry
    where the chain is broken (edited, deleted or inserted), with no entry's content.

    Prints the newest entry's hash: keep it elsewhere and compare next time, since entries
    cut off the end leave no break behind.
    """
    from gateway.sealing import load_keyring
    from gateway.store import audit_chain
    from gateway.store import repository as repo
    from gateway.store.database import Database

    settings = Settings()
    configure("WARNING", json=False)

    async def run() -> audit_chain.Verdict:
        db = Database(settings.resolved_database_url, load_keyring(settings))
        try:
            entries: list[audit_chain.Entry] = []
            last = 0
            while batch := await db.read(repo.audit_chain_entries, last, page):
                entries.extend(batch)
                last = batch[-1].id
            return audit_chain.verify(entries)
        finally:
            await db.close()

    verdict = asyncio.run(run())
    for broken in verdict.breaks:
        typer.echo(f"BROKEN {broken}")
    state = "intact" if verdict.intact else f"BROKEN in {len(verdict.breaks)} places"
    typer.echo(f"audit log {state}: {verdict.entries} entries; newest hash {verdict.head}")
    if not verdict.intact:
        raise typer.Exit(1)


def main() -> None:
    app()
