"""Request-scoped helpers shared by the routers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request

from gateway.api.problems import Problem
from gateway.domain.model import MessageKind
from gateway.domain.receipt import Receipt, ReceiptError
from gateway.pipeline.ingest import store_refused
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
    """Who sent the request, for the timeline: the token's client (gateway/api/auth.py sets
    ``request.state.client_id``; one exact name, so a re-send and a receipt can be matched to
    the client that sent), else the address it came from."""
    client_id = getattr(request.state, "client_id", None)
    if isinstance(client_id, str):
        return f"client:{client_id}"
    host = request.client.host if request.client else "unknown"
    return f"http:{host}"


@dataclass(frozen=True)
class Turned:
    """A body not taken (too large: 413 T99; not a type the endpoint reads: 415 T10), kept as a
    REJECTED message with ``receipt``."""

    status: int
    receipt: Receipt


@dataclass(frozen=True)
class Incoming:
    body: bytes
    content_type: str
    caller: str


async def take_body(
    request: Request,
    rt: Runtime,
    types: Sequence[str],
    *,
    kind: MessageKind = MessageKind.NEED_NOTICE,
) -> Incoming | Turned:
    """The body of a message an endpoint reads, or what was kept of one it cannot take."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    who = caller(request)
    try:
        body = await read_body(request, rt.settings.max_body_bytes)
    except BodyTooLarge as e:
        error = ReceiptError(code="T99", detail=f"body exceeds {rt.settings.max_body_bytes} bytes")
        return Turned(413, await store_refused(rt, e.head, content_type, who, (error,), kind=kind))
    if content_type not in types:
        error = ReceiptError(code="T10", detail=f"content type must be {' or '.join(types)}")
        return Turned(415, await store_refused(rt, body, content_type, who, (error,), kind=kind))
    return Incoming(body, content_type, who)


def wants_xml(accept: str) -> bool:
    """XML when the client names an XML type before (or without) a JSON one."""
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for media in types:
        if media in ("application/xml", "text/xml"):
            return True
        if media in ("application/json", "application/fhir+json"):
            return False
    return False
