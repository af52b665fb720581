"""Shared fixtures: one real broker per test session, a fresh store and topics per test."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from gateway.api.app import create_app
from gateway.broker import EmbeddedBroker, free_port
from gateway.config import Settings


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """The bundled Tansu broker, started once; tests isolate by topic prefix."""
    b = EmbeddedBroker()
    asyncio.run(b.start())
    yield b
    b.stop()


@pytest.fixture
def settings(tmp_path: Path, broker: EmbeddedBroker) -> Settings:
    return Settings(
        data_dir=tmp_path,
        kafka_bootstrap=broker.bootstrap,
        kafka_group_mode="assign",
        topic_prefix=f"t{uuid.uuid4().hex[:12]}",
        accept_synthetic_ids=True,
        max_body_bytes=256 * 1024,
    )


@pytest_asyncio.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The whole gateway in-process (lifespan started), reached over ASGI."""
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            yield c


class GatewayProcess:
    """``python -m gateway serve`` as a child process, as operators run it."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "IPGW_DATA_DIR": str(data_dir),
            "IPGW_PORT": str(self.port),
            "IPGW_ACCEPT_SYNTHETIC_IDS": "true",
            "IPGW_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        log = (self.data_dir / "gateway.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {(self.data_dir / 'gateway.log').read_text()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gateway did not become ready")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(tmp_path)
    yield gw
    gw.stop()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
