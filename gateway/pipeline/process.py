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

from gateway.consent.rules import PURPOSE_OF
from gateway.domain.model import NeedNotice
from gateway.domain.receipt import Refused
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline import consents, receipts
from gateway.pipeline.advance import advance
from gateway.runtime import Runtime
from gateway.store import repository as repo
from gateway.transport import Command, Handler
from mappings.fhir.notice import bundle_to_notice
from mappings.plo.notice import msghead_to_notice
from mappings.plo.xmlsafe import parse_xml

log = logging.getLogger(__name__)

CONSUMER = "pipeline"
ACTOR = "gateway"
_READY = frozenset({MessageStatus.RECEIVED, MessageStatus.VALIDATED})

Work = tuple[Command, repo.MessageRow, NeedNotice | Refused]


def read_notice(rt: Runtime, raw: bytes, content_type: str) -> NeedNotice | Refused:
    """The canonical notice, or the refusal that says what is wrong with the body.

    Mapping is pure, so any other failure comes from the input too: it is refused (and logged
    as a fault of ours to look at) rather than retried forever.
    """
    try:
        if content_type in receipts.XML_TYPES:
            return _read_xml(rt, raw)
        return _read(rt, raw)
    except Refused as r:
        return r
    except Exception as e:
        # Where, not what: the exception's text may quote the input.
        where = traceback.extract_tb(e.__traceback__)[-1]
        log.error(
            "pipeline: unexpected %s reading a notice at %s:%s",
            type(e).__name__,
            where.filename,
            where.lineno,
        )
        return Refused.one("X99", f"the message could not be read ({type(e).__name__})")


def _read_xml(rt: Runtime, raw: bytes) -> NeedNotice:
    """A MsgHead ingest has checked against the schemas; read it again into the notice."""
    root = parse_xml(raw, max_bytes=max(rt.settings.max_body_bytes, len(raw)))
    notice, _ = msghead_to_notice(root, allow_synthetic_ids=rt.settings.accept_synthetic_ids)
    return notice


def _read(rt: Runtime, raw: bytes) -> NeedNotice:
    try:
        bundle = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Refused.one("T01", "body is not well-formed JSON") from None
    return bundle_to_notice(bundle, allow_synthetic_ids=rt.settings.accept_synthetic_ids)


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
            lambda: [read_notice(rt, raw, m.content_type) for _, m, raw in todo]
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
            with conn.begin_nested():
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
    outcome: NeedNotice | Refused,
) -> None:
    if not repo.claim(conn, CONSUMER, command.ref):
        return
    if isinstance(outcome, Refused):
        receipts.reject(conn, rt, message, Stage.VALIDATE, outcome.errors)
        return
    notice = outcome
    if message.status is MessageStatus.RECEIVED:
        message = repo.set_status(
            conn,
            message,
            MessageStatus.VALIDATED,
            Stage.VALIDATE,
            "valid need-for-IP notice",
            ACTOR,
            canonical=notice.model_dump_json(),
            # from the checked id: the one ingest saw may have been written differently
            patient_pseudonym=rt.pseudonymize(notice.patient.person_id),
        )
    if notice.consent is not None:
        # the consent the notice carries goes into the registry like any other
        record = consents.attested(notice.consent, PURPOSE_OF[notice.kind], message.id, rt.clock())
        pseudonym = rt.pseudonymize(notice.patient.person_id)
        # filing looks again at the person's waiting messages: this one included
        consents.file_consent(conn, rt, pseudonym, record, message.id)
        current = repo.get_message(conn, message.id)
        if current is None or current.status is not MessageStatus.VALIDATED:
            return
        message = current
    advance(conn, rt, message, notice)
