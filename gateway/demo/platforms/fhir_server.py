"""A simulated FHIR messaging platform (Helseplattformen-like), what ``fhir_rest`` and its
profiles (``samspill``) talk to in the demo, the tests and the chaos runs.

It behaves as a careful real receiver does, so the gateway's guarantees are measured against
something that holds it to them:

- ``POST /fhir/$process-message`` takes a message Bundle (resourceType Bundle, type message,
  a MessageHeader first) and answers with a response message Bundle
  (MessageHeader.response.identifier = the received MessageHeader.id, code ``ok``);
- it keeps what it received by Bundle.id: a resend with the same id is a redelivery, answered
  with the same response and not stored again, as R4 messaging asks of a receiver;
- it counts, per *logical* message (the MessageHeader.id, i.e. the hospital's message id), the
  distinct Bundle ids it was stored under: more than one is a duplicate in effect, a gateway
  bug (a resend under a new id) that dedupe at the receiver cannot catch;
- with a client id and secret it issues client-credentials tokens at ``POST /fhir/token`` and
  answers a request without a valid bearer token 401 (OperationOutcome ``login``).

It can be told to fail while it runs (:meth:`FhirPlatform.set_mode`, thread-safe, or
``POST /_sim/mode`` from another process): ``unavailable`` (503, OperationOutcome
``transient``), ``slow`` (stores, then answers after N seconds: the case of a timeout after
the platform has the message), ``reject`` (an OperationOutcome with an issue code, as HTTP 422
or as a 200 ``fatal-error`` response), ``accept_only`` (stores, answers 202, never
acknowledges), ``garbled`` (stores, then a proxy in front answers 200 with an HTML page: an
answer nobody can read, after the platform has the message). ``GET /_sim/stats`` gives the
counters as JSON.

Rejections echo the person id in ``diagnostics``, as a careless real server might: the
gateway must not copy that anywhere.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.demo.platforms.server import ThreadedServer

Json = dict[str, Any]
Mode = Literal["ok", "unavailable", "slow", "reject", "accept_only", "garbled"]
MODES: tuple[str, ...] = get_args(Mode)
FHIR_JSON = "application/fhir+json"
_FHIR_TYPES = frozenset({FHIR_JSON, "application/json", "application/json+fhir"})
#: how often a slow answer checks whether the server is stopping (so stop() never waits it out)
_SLOW_TICK = 0.05


@dataclass
class _State:
    mode: Mode = "ok"
    slow_seconds: float = 5.0
    reject_issue: str = "invalid"
    reject_status: int = 422
    reject_expression: list[str] = field(default_factory=list)
    posts: int = 0
    token_requests: int = 0
    unauthorised: int = 0
    #: Bundle.id -> how many times it was posted and taken
    received: dict[str, int] = field(default_factory=dict)
    bundles: dict[str, Json] = field(default_factory=dict)
    responses: dict[str, Json] = field(default_factory=dict)
    #: MessageHeader.id (the sender's message id) -> the Bundle ids it was stored under
    logical: dict[str, set[str]] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)


class FhirPlatform:
    """The platform and its controls; state survives :meth:`stop` / :meth:`start`."""

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_lifetime: int = 300,
        port: int = 0,
    ) -> None:
        if (client_id is None) != (client_secret is None):
            raise ValueError("client_id and client_secret go together")
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self._lock = threading.Lock()
        self._state = _State()
        self._stopping = threading.Event()
        self.app = Starlette(
            routes=[
                Route("/fhir/$process-message", self._process_message, methods=["POST"]),
                Route("/fhir/token", self._token, methods=["POST"]),
                Route("/_sim/stats", self._stats, methods=["GET"]),
                Route("/_sim/mode", self._mode, methods=["POST"]),
            ]
        )
        self._server = ThreadedServer(self.app, port=port)

    # ------------------------------------------------------------------ controls

    @property
    def base_url(self) -> str:
        """The FHIR base (what a KE's ``base_url`` setting names)."""
        return f"{self._server.url}/fhir"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    def start(self) -> str:
        self._stopping.clear()
        self._server.start()
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()
        self._server.stop()

    def set_mode(
        self,
        mode: str,
        *,
        seconds: float | None = None,
        issue: str | None = None,
        status: int | None = None,
        expression: list[str] | None = None,
    ) -> None:
        """Switch behaviour at once (the next request sees it).

        ``seconds``: how long ``slow`` waits; ``issue``, ``status`` (422 or another 4xx/5xx,
        or 200 for a ``fatal-error`` response message) and ``expression`` shape ``reject``.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        with self._lock:
            s = self._state
            s.mode = cast(Mode, mode)
            if seconds is not None:
                s.slow_seconds = seconds
            if issue is not None:
                s.reject_issue = issue
            if status is not None:
                s.reject_status = status
            if expression is not None:
                s.reject_expression = list(expression)

    @property
    def mode(self) -> str:
        with self._lock:
            return self._state.mode

    def revoke_tokens(self) -> None:
        """Forget every token issued (as after a key rotation): the next request gets 401."""
        with self._lock:
            self._state.tokens.clear()

    @property
    def posts(self) -> int:
        with self._lock:
            return self._state.posts

    @property
    def received(self) -> dict[str, int]:
        with self._lock:
            return dict(self._state.received)

    @property
    def distinct(self) -> int:
        with self._lock:
            return len(self._state.received)

    @property
    def duplicates_in_effect(self) -> int:
        with self._lock:
            return sum(1 for ids in self._state.logical.values() if len(ids) > 1)

    @property
    def token_requests(self) -> int:
        with self._lock:
            return self._state.token_requests

    def bundle(self, bundle_id: str) -> Json | None:
        """The Bundle as first received under ``bundle_id`` (a copy)."""
        with self._lock:
            found = self._state.bundles.get(bundle_id)
            return copy.deepcopy(found) if found is not None else None

    def stats(self) -> dict[str, Any]:
        """A consistent snapshot of every counter."""
        with self._lock:
            s = self._state
            return {
                "mode": s.mode,
                "posts": s.posts,
                "received": dict(s.received),
                "distinct": len(s.received),
                "redeliveries": sum(n - 1 for n in s.received.values()),
                "duplicates_in_effect": sum(1 for ids in s.logical.values() if len(ids) > 1),
                "token_requests": s.token_requests,
                "unauthorised": s.unauthorised,
            }

    # ------------------------------------------------------------------ HTTP

    async def _process_message(self, request: Request) -> Response:
        with self._lock:
            self._state.posts += 1
        if not self._authorised(request):
            with self._lock:
                self._state.unauthorised += 1
            return _outcome(
                401, "login", "a valid bearer token is required", {"www-authenticate": "Bearer"}
            )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in _FHIR_TYPES:
            return _outcome(415, "not-supported", "send application/fhir+json")
        try:
            bundle = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _outcome(400, "structure", "the body is not JSON")
        problem = _shape_problem(bundle)
        if problem is not None:
            return _outcome(400, "structure", problem)
        bundle_id: str = bundle["id"]
        header: Json = bundle["entry"][0]["resource"]

        with self._lock:
            s = self._state
            mode, seconds = s.mode, s.slow_seconds
            issue, status, expression = s.reject_issue, s.reject_status, s.reject_expression
        if mode == "unavailable":
            return _outcome(503, "transient", "the platform is down for maintenance")
        if mode == "reject":
            return _rejection(bundle, header, issue, status, expression, self.base_url)
        answer = self._take(bundle_id, header, bundle)
        if mode == "accept_only":
            return Response(status_code=202)
        if mode == "garbled":
            return Response("<html><body>Service Unavailable</body></html>", media_type="text/html")
        if mode == "slow":
            deadline = time.monotonic() + seconds
            # stop() comes from another thread (a threading.Event), which an asyncio.Event
            # on this server's loop cannot hear: check it between short sleeps
            while time.monotonic() < deadline and not self._stopping.is_set():  # noqa: ASYNC110
                await asyncio.sleep(_SLOW_TICK)
        return JSONResponse(answer, media_type=FHIR_JSON)

    def _take(self, bundle_id: str, header: Json, bundle: Json) -> Json:
        """Store a first delivery, count a redelivery; the response for this Bundle id."""
        with self._lock:
            s = self._state
            s.received[bundle_id] = s.received.get(bundle_id, 0) + 1
            if bundle_id not in s.bundles:
                s.bundles[bundle_id] = bundle
                s.logical.setdefault(str(header.get("id")), set()).add(bundle_id)
                s.responses[bundle_id] = _response(header, "ok", self.base_url)
            return s.responses[bundle_id]

    def _authorised(self, request: Request) -> bool:
        if self.client_id is None:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._lock:
            expires = self._state.tokens.get(token)
        return expires is not None and expires > time.monotonic()

    async def _token(self, request: Request) -> Response:
        with self._lock:
            self._state.token_requests += 1
        if self.client_id is None:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        given_id, given_secret = form.get("client_id"), form.get("client_secret")
        if not (
            isinstance(given_id, str)
            and isinstance(given_secret, str)
            and secrets.compare_digest(given_id, self.client_id)
            and secrets.compare_digest(given_secret, self.client_secret or "")
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._state.tokens[token] = time.monotonic() + self.token_lifetime
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime}
        )

    async def _stats(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def _mode(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
            self.set_mode(
                str(body["mode"]),
                seconds=body.get("seconds"),
                issue=body.get("issue"),
                status=body.get("status"),
                expression=body.get("expression"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        return JSONResponse({"mode": self.mode})


def _shape_problem(bundle: Any) -> str | None:
    """What makes this no message Bundle we can keep, or None."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return "the body is not a Bundle"
    if bundle.get("type") != "message":
        return "Bundle.type must be message"
    if not isinstance(bundle.get("id"), str) or not bundle["id"]:
        return "Bundle.id is missing: it is how a resend is recognised"
    entries = bundle.get("entry")
    first = entries[0] if isinstance(entries, list) and entries else None
    resource = first.get("resource") if isinstance(first, dict) else None
    if not isinstance(resource, dict) or resource.get("resourceType") != "MessageHeader":
        return "the first entry must be the MessageHeader"
    if not isinstance(resource.get("id"), str):
        return "MessageHeader.id is missing"
    return None


def _outcome(
    status: int, code: str, diagnostics: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


def _response(header: Json, code: str, source: str, outcome: Json | None = None) -> Json:
    """A response message Bundle answering ``header``."""
    answer: Json = {"identifier": header.get("id"), "code": code}
    outcome_url = f"urn:uuid:{uuid.uuid4()}"
    if outcome is not None:
        answer["details"] = {"reference": outcome_url}
    response_header: Json = {
        "resourceType": "MessageHeader",
        "id": str(uuid.uuid4()),
        "eventCoding": header.get("eventCoding"),
        "source": {"endpoint": source},
        "response": answer,
    }
    sender = (header.get("source") or {}).get("endpoint")
    if sender:
        response_header["destination"] = [{"endpoint": sender}]
    entries = [{"fullUrl": f"urn:uuid:{response_header['id']}", "resource": response_header}]
    if outcome is not None:
        entries.append({"fullUrl": outcome_url, "resource": outcome})
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "message",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        "entry": entries,
    }


def _rejection(
    bundle: Json, header: Json, issue: str, status: int, expression: list[str], source: str
) -> JSONResponse:
    """The refusal ``reject`` mode gives, echoing the person id in diagnostics (as some do)."""
    outcome: Json = {
        "resourceType": "OperationOutcome",
        "id": str(uuid.uuid4()),
        "issue": [
            {
                "severity": "error",
                "code": issue,
                "diagnostics": f"refused the message about {_person(bundle)}",
                **({"expression": expression} if expression else {}),
            }
        ],
    }
    if status == 200:
        return JSONResponse(_response(header, "fatal-error", source, outcome), media_type=FHIR_JSON)
    return JSONResponse(outcome, status_code=status, media_type=FHIR_JSON)


def _person(bundle: Json) -> str:
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
            ids = [i.get("value") for i in resource.get("identifier") or () if isinstance(i, dict)]
            names = [n.get("family") for n in resource.get("name") or () if isinstance(n, dict)]
            return f"patient {' '.join(map(str, ids + names))}"
    return "an unknown patient"
