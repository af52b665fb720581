"""Ingest: keep the message, queue it, answer at once.

FHIR: only what can be judged without the FHIR models is judged here (well-formed JSON, a
message Bundle with a MessageHeader and an id): the answer comes in milliseconds and the full
checks run in the pipeline. XML (MsgHead): checked whole here, since lxml and the XSDs are
fast. Whatever comes in is stored first, refused input included, so nothing a sender sent is
ever lost.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from lxml import etree
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from gateway.auth import spoofing
from gateway.domain.consent import ConsentRecord
from gateway.domain.content import Incoming, person_of
from gateway.domain.model import MessageKind, Patient
from gateway.domain.receipt import Receipt, ReceiptError, Refused
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline import consents, receipts
from gateway.runtime import Runtime
from gateway.store import repository as repo
from gateway.transport import Command, command_record
from mappings.fhir.notice import EVENT_NEED_NOTICE, patient_identifier
from mappings.fhir.plan import EVENT_PLAN_TRANSFER
from mappings.plo import namespaces as ns
from mappings.plo.consent import MSG_TYPE as CONSENT_MSG_TYPE
from mappings.plo.consent import msghead_to_consent
from mappings.plo.msghead import Envelope, code_value
from mappings.plo.notice import MSG_TYPE as NOTICE_MSG_TYPE
from mappings.plo.notice import msghead_to_notice
from mappings.plo.plan import MSG_TYPE as PLAN_MSG_TYPE
from mappings.plo.plan import msghead_to_transfer
from mappings.plo.xmlsafe import parse_xml

log = logging.getLogger(__name__)

_MESSAGE_REF = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
#: what a MsgInfo/Type code looks like (8279); anything else is not echoed back
_MSG_TYPE_CODE = re.compile(r"^[A-Z0-9_]{1,40}$")
#: the MsgHead types taken, and the kind of message each is
MSG_TYPE_KINDS: dict[str, MessageKind] = {
    NOTICE_MSG_TYPE[0]: MessageKind.NEED_NOTICE,
    PLAN_MSG_TYPE[0]: MessageKind.PLAN_TRANSFER,
    CONSENT_MSG_TYPE[0]: MessageKind.CONSENT,
}
HANDLED_MSG_TYPES = tuple(MSG_TYPE_KINDS)
#: the FHIR MessageHeader.eventCoding codes taken, and the kind of message each is
EVENT_KINDS: dict[str, MessageKind] = {
    EVENT_NEED_NOTICE: MessageKind.NEED_NOTICE,
    EVENT_PLAN_TRANSFER: MessageKind.PLAN_TRANSFER,
}
#: real FHIR messages nest a dozen levels; the FHIR models recurse on nesting
MAX_JSON_DEPTH = 48


@dataclass(frozen=True)
class Accepted:
    message_id: str
    status: MessageStatus
    #: the sender sent this message (same source endpoint and MessageHeader.id) before
    duplicate: bool = False


@dataclass(frozen=True)
class ConsentFiled:
    """A consent statement (MsgHead ``IP_SAMTYKKE``) filed in the registry: no message for
    the pipeline, the person's waiting messages looked at again."""

    consent_id: str
    #: the person's waiting messages it moved on (released, or stopped)
    moved: int
    envelope: Envelope


class IngestRefused(Exception):
    """Refused at the door; the message is stored as REJECTED with ``receipt``."""

    def __init__(self, receipt: Receipt) -> None:
        super().__init__(receipts.reason_text(receipt.errors))
        self.receipt = receipt
        self.message_id = str(receipt.gateway_message_id)
        self.errors = receipt.errors


class SenderSpoofed(IngestRefused):
    """The message's sender is not the organisation the caller's token names: kept as
    REJECTED like any refusal, answered 403 ``sender-spoofed``, and on the audit log."""


#: what a spoofed message's receipt says (8221 has no code for it; X99 carries the words)
SPOOFED = ReceiptError(
    code="X99",
    detail="sender-spoofed: the sender in the message is not the organisation the caller's "
    "token names",
)


#: a source endpoint and message id another client already sent with
TAKEN_ID = ReceiptError(
    code="X99",
    detail="this source endpoint and message id were already used by another sender; "
    "send with a new message id",
)


async def _check_sender(
    rt: Runtime,
    named: list[spoofing.Named],
    organisations: frozenset[str] | None,
    body: bytes,
    content_type: str,
    actor: str,
    kind: MessageKind,
) -> None:
    if organisations is None:
        return  # came in over a transport that checks its sender itself (NHN, signed)
    sender = spoofing.sender_orgnrs(named, rt.directory)
    if not spoofing.speaks_for(organisations, sender):
        receipt = await store_refused(rt, body, content_type, actor, (SPOOFED,), kind=kind)
        raise SenderSpoofed(receipt)


def _envelope(body: bytes) -> tuple[dict[str, Any], str, str, MessageKind]:
    """The Bundle, its source endpoint, the sender's message id and the message's kind (by
    its event; an unknown event reads as a notice, whose mapping then says what is wrong),
    or Refused."""
    try:
        bundle = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Refused.one("T01", "body is not well-formed JSON") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise Refused.one("T02", "body must be a FHIR Bundle")
    if _too_deep(bundle, MAX_JSON_DEPTH):
        raise Refused.one("T02", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if bundle.get("type") != "message":
        raise Refused.one("T02", "Bundle.type must be 'message'")
    entries = bundle.get("entry")
    first = entries[0] if isinstance(entries, list) and entries else None
    header = first.get("resource") if isinstance(first, dict) else None
    if not isinstance(header, dict) or header.get("resourceType") != "MessageHeader":
        raise Refused.one("T02", "the first entry of a message Bundle must be a MessageHeader")
    header_id = header.get("id")
    if not isinstance(header_id, str) or not _MESSAGE_REF.match(header_id):
        raise Refused.one("E10", "MessageHeader.id is missing or not a valid id")
    source = header.get("source")
    endpoint = source.get("endpoint") if isinstance(source, dict) else None
    if not isinstance(endpoint, str) or not endpoint.strip() or len(endpoint) > 256:
        raise Refused.one("T02", "MessageHeader.source.endpoint is missing")
    event = header.get("eventCoding")
    code = event.get("code") if isinstance(event, dict) else None
    kind = EVENT_KINDS.get(code, MessageKind.NEED_NOTICE) if isinstance(code, str) else None
    return bundle, endpoint, header_id, kind or MessageKind.NEED_NOTICE


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return False


async def store_refused(
    rt: Runtime,
    body: bytes,
    content_type: str,
    actor: str,
    errors: tuple[ReceiptError, ...],
    *,
    kind: MessageKind = MessageKind.NEED_NOTICE,
) -> Receipt:
    """Keep refused input as a REJECTED message with its receipt, for the operator to see."""

    def tx(conn: Connection) -> Receipt:
        message_id = repo.insert_message(
            conn,
            kind=kind.value,
            status=MessageStatus.RECEIVED,
            content_type=content_type[:64],
            raw=body,
            actor=actor,
            detail="received",
        )
        message = repo.get_message(conn, message_id)
        assert message is not None
        return receipts.reject(conn, rt, message, Stage.INGEST, errors)

    receipt = await rt.db.write_grouped(tx)
    rt.committed()
    return receipt


async def accept_fhir(
    rt: Runtime, body: bytes, content_type: str, actor: str, organisations: frozenset[str]
) -> Accepted:
    """``organisations``: those the caller's token speaks for; the sender must be one."""
    try:
        bundle, endpoint, header_id, kind = _envelope(body)
    except Refused as r:
        raise IngestRefused(await store_refused(rt, body, content_type, actor, r.errors)) from None
    named = spoofing.fhir_sender(bundle)
    await _check_sender(rt, named, organisations, body, content_type, actor, kind)
    return await _keep(
        rt, body, content_type, actor, endpoint, header_id, patient_identifier(bundle), kind
    )


async def accept_plo(
    rt: Runtime,
    body: bytes,
    content_type: str,
    actor: str,
    organisations: frozenset[str] | None,
) -> Accepted | ConsentFiled:
    """A MsgHead: parsed hardened, checked against the official XSDs and read whole here.

    XML is cheap to check completely (parse + XSD + mapping ≈ 10k/s), so a sender learns at
    once, with the precise 8221 code, what is wrong; the pipeline only routes what is kept.
    A consent statement is filed at once, as ``POST /fhir/Consent`` files one.
    """
    try:
        read = _read_plo(rt, body)
    except Refused as r:
        raise IngestRefused(await store_refused(rt, body, content_type, actor, r.errors)) from None
    envelope = read.envelope if isinstance(read, _ConsentStatement) else read[1]
    kind = MessageKind.CONSENT if isinstance(read, _ConsentStatement) else read[0].kind
    named = spoofing.msghead_sender(envelope.sender)
    await _check_sender(rt, named, organisations, body, content_type, actor, kind)
    if isinstance(read, _ConsentStatement):
        patient, record, statement_envelope = read
        pseudonym = rt.pseudonymize(patient.person_id)
        moved = await rt.db.write(consents.file_consent, rt, pseudonym, record, f"xml {actor}")
        rt.committed()
        return ConsentFiled(record.id, moved, statement_envelope)
    content, envelope = read
    return await _keep(
        rt,
        body,
        content_type,
        actor,
        content.source_endpoint,
        envelope.msg_id,
        person_of(content).person_id,
        content.kind,
    )


class _ConsentStatement(NamedTuple):
    """What an ``IP_SAMTYKKE`` holds."""

    patient: Patient
    record: ConsentRecord
    envelope: Envelope


def _read_plo(rt: Runtime, body: bytes) -> tuple[Incoming, Envelope] | _ConsentStatement:
    if rt.schemas is None:
        raise Refused.one("X99", "XML ingest is not available: the KITH schemas are not installed")
    root = parse_xml(body, max_bytes=rt.settings.max_body_bytes)
    if root.tag != f"{{{ns.MSGHEAD}}}MsgHead":
        raise Refused.one("T10", "not a MsgHead v1.2 document (root element or namespace)")
    # the type first: a PLO or lab message fails our schema set, but what it needs to hear
    # is that this gateway does not take it
    msg_type = code_value(root.find(f"{{{ns.MSGHEAD}}}MsgInfo/{{{ns.MSGHEAD}}}Type"))
    if msg_type not in HANDLED_MSG_TYPES:
        shown = msg_type if msg_type and _MSG_TYPE_CODE.match(msg_type) else "this message type"
        raise Refused.one(
            "T10", f"{shown} is not handled here (takes {', '.join(HANDLED_MSG_TYPES)})"
        )
    errors = rt.schemas.errors(root)
    if errors:
        raise Refused(*errors)
    kind = MSG_TYPE_KINDS[msg_type]
    if kind is MessageKind.CONSENT:
        return _ConsentStatement(
            *msghead_to_consent(
                root, allow_synthetic_ids=rt.settings.accept_synthetic_ids, now=rt.clock()
            )
        )
    return read_msghead(root, kind, rt.settings.accept_synthetic_ids)


def read_msghead(
    root: etree._Element, kind: MessageKind, allow_synthetic_ids: bool
) -> tuple[Incoming, Envelope]:
    """The content of a MsgHead of a type taken here (checked against the schemas before)."""
    if kind is MessageKind.PLAN_TRANSFER:
        return msghead_to_transfer(root, allow_synthetic_ids=allow_synthetic_ids)
    return msghead_to_notice(root, allow_synthetic_ids=allow_synthetic_ids)


async def _keep(
    rt: Runtime,
    body: bytes,
    content_type: str,
    actor: str,
    endpoint: str,
    header_id: str,
    person_id: str | None,
    kind: MessageKind,
) -> Accepted:
    """Store the message and its outbox row in one transaction; a re-send gets the first id."""
    pseudonym = rt.pseudonymize(person_id) if person_id else None

    def tx(conn: Connection) -> Accepted | None:
        earlier = repo.find_by_sender_ref(conn, endpoint, header_id)
        if earlier:
            # only the sending client's own re-send (actors: gateway/api/deps.py caller)
            if repo.received_by(conn, earlier.id) != actor:
                return None
            return Accepted(earlier.id, earlier.status, duplicate=True)
        message_id = repo.insert_message(
            conn,
            kind=kind.value,
            status=MessageStatus.RECEIVED,
            content_type=content_type,
            raw=body,
            actor=actor,
            detail="received",
            sender_endpoint=endpoint,
            sender_message_id=header_id,
            patient_pseudonym=pseudonym,
        )
        key = pseudonym or message_id
        record = command_record(rt.topics.ingress, key, Command(message_id), message_id)
        repo.add_outbox(conn, record)
        return Accepted(message_id, MessageStatus.RECEIVED)

    try:
        accepted = await rt.db.write_grouped(tx)
    except IntegrityError:
        # Raced in twice on a database with concurrent writers; the first one won.
        earlier = await rt.db.read(repo.find_by_sender_ref, endpoint, header_id)
        if earlier is None:
            raise
        accepted = Accepted(earlier.id, earlier.status, duplicate=True)
        if await rt.db.read(repo.received_by, earlier.id) != actor:
            accepted = None
    if accepted is None:
        # another client's message has this source and id: neither its id nor its status
        # is told, and this one is kept for the operator rather than taken for a re-send
        receipt = await store_refused(rt, body, content_type, actor, (TAKEN_ID,), kind=kind)
        raise IngestRefused(receipt)
    if not accepted.duplicate:
        rt.committed()
    return accepted
