"""A simulated Norsk Helsenett message service, and behind it the KE systems that receive.

Tests and the demo need the whole round trip the ``nhn_msh`` adapter lives in — post, the
receiver's AppRec arriving later in the sender's unread list, marking it read — without
Norsk Helsenett, and with the failures a real one has. It implements the REST shape the
adapter assumes (see ``adapters/nhn_msh.py``; the AppRec endpoints' bodies are assumptions
too) for any HER-ids, in memory:

- ``POST /Messages``, ``GET /Messages?receiverHerIds=``, ``GET /Messages/{id}/business-document``,
  ``PUT /Messages/{id}/read/{receiverHerId}``;
- ``POST /Messages/{id}/apprec/{senderHerId}`` with ``{"appRecStatus": "1"|"2"|"3" (or
  "Ok", "Rejected", "OkErrorInMessagePart"), "appRecErrorList": [{"errorCode", "details"}]}``:
  the receiver (``senderHerId`` of the AppRec) answers; the AppRec 1.1 document goes to the
  original message's sender as a new unread message;
- ``GET /Messages/{id}/apprec``: the answers to a sent message;
- ``GET /_sim/stats`` (the counters as JSON) and ``POST /_sim/token`` (client-credentials
  tokens, checked only when the service is started with ``require_token``).

Every receiver HER-id has a simulated KE system behind it. In the ``ok`` mode it reads each
message at once and answers with an AppRec (status 1) to the sender's HER-id, ``OriginalMsgId``
= the MsgHead's ``MsgId``. Like a real receiving system it keeps one message per ``MsgId``:
a resend is counted as a redelivery, not stored again, but answered again (receivers answer
every copy, so a sender whose AppRec was lost gets one). The mode is set per receiver HER-id
or for all, at runtime, from another thread (:meth:`NhnMessageService.set_mode`).

Signed and encrypted documents (CMS, content type ``application/pkcs7-mime``; see
``gateway/cms.py``): given a :class:`~gateway.demo.pki.SimulatedPki`, each receiver opens what
it gets with its own key, as a real one would: decrypts, checks the signature and that the
signer's certificate chains to the PKI's CA, is valid now and is for signing. A document whose
signature or certificate does not hold is not kept; the receiver answers it with AppRec status
2 and ``S01``/``S02``/``S03``. The receivers' AppRecs to a document that came signed and
encrypted go back signed by the receiver and encrypted to the original sender's certificate
(the PKI's certificate for that HER-id). Plain documents (``application/xml``) are taken and
answered in plain, as before: the gateway sends plain only to peers marked so.

Simplifications: the service checks that the business document is a MsgHead with a ``MsgId``
(400 otherwise), and one it cannot open (no key for the receiver, or not for the receiver's
key, or damaged) is refused with 400 too: the real service carries encrypted documents blind
and leaves both to the receiver, which could not answer a document it cannot read.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import secrets
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.cms import CONTENT_TYPE, CmsRefused, is_cms, open_sealed, seal
from gateway.demo.pki import SimulatedPki
from gateway.demo.platforms.server import ThreadedServer
from gateway.domain.model import Organisation
from gateway.domain.receipt import Receipt, ReceiptError, ReceiptStatus, Refused
from mappings.plo import namespaces as ns
from mappings.plo.apprec import Version, receipt_to_apprec
from mappings.plo.msghead import read_datetime, read_organisation
from mappings.plo.xmlsafe import parse_xml, text_of

Mode = Literal["ok", "unavailable", "slow", "reject", "ok_with_errors", "never_ack"]
MODES: tuple[Mode, ...] = ("ok", "unavailable", "slow", "reject", "ok_with_errors", "never_ack")

_M = f"{{{ns.MSGHEAD}}}"
_MAX_DOCUMENT = 10 * 1024 * 1024
_STATUS_NAMES = {
    "1": ReceiptStatus.OK,
    "ok": ReceiptStatus.OK,
    "2": ReceiptStatus.REJECTED,
    "rejected": ReceiptStatus.REJECTED,
    "3": ReceiptStatus.OK_WITH_ERRORS,
    "okerrorinmessagepart": ReceiptStatus.OK_WITH_ERRORS,
}


@dataclass(frozen=True)
class Behaviour:
    """What the service and one receiver's KE system do with a message.

    ``ok``: stored, read and answered with AppRec status 1. ``unavailable``: 503 to the post.
    ``slow``: like ``ok`` after ``delay`` seconds. ``reject``: AppRec status 2 with ``code``
    (8221). ``ok_with_errors``: status 3 with ``code``. ``never_ack``: stored, never read,
    never answered.
    """

    mode: Mode = "ok"
    code: str = "E35"
    delay: float = 1.0
    apprec_version: Version = "1.1"


@dataclass(frozen=True)
class Stats:
    #: every POST /Messages, also those refused (503, 400)
    posts: int
    #: MsgId -> how many times it arrived at a receiver
    received: dict[str, int]
    #: messages the receivers keep (one per receiver and MsgId)
    distinct: int
    #: arrivals of a MsgId the receiver already had
    redeliveries: int
    #: logical messages a receiver keeps under more than one MsgId (a duplicate in effect)
    duplicates_in_effect: int
    apprecs_sent: int
    #: posts that came signed and encrypted (CMS) and opened
    sealed: int = 0
    #: documents a receiver refused for their signature or certificate (S01/S02/S03)
    refused_signatures: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "posts": self.posts,
            "received": dict(self.received),
            "distinct": self.distinct,
            "redeliveries": self.redeliveries,
            "duplicatesInEffect": self.duplicates_in_effect,
            "apprecsSent": self.apprecs_sent,
            "sealed": self.sealed,
            "refusedSignatures": self.refused_signatures,
        }


@dataclass
class _Message:
    id: str
    sender_her_id: int
    receivers: tuple[int, ...]
    #: as posted (CMS, or a plain MsgHead)
    document: bytes
    content_type: str
    #: the MsgHead as its receiver read it (the same bytes when it came plain)
    plain: bytes
    read_by: set[int] = field(default_factory=set)
    #: the answers to this message, as GET /Messages/{id}/apprec returns them
    apprecs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Read:
    """What the simulated receiver reads from a MsgHead."""

    msg_id: str
    msg_type: str
    issued_at: dt.datetime | None
    receiver: Organisation | None
    sender: Organisation | None
    #: the hospital's own reference (or a hash of the text) that identifies the logical message
    logical_key: str


class _Refusal(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class NhnMessageService:
    """The simulated service and its receivers; thread-safe (served in its own thread)."""

    def __init__(
        self,
        *,
        port: int = 0,
        require_token: bool = False,
        client_secret: str | None = None,
        pki: SimulatedPki | None = None,
    ) -> None:
        self.require_token = require_token
        #: the receivers' keys and the CA they trust; None: plain documents only
        self.pki = pki
        #: what the token endpoint takes (a fresh one per service unless given)
        self.client_secret = client_secret or secrets.token_urlsafe(16)
        self._lock = threading.Lock()
        self._default = Behaviour()
        self._behaviours: dict[int, Behaviour] = {}
        self._messages: dict[str, _Message] = {}
        self._posts = 0
        self._received: Counter[str] = Counter()
        self._redeliveries = 0
        self._apprecs_sent = 0
        self._sealed = 0
        self._refused_signatures = 0
        #: (receiver, MsgId) -> the document the receiver keeps
        self._kept: dict[tuple[int, str], bytes] = {}
        #: (receiver, logical key) -> the MsgIds it was kept under
        self._logical: dict[tuple[int, str], set[str]] = {}
        self._tokens: set[str] = set()
        self.token_requests = 0
        #: GET /Messages calls (how often someone polled an unread list)
        self.list_requests = 0
        self.app = Starlette(
            routes=[
                Route("/Messages", self._post_message, methods=["POST"]),
                Route("/Messages", self._unread, methods=["GET"]),
                Route("/Messages/{id}/business-document", self._business_document),
                Route("/Messages/{id}/read/{her_id:int}", self._mark_read, methods=["PUT"]),
                Route("/Messages/{id}/apprec/{her_id:int}", self._post_apprec, methods=["POST"]),
                Route("/Messages/{id}/apprec", self._apprec_info, methods=["GET"]),
                Route("/_sim/stats", self._stats),
                Route("/_sim/token", self._token, methods=["POST"]),
            ]
        )
        self.server = ThreadedServer(self.app, port=port)

    # ------------------------------------------------------------------ running

    def start(self) -> str:
        """Serve (again, on the same port, with the same state); returns the base URL."""
        return self.server.start()

    def stop(self) -> None:
        self.server.stop()

    @property
    def base_url(self) -> str:
        return self.server.url

    @property
    def token_url(self) -> str:
        return f"{self.server.url}/_sim/token"

    # ------------------------------------------------------------------ controls

    def set_mode(
        self,
        mode: Mode,
        *,
        her_id: int | None = None,
        code: str | None = None,
        delay: float | None = None,
        apprec_version: Version | None = None,
    ) -> None:
        """Switch one receiver's behaviour (``her_id``), or the default for all others."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        with self._lock:
            base = self._default if her_id is None else self._behaviours.get(her_id, self._default)
            changes: dict[str, Any] = {"mode": mode}
            if code is not None:
                ReceiptError(code=code)  # a code the AppRec can carry
                changes["code"] = code
            if delay is not None:
                changes["delay"] = delay
            if apprec_version is not None:
                changes["apprec_version"] = apprec_version
            behaviour = replace(base, **changes)
            if her_id is None:
                self._default = behaviour
            else:
                self._behaviours[her_id] = behaviour

    def reset_modes(self) -> None:
        with self._lock:
            self._default = Behaviour()
            self._behaviours.clear()

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused from now on (401): a key rotation."""
        with self._lock:
            self._tokens.clear()

    def put_message(
        self,
        receiver_her_id: int,
        document: bytes,
        *,
        sender_her_id: int,
        content_type: str = "application/xml",
    ) -> str:
        """Leave any document in a receiver's unread list, as some other party would."""
        with self._lock:
            return self._store(sender_her_id, (receiver_her_id,), document, content_type, document)

    def put_sealed(self, receiver_her_id: int, document: bytes, *, sender_her_id: int) -> str:
        """Leave a document signed by ``sender_her_id`` and encrypted to ``receiver_her_id``
        (both key pairs from the PKI), as a party on the health network sends it."""
        pki = self._require_pki()
        sealed = seal(
            document,
            pki.identity(sender_her_id),
            pki.identity(receiver_her_id).certificate,
        )
        return self.put_message(
            receiver_her_id, sealed, sender_her_id=sender_her_id, content_type=CONTENT_TYPE
        )

    def _require_pki(self) -> SimulatedPki:
        if self.pki is None:
            raise RuntimeError("this simulated service was started without a PKI")
        return self.pki

    # ------------------------------------------------------------------ observing

    def stats(self) -> Stats:
        with self._lock:
            return Stats(
                posts=self._posts,
                received=dict(self._received),
                distinct=len(self._kept),
                redeliveries=self._redeliveries,
                duplicates_in_effect=sum(1 for ids in self._logical.values() if len(ids) > 1),
                apprecs_sent=self._apprecs_sent,
                sealed=self._sealed,
                refused_signatures=self._refused_signatures,
            )

    @property
    def posts(self) -> int:
        return self.stats().posts

    @property
    def received(self) -> dict[str, int]:
        return self.stats().received

    @property
    def distinct(self) -> int:
        return self.stats().distinct

    @property
    def redeliveries(self) -> int:
        return self.stats().redeliveries

    @property
    def duplicates_in_effect(self) -> int:
        return self.stats().duplicates_in_effect

    @property
    def apprecs_sent(self) -> int:
        return self.stats().apprecs_sent

    def unread(self, her_id: int) -> list[str]:
        """NHN ids of the messages ``her_id`` has not read, oldest first."""
        with self._lock:
            return [m.id for m in self._messages.values() if _unread_by(m, her_id)]

    def document(self, nhn_id: str) -> bytes:
        """The document as it was posted (CMS when it came signed and encrypted)."""
        with self._lock:
            return self._messages[nhn_id].document

    def content_type(self, nhn_id: str) -> str:
        with self._lock:
            return self._messages[nhn_id].content_type

    def opened(self, nhn_id: str) -> bytes:
        """The document as its receiver reads it: opened with the receiver's key if it came
        signed and encrypted (an AppRec to the gateway: with the gateway's key, from the PKI)."""
        with self._lock:
            message = self._messages[nhn_id]
        if not is_cms(message.content_type):
            return message.document
        pki = self._require_pki()
        [receiver] = message.receivers
        return open_sealed(message.document, [pki.identity(receiver)], pki.trust()).content

    def kept(self, her_id: int) -> dict[str, bytes]:
        """MsgId -> document, for what the receiver's system keeps (one per MsgId)."""
        with self._lock:
            return {msg_id: doc for (her, msg_id), doc in self._kept.items() if her == her_id}

    # ------------------------------------------------------------------ the API

    async def _post_message(self, request: Request) -> Response:
        with self._lock:
            self._posts += 1
        if (refused := self._unauthorised(request)) is not None:
            return refused
        try:
            body = await request.json()
            sender, receivers, document, content_type = _post_body(body)
            plain, refusal = self._open(receivers, document, content_type)
            read = _read_msghead(plain)
        except _Refusal as e:
            return JSONResponse({"error": e.error}, status_code=e.status)
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        behaviours = [self._behaviour(her) for her in receivers]
        if any(b.mode == "unavailable" for b in behaviours):
            return JSONResponse({"error": "service unavailable"}, status_code=503)
        delay = max((b.delay for b in behaviours if b.mode == "slow"), default=0.0)
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            nhn_id = self._store(sender, receivers, document, content_type, plain)
            message = self._messages[nhn_id]
            if is_cms(content_type):
                self._sealed += refusal is None
                self._refused_signatures += refusal is not None
            for her, behaviour in zip(receivers, behaviours, strict=True):
                if refusal is not None:
                    self._refuse(message, her, read, refusal, behaviour)
                else:
                    self._arrive(message, her, read, behaviour)
        return JSONResponse(nhn_id, status_code=201)

    async def _unread(self, request: Request) -> Response:
        with self._lock:
            self.list_requests += 1
        if (refused := self._unauthorised(request)) is not None:
            return refused
        try:
            wanted = {
                int(her)
                for value in request.query_params.getlist("receiverHerIds")
                for her in value.split(",")
            }
        except ValueError:
            return JSONResponse({"error": "receiverHerIds must be HER-ids"}, status_code=400)
        with self._lock:
            items = [
                {"id": m.id, "receiverHerId": her, "senderHerId": m.sender_her_id}
                for m in self._messages.values()
                for her in m.receivers
                if her in wanted and _unread_by(m, her)
            ]
        return JSONResponse(items)

    async def _business_document(self, request: Request) -> Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        with self._lock:
            message = self._messages.get(request.path_params["id"])
            if message is None:
                return JSONResponse({"error": "no such message"}, status_code=404)
            return JSONResponse(
                {
                    "businessDocument": base64.b64encode(message.document).decode("ascii"),
                    "contentType": message.content_type,
                    "contentTransferEncoding": "base64",
                }
            )

    async def _mark_read(self, request: Request) -> Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        her: int = request.path_params["her_id"]
        with self._lock:
            message = self._messages.get(request.path_params["id"])
            if message is None or her not in message.receivers:
                return JSONResponse({"error": "no such message for this HER-id"}, status_code=404)
            message.read_by.add(her)
        return Response(status_code=204)

    async def _post_apprec(self, request: Request) -> Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        her: int = request.path_params["her_id"]
        try:
            body = await request.json()
            status, errors = _apprec_body(body)
        except _Refusal as e:
            return JSONResponse({"error": e.error}, status_code=e.status)
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        with self._lock:
            message = self._messages.get(request.path_params["id"])
            if message is None or her not in message.receivers:
                return JSONResponse({"error": "no such message for this HER-id"}, status_code=404)
            try:
                read = _read_msghead(message.plain)
            except _Refusal as e:
                return JSONResponse({"error": e.error}, status_code=e.status)
            version = self._behaviour_locked(her).apprec_version
            nhn_id = self._answer(message, her, read, status, errors, version)
        return JSONResponse(nhn_id, status_code=201)

    async def _apprec_info(self, request: Request) -> Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        with self._lock:
            message = self._messages.get(request.path_params["id"])
            if message is None:
                return JSONResponse({"error": "no such message"}, status_code=404)
            return JSONResponse(list(message.apprecs))

    async def _stats(self, request: Request) -> Response:
        return JSONResponse(self.stats().to_json())

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        with self._lock:
            self.token_requests += 1
            if (
                form.get("grant_type") != "client_credentials"
                or form.get("client_secret") != self.client_secret
            ):
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            token = secrets.token_urlsafe(16)
            self._tokens.add(token)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 300})

    # ------------------------------------------------------------------ inside

    def _unauthorised(self, request: Request) -> Response | None:
        if not self.require_token:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            valid = scheme.lower() == "bearer" and token in self._tokens
        return None if valid else JSONResponse({"error": "invalid_token"}, status_code=401)

    def _behaviour(self, her_id: int) -> Behaviour:
        with self._lock:
            return self._behaviour_locked(her_id)

    def _behaviour_locked(self, her_id: int) -> Behaviour:
        return self._behaviours.get(her_id, self._default)

    def _store(
        self,
        sender: int,
        receivers: tuple[int, ...],
        document: bytes,
        content_type: str,
        plain: bytes,
    ) -> str:
        nhn_id = str(uuid.uuid4())
        self._messages[nhn_id] = _Message(nhn_id, sender, receivers, document, content_type, plain)
        return nhn_id

    def _open(
        self, receivers: tuple[int, ...], document: bytes, content_type: str
    ) -> tuple[bytes, ReceiptError | None]:
        """The MsgHead a receiver reads, and why it refuses it (a signature or certificate that
        does not hold), as the receiver's system would open it; _Refusal when it cannot."""
        if not is_cms(content_type):
            return document, None
        if self.pki is None:
            raise _Refusal(400, "this service's receivers take no signed and encrypted documents")
        if len(receivers) != 1:
            raise _Refusal(400, "a document encrypted to one receiver has one receiver")
        identity = self.pki.known(receivers[0])
        if identity is None:
            raise _Refusal(400, "the receiver has no key to open the document with")
        try:
            return open_sealed(document, [identity], self.pki.trust()).content, None
        except CmsRefused as e:
            if e.unverified is None:
                raise _Refusal(400, f"the receiver cannot open the document ({e.code})") from None
            return e.unverified, ReceiptError(code=e.code, detail=e.detail)

    def _refuse(
        self,
        message: _Message,
        her: int,
        read: _Read,
        refusal: ReceiptError,
        behaviour: Behaviour,
    ) -> None:
        """The receiver does not take a document it cannot trust: AppRec 2 with the code."""
        self._received[read.msg_id] += 1
        message.read_by.add(her)
        self._answer(
            message, her, read, ReceiptStatus.REJECTED, (refusal,), behaviour.apprec_version
        )

    def _arrive(self, message: _Message, her: int, read: _Read, behaviour: Behaviour) -> None:
        """The receiver's system takes the message: keeps it once per MsgId, answers each copy."""
        self._received[read.msg_id] += 1
        if (her, read.msg_id) in self._kept:
            self._redeliveries += 1
        else:
            self._kept[(her, read.msg_id)] = message.plain
            self._logical.setdefault((her, read.logical_key), set()).add(read.msg_id)
        if behaviour.mode == "never_ack":
            return
        message.read_by.add(her)
        status = {
            "reject": ReceiptStatus.REJECTED,
            "ok_with_errors": ReceiptStatus.OK_WITH_ERRORS,
        }.get(behaviour.mode, ReceiptStatus.OK)
        errors = () if status is ReceiptStatus.OK else (ReceiptError(code=behaviour.code),)
        self._answer(message, her, read, status, errors, behaviour.apprec_version)

    def _answer(
        self,
        message: _Message,
        her: int,
        read: _Read,
        status: ReceiptStatus,
        errors: tuple[ReceiptError, ...],
        version: Version,
    ) -> str:
        """Post ``her``'s AppRec for ``message`` to its sender, as a new unread message."""
        receiver_name = read.receiver.name if read.receiver else f"HER-id {her}"
        receipt = Receipt(
            generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
            sender=Organisation(name=receiver_name, her_id=her),
            receiver=read.sender,
            status=status,
            errors=errors,
            original_message_type=read.msg_type,
            original_message_id=read.msg_id,
            original_issued_at=read.issued_at,
        )
        apprec = document = receipt_to_apprec(receipt, version)
        content_type = "application/xml"
        sender_identity = self.pki.known(message.sender_her_id) if self.pki else None
        if self.pki is not None and is_cms(message.content_type) and sender_identity is not None:
            # answered as it came: signed by the receiver, encrypted to the sender
            document = seal(document, self.pki.identity(her), sender_identity.certificate)
            content_type = CONTENT_TYPE
        nhn_id = self._store(her, (message.sender_her_id,), document, content_type, apprec)
        message.apprecs.append(
            {
                "receiverHerId": her,
                "appRecStatus": status.value,
                "appRecErrorList": [
                    {"errorCode": e.code, "details": e.detail or e.text} for e in errors
                ],
                "messageId": nhn_id,
            }
        )
        self._apprecs_sent += 1
        return nhn_id


def _unread_by(message: _Message, her: int) -> bool:
    return her in message.receivers and her not in message.read_by


def _post_body(body: Any) -> tuple[int, tuple[int, ...], bytes, str]:
    if not isinstance(body, dict):
        raise _Refusal(400, "the body must be a JSON object")
    receivers = body.get("receiverHerIds")
    sender = body.get("senderHerId")
    if (
        not isinstance(receivers, list)
        or not receivers
        or not all(isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in receivers)
    ):
        raise _Refusal(400, "receiverHerIds must be a list of HER-ids")
    if not isinstance(sender, int) or isinstance(sender, bool) or sender <= 0:
        raise _Refusal(400, "senderHerId must be a HER-id")
    if str(body.get("contentTransferEncoding", "")).lower() != "base64":
        raise _Refusal(400, "contentTransferEncoding must be base64")
    encoded = body.get("businessDocument")
    if not isinstance(encoded, str):
        raise _Refusal(400, "businessDocument is missing")
    try:
        document = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise _Refusal(400, "businessDocument is not base64") from None
    content_type = body.get("contentType")
    return sender, tuple(receivers), document, str(content_type or "application/xml")


def _apprec_body(body: Any) -> tuple[ReceiptStatus, tuple[ReceiptError, ...]]:
    if not isinstance(body, dict):
        raise _Refusal(400, "the body must be a JSON object")
    status = _STATUS_NAMES.get(str(body.get("appRecStatus", "")).strip().lower())
    if status is None:
        raise _Refusal(400, "appRecStatus must be 1, 2 or 3 (Ok, Rejected, OkErrorInMessagePart)")
    raw = body.get("appRecErrorList") or []
    if not isinstance(raw, list):
        raise _Refusal(400, "appRecErrorList must be a list")
    try:
        errors = tuple(
            ReceiptError(code=str(e.get("errorCode")), detail=e.get("details"))
            for e in raw
            if isinstance(e, dict)
        )
    except ValueError:
        raise _Refusal(400, "appRecErrorList holds a code not in 8221") from None
    if status is not ReceiptStatus.OK and not errors:
        raise _Refusal(400, "a status other than 1 needs at least one error")
    return status, errors


def _read_msghead(document: bytes) -> _Read:
    try:
        root = parse_xml(document, max_bytes=_MAX_DOCUMENT)
    except Refused:
        raise _Refusal(400, "businessDocument is not XML") from None
    info = root.find(_M + "MsgInfo")
    msg_id = text_of(info.find(_M + "MsgId")) if info is not None else None
    if info is None or msg_id is None:
        raise _Refusal(400, "businessDocument is no MsgHead with a MsgId")
    type_el = info.find(_M + "Type")
    msg_type = (type_el.get("V") or "").strip() if type_el is not None else ""
    return _Read(
        msg_id=msg_id,
        msg_type=msg_type or "DIALOG_HELSEFAGLIG",
        issued_at=_issued_at(text_of(info.find(_M + "GenDate"))),
        receiver=_organisation(info, "Receiver"),
        sender=_organisation(info, "Sender"),
        logical_key=_logical_key(root, info, msg_id),
    )


def _issued_at(text: str | None) -> dt.datetime | None:
    try:
        return read_datetime(text, "MsgInfo/GenDate")
    except Refused:
        return None


def _organisation(info: etree._Element, tag: str) -> Organisation | None:
    element = info.find(f"{_M}{tag}/{_M}Organisation")
    if element is None:
        return None
    try:
        return read_organisation(element, tag)
    except Refused:
        return None


def _logical_key(root: etree._Element, info: etree._Element, msg_id: str) -> str:
    """What makes two MsgIds the same message: the sender's own reference in our content
    (absent there when it is the MsgId itself), else the patient and the readable text.

    A plan's reference stands in ``IndividuellPlan/Overforing``: without looking there, every
    plan (often without any text) for one person from one sender would count as one message.
    """
    sender = text_of(info.find(f"{_M}Sender/{_M}Organisation/{_M}Ident/{_M}Id")) or ""
    content = root.find(f".//{{{ns.IP}}}BehovForIP")
    if content is None and root.find(f".//{{{ns.IP}}}IndividuellPlan") is not None:
        content = root.find(f".//{{{ns.IP}}}IndividuellPlan/{{{ns.IP}}}Overforing")
        if content is None:
            return f"ref:{sender}:{msg_id}"
    if content is not None:
        reference = text_of(content.find(f"{{{ns.IP}}}AvsendersMeldingsId")) or msg_id
        return f"ref:{sender}:{reference}"
    patient = text_of(info.find(f"{_M}Patient/{_M}Ident/{_M}Id")) or ""
    text = "".join(
        "".join(element.itertext())
        for element in root.iter(f"{{{ns.DIALOG_1_1}}}TekstNotatInnhold")
    )
    digest = hashlib.sha256(f"{sender}\x00{patient}\x00{text}".encode()).hexdigest()
    return f"text:{digest}"
