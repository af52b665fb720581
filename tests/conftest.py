"""Shared fixtures: one real broker per test session, a fresh store and topics per test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from gateway.api.app import create_app
from gateway.broker import EmbeddedBroker
from gateway.config import Settings
from gateway.demo.process import GatewayProcess
from gateway.runtime import Runtime
from tests.standards import standards_dir
from tests.tokens import TestTokens

# the gateway processes the e2e tests start find the official XSDs wherever the clone is
os.environ.setdefault("IPGW_XSD_DIR", str(standards_dir() / "xsd"))


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
        xsd_dir=standards_dir() / "xsd",
    )


@pytest_asyncio.fixture
async def gateway(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """The whole gateway in-process (lifespan started), reached over ASGI, and its runtime
    (for what a test must steer: the clock)."""
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        rt: Runtime = app.state.runtime
        assert rt.dev_issuer is not None
        auth = TestTokens(rt.dev_issuer, lambda: rt.directory, client_id="tests")
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", auth=auth) as c:
            yield c, rt


@pytest.fixture
def client(gateway: tuple[httpx.AsyncClient, Runtime]) -> httpx.AsyncClient:
    return gateway[0]


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(tmp_path)
    yield gw
    gw.stop()
