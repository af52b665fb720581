"""The pipeline stage: validate -> consent -> route, for each message on the ingress topic.

Per batch of commands: one read transaction loads the messages, the CPU work (FHIR validation
and mapping) runs on a worker thread so the event loop keeps answering HTTP, and one write
transaction records every message's steps, its next outbox row and its dedupe mark. Each
message gets its own savepoint: one that fails leaves the others' effects standing.
"""

from __future__ import annotations

import asyncio
import logging
import traceback

import orjson
from sqlalchemy import Connection

from gateway import plan_history
from gateway.consent.rules import PURPOSE_OF
from gateway.domain.consent import ConsentPurpose
from gateway.domain.content import Incoming, load_content, person_of
from gateway.domain.model import MessageKind, NeedNotice
from gateway.domain.plan import PlanTransfer
from gateway.domain.receipt import Refused
from gateway.domain.status import MessageStatus, Stage
from gateway.logs import about_message
from gateway.pipeline import consents, receipts
from gateway.pipeline.advance import advance
from gateway.pipeline.ingest import read_msghead
from gateway.runtime import Runtime
from gateway.store import repository as repo
from gateway.transport import Command, Handler
from mappings.fhir.notice import bundle_to_notice
from mappings.fhir.plan import bundle_to_transfer
from mappings.plo.xmlsafe import parse_xml

log = logging.getLogger(__name__)

CONSUMER = "pipeline"
ACTOR = "gateway"
_READY = frozenset({MessageStatus.RECEIVED, MessageStatus.VALIDATED})
_VALID = {
    MessageKind.NEED_NOTICE: "valid need-for-IP notice",
    MessageKind.PLAN_TRANSFER: "valid plan transfer",
}

Work = tuple[Command, repo.MessageRow, Incoming | Refused]


def read_content(rt: Runtime, raw: bytes, content_type: str, kind: str) -> Incoming | Refused:
    """The canonical content (notice or plan transfer), or the refusal that says what is
    wrong with the body.

    Mapping is pure, so any other failure comes from the input too: it is refused (and logged
    as a fault of ours to look at) rather than retried forever.
    """
    try:
        if content_type in receipts.XML_TYPES:
            return _read_xml(rt, raw, MessageKind(kind))
        return _read(rt, raw, MessageKind(kind))
    except Refused as r:
        return r
    except Exception as e:
        # Where, not what: the exception's text may quote the input.
        where = traceback.extract_tb(e.__traceback__)[-1]
        log.error(
            "pipeline: unexpected %s reading a message at %s:%s",
            type(e).__name__,
            where.filename,
            where.lineno,
        )
        return Refused.one("X99", f"the message could not be read ({type(e).__name__})")


def _read_xml(rt: Runtime, raw: bytes, kind: MessageKind) -> Incoming:
    """A MsgHead ingest has checked against the schemas; read it again into its content."""
    root = parse_xml(raw, max_bytes=max(rt.settings.max_body_bytes, len(raw)))
    content, _ = read_msghead(root, kind, rt.settings.accept_synthetic_ids)
    return content


def _read(rt: Runtime, raw: bytes, kind: MessageKind) -> Incoming:
    try:
        bundle = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Refused.one("T01", "body is not well-formed JSON") from None
    allow = rt.settings.accept_synthetic_ids
    if kind is MessageKind.PLAN_TRANSFER:
        return bundle_to_transfer(bundle, allow_synthetic_ids=allow)
    return bundle_to_notice(bundle, allow_synthetic_ids=allow)


def handler(rt: Runtime) -> Handler:
    async def handle(commands: list[Command]) -> None:
        rows, raws = await rt.db.read(_load, [c.message_id for c in commands])
        todo = [
            (c, rows[c.message_id], raws[c.message_id])
            for c in commands
            if c.message_id in rows and rows[c.message_id].status in _READY
        ]
        if not todo:
            return
        outcomes = await asyncio.to_thread(
            lambda: [read_content(rt, raw, m.content_type, m.kind) for _, m, raw in todo]
        )
        work = [(c, m, o) for (c, m, _), o in zip(todo, outcomes, strict=True)]
        await rt.db.write(_record_all, rt, work)
        rt.committed()

    return handle


def _load(conn: Connection, ids: list[str]) -> tuple[dict[str, repo.MessageRow], dict[str, bytes]]:
    return repo.get_messages(conn, ids), repo.get_raws(conn, ids)


def _record_all(conn: Connection, rt: Runtime, work: list[Work]) -> None:
    for command, message, outcome in work:
        try:
            with about_message(message.id), conn.begin_nested():
                _record(conn, rt, command, message, outcome)
        except repo.StaleStatus:
            pass  # another worker moved it on; its effect stands
        except Exception as e:
            log.error("pipeline: message %s not recorded (%s)", message.id, type(e).__name__)


def _record(
    conn: Connection,
    rt: Runtime,
    command: Command,
    message: repo.MessageRow,
    outcome: Incoming | Refused,
) -> None:
    if not repo.claim(conn, CONSUMER, command.ref):
        return
    if message.parent_id is not None and message.canonical is not None:
        # made by the gateway from another message (a party's copy, a status message): no
        # body of its own, its canonical form is its content. Advanced where it is made; it
        # comes here only if recovery finds it VALIDATED.
        advance(conn, rt, message, load_content(message.kind, message.canonical))
        return
    if isinstance(outcome, Refused):
        receipts.reject(conn, rt, message, Stage.VALIDATE, outcome.errors)
        return
    notice = outcome
    person_id = person_of(notice).person_id
    if message.status is MessageStatus.RECEIVED:
        if isinstance(notice, PlanTransfer):
            older = plan_history.refusal(conn, notice.plan)
            if older is not None:
                receipts.reject(conn, rt, message, Stage.VALIDATE, (older,), notice=notice)
                return
        message = repo.set_status(
            conn,
            message,
            MessageStatus.VALIDATED,
            Stage.VALIDATE,
            _VALID[notice.kind],
            ACTOR,
            canonical=notice.model_dump_json(),
            # from the checked id: the one ingest saw may have been written differently
            patient_pseudonym=rt.pseudonymize(person_id),
            sender_her_id=notice.sender.organisation.her_id,
        )
        if isinstance(notice, PlanTransfer):
            plan_history.record(conn, notice.plan, message.id)
    # the consent the message carries goes into the registry like any other: a notice's
    # for the notice, a plan's for the plan (a transfer needs its own transfer consent)
    attestation, purpose = (
        (notice.consent, PURPOSE_OF[notice.kind])
        if isinstance(notice, NeedNotice)
        else (notice.plan.consent, ConsentPurpose.PLAN)
    )
    if attestation is not None:
        record = consents.attested(attestation, purpose, message.id, rt.clock())
        pseudonym = rt.pseudonymize(person_id)
        # filing looks again at the person's waiting messages: this one included
        consents.file_consent(conn, rt, pseudonym, record, message.id)
        current = repo.get_message(conn, message.id)
        if current is None or current.status is not MessageStatus.VALIDATED:
            return
        message = current
    advance(conn, rt, message, notice)
