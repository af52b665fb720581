"""The FastAPI application; its lifespan runs the whole gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gateway import __version__
from gateway.api import consent, console, fhir, ke, metrics, ops, plo, problems, receipts
from gateway.api.body_limit import BodyLimit
from gateway.api.correlation import CorrelationId
from gateway.config import Settings
from gateway.console import STATIC
from gateway.service import Gateway

DESCRIPTION = """
Interoperability gateway for *individuell plan* (IP) work: hospitals send need-for-IP notices,
the gateway checks consent, routes to the kommune's koordinerende enhet (KE) and delivers;
the KE acknowledges and the hospital gets a receipt (AppRec).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Gateway(settings)
        try:
            app.state.runtime = await service.start()
            yield
        finally:
            app.state.runtime = None
            await service.stop()

    app = FastAPI(
        title="ip-gateway",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.runtime = None
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(CorrelationId)
    problems.install(app)
    for module in (fhir, consent, plo, ke, receipts, ops, metrics, console):
        app.include_router(module.router)
    app.mount("/console", StaticFiles(directory=STATIC, html=True), name="console")
    return app
