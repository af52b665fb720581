"""Request-scoped helpers shared by the routers."""

from __future__ import annotations

from fastapi import Request

from gateway.api.problems import Problem
from gateway.runtime import Runtime

#: what is kept of an oversized body, as evidence for the operator
EVIDENCE_BYTES = 64 * 1024


def runtime(request: Request) -> Runtime:
    rt = getattr(request.app.state, "runtime", None)
    if rt is None:
        raise Problem(503, "starting", "The gateway is starting")
    assert isinstance(rt, Runtime)
    return rt


class BodyTooLarge(Exception):
    def __init__(self, head: bytes) -> None:
        super().__init__("body too large")
        self.head = head


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes ``limit`` bytes (not after reading it all)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(b"")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(b"".join(chunks)[:EVIDENCE_BYTES])
        chunks.append(chunk)
    return b"".join(chunks)


def caller(request: Request) -> str:
    """Who sent the request, for the timeline (authentication will name the client)."""
    host = request.client.host if request.client else "unknown"
    return f"http:{host}"
