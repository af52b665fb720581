"""Request size limits on every endpoint (issue 8).

The message endpoints (``/fhir/$process-message``, ``/fhir/Consent``, ``/plo``) read their
bodies themselves, refusing past ``IPGW_MAX_BODY_BYTES`` and keeping what came as evidence
(gateway/api/deps.py). Every other endpoint takes small JSON (an operator's action, a search),
so anything past ``IPGW_MAX_REQUEST_BYTES`` is refused here, before a byte of it is parsed.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.problems import PROBLEM_BASE

#: endpoints that enforce their own (larger) limit and keep refused bodies as evidence
MESSAGE_PATHS = frozenset({"/fhir/$process-message", "/fhir/Consent", "/plo"})


class BodyLimit:
    """Pure ASGI middleware: a declared length over the limit is answered 413 at once; a body
    that streams past it (chunked) ends the request with 413 as well."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in MESSAGE_PATHS:
            await self.app(scope, receive, send)
            return
        limit = self.limit
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, scope["path"], limit)
            return
        seen = 0
        refused = False

        async def counting_receive() -> Message:
            # past the limit the 413 goes out at once and the app hears the client leave:
            # whatever it answers then is dropped (it would only say the body was cut short)
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    await _refuse(send, scope["path"], limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counting_receive, guarded_send)


async def _refuse(send: Send, path: str, limit: int) -> None:
    body = orjson.dumps(
        {
            "type": PROBLEM_BASE + "body-too-large",
            "title": "Request body too large",
            "status": 413,
            "detail": f"at most {limit} bytes",
            "instance": path,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
