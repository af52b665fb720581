"""The tokens the demo's simulated parties hold, as HelseID would give them (issue 8).

The demo hospital, KEs and platforms, the benchmarks and the tests all call the gateway with
bearer tokens from the development issuer (``gateway/auth/dev_issuer.py``), checked the same
way as real ones: there is no switch that lets a call in without one. :class:`PartyTokens` is
an ``httpx.Auth`` that gives each request the token its real caller would have:

- a message (``/fhir/$process-message``, ``/plo``, ``POST /fhir/Consent``): the sending
  system's token, naming the organisation the message names as its sender (read the way the
  gateway reads it, with the directory for HER-ids), so a well-formed message is never a
  spoof; a receipt (``/receipts/...``): the same sending client's;
- ``/ke/{nr}/...``: the token of that kommune's KE system (the directory's orgnr for it);
- anything else: an operator's, with the scopes of ``role``.

A request that already carries an ``Authorization`` header keeps it (the negative tests).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Literal

import httpx
import orjson

from gateway.auth import spoofing
from gateway.auth.dev_issuer import PRESETS, DevIssuer
from gateway.auth.tokens import SCOPE_CONSENT_READ
from gateway.directory import Directory
from mappings.plo.msghead import read_envelope
from mappings.plo.xmlsafe import parse_xml

Role = Literal["viewer", "operator", "privileged"]
#: an operator's scopes by role: the same as ``ipgw token --as <role>`` gives
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    r: PRESETS[r] for r in ("viewer", "operator", "privileged")
}
SENDER_SCOPES = (*PRESETS["hospital"], SCOPE_CONSENT_READ)
#: the organisation a body with no readable sender is sent as (the ingest refuses such a body
#: for what is wrong with it before it looks at the sender)
FALLBACK_ORGNR = "983974899"  # Helse Møre og Romsdal HF
_KE_PATH = re.compile(r"^/ke/([0-9]{4})(/|$)")
_MESSAGE_PATHS = ("/fhir/$process-message", "/plo")
#: how often a party told 429 waits and sends again before it takes the 429 as the answer
MAX_RATE_WAITS = 20


def retry_after(response: httpx.Response) -> float:
    """The wait a 429 asks for: its Retry-After in seconds, within 0.1 to 5 s."""
    try:
        seconds = float(response.headers.get("retry-after", "1"))
    except ValueError:
        seconds = 1.0
    if not math.isfinite(seconds):
        seconds = 1.0
    return min(max(seconds, 0.1), 5.0)


class PartyTokens(httpx.Auth):
    def __init__(
        self,
        issuer: DevIssuer,
        directory: Callable[[], Directory],
        *,
        audience: str = "ip-gateway",
        client_id: str = "demo",
        operator: str = "demo-operator",
        role: Role = "operator",
    ) -> None:
        self.issuer = issuer
        self.directory = directory
        self.audience = audience
        self.client_id = client_id
        self.operator = operator
        self.role = role
        self._cache: dict[tuple[object, ...], tuple[float, str]] = {}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "authorization" not in request.headers:
            request.headers["Authorization"] = f"Bearer {self.token_for(request)}"
        yield request

    # A real client told 429 waits for Retry-After and sends again, so the simulated parties
    # do too (a test's burst of reads is otherwise cut off by the per-client limit). A request
    # that came with its own Authorization header gets the 429 as it is: the negative tests.

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        ours = "authorization" not in request.headers
        response = yield next(self.auth_flow(request))
        for _ in range(MAX_RATE_WAITS if ours else 0):
            if response.status_code != 429:
                return
            time.sleep(retry_after(response))
            response = yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        ours = "authorization" not in request.headers
        response = yield next(self.auth_flow(request))
        for _ in range(MAX_RATE_WAITS if ours else 0):
            if response.status_code != 429:
                return
            await asyncio.sleep(retry_after(response))
            response = yield request

    def token_for(self, request: httpx.Request) -> str:
        path = request.url.path
        ke = _KE_PATH.match(path)
        if ke:
            unit = self.directory().unit_for(ke.group(1))
            orgnr = unit.orgnr if unit is not None else None
            return self.mint(f"{self.client_id}-ke-{ke.group(1)}", PRESETS["ke"], orgnr)
        if path in _MESSAGE_PATHS or (path == "/fhir/Consent" and request.method == "POST"):
            orgs = sorted(self.sender_of(request.content, path))
            return self.mint(f"{self.client_id}-sender", SENDER_SCOPES, *orgs[:2])
        if path.startswith("/receipts/"):
            return self.mint(f"{self.client_id}-sender", SENDER_SCOPES, FALLBACK_ORGNR)
        if path.startswith("/fhir/Consent"):
            return self.mint(f"{self.client_id}-sender", SENDER_SCOPES, FALLBACK_ORGNR)
        return self.mint(
            f"{self.client_id}-console", ROLE_SCOPES[self.role], None, subject=self.operator
        )

    def sender_of(self, body: bytes, path: str) -> frozenset[str]:
        """The organisations the gateway will find for the message's sender."""
        named: list[spoofing.Named] = []
        try:
            if path == "/plo":
                envelope = read_envelope(
                    parse_xml(body, max_bytes=len(body) + 1), allow_synthetic_ids=True
                )
                named = spoofing.msghead_sender(envelope.sender)
            elif path == "/fhir/$process-message":
                bundle = orjson.loads(body)
                named = spoofing.fhir_sender(bundle) if isinstance(bundle, dict) else []
        except Exception:
            named = []  # unreadable: the ingest refuses it for that first
        found = spoofing.sender_orgnrs(named, self.directory())
        return found or frozenset({FALLBACK_ORGNR})

    def mint(
        self,
        client_id: str,
        scopes: tuple[str, ...],
        orgnr_parent: str | None,
        orgnr_child: str | None = None,
        *,
        subject: str | None = None,
    ) -> str:
        """A token, reused while it has more than half its hour left (signing costs ~1 ms)."""
        key = (client_id, scopes, orgnr_parent, orgnr_child, subject)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        token = self.issuer.mint(
            client_id=client_id,
            audience=self.audience,
            scopes=scopes,
            orgnr_parent=orgnr_parent,
            orgnr_child=orgnr_child,
            subject=subject,
            lifetime_seconds=3600,
        )
        self._cache[key] = (time.monotonic() + 1800, token)
        return token
