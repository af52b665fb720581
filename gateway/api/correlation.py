"""The correlation id of each HTTP request: the caller's ``X-Correlation-Id`` when it is a
plain token, else a new one; on every log line of the request and on the response."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.logs import CORRELATION_ID

HEADER = b"x-correlation-id"
#: a caller's id is taken only when it cannot carry anything else (no person data, no markup)
_TOKEN = re.compile(rb"^[A-Za-z0-9._:\-]{1,64}$")


class CorrelationId:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer every body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers", []) if k == HEADER), b"")
        value = given.decode() if _TOKEN.match(given) else str(uuid.uuid4())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (HEADER, value.encode())]
                message = {**message, "headers": headers}
            await send(message)

        token = CORRELATION_ID.set(value)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            CORRELATION_ID.reset(token)
