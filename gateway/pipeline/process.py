"""The pipeline stage: validate -> consent -> route, for each message on the ingress topic.

The CPU work (FHIR validation and mapping) runs before the write transaction; the transaction
then records every step's event, the next stage's outbox row and the dedupe mark together.
"""

from __future__ import annotations

import logging

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.consent import Verdict, decide
from gateway.domain.model import NeedNotice
from gateway.domain.receipt import Refused
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline import receipts
from gateway.routing import route
from gateway.runtime import Runtime
from gateway.store import repository as repo
from gateway.transport import Command, Handler, command_record
from mappings.fhir.notice import bundle_to_notice

log = logging.getLogger(__name__)

CONSUMER = "pipeline"
ACTOR = "gateway"
_READY = frozenset({MessageStatus.RECEIVED, MessageStatus.VALIDATED})


def read_notice(rt: Runtime, message: repo.MessageRow) -> NeedNotice:
    try:
        bundle = orjson.loads(message.raw)
    except orjson.JSONDecodeError:
        raise Refused.one("T01", "body is not well-formed JSON") from None
    return bundle_to_notice(bundle, allow_synthetic_ids=rt.settings.accept_synthetic_ids)


def handler(rt: Runtime) -> Handler:
    async def handle(command: Command) -> None:
        async with rt.db.read() as conn:
            message = await repo.get_message(conn, command.message_id)
        if message is None or message.status not in _READY:
            return
        try:
            notice: NeedNotice | None = read_notice(rt, message)
            refusal = None
        except Refused as r:
            notice, refusal = None, r

        try:
            async with rt.db.write() as conn:
                if not await repo.claim(conn, CONSUMER, command.ref):
                    return
                if refusal is not None or notice is None:
                    assert refusal is not None
                    await receipts.reject(rt, conn, message, Stage.VALIDATE, refusal.errors)
                else:
                    await _consent_and_route(rt, conn, message, notice)
        except repo.StaleStatus:
            return  # another worker moved it on; its effect stands
        rt.committed()

    return handle


async def _consent_and_route(
    rt: Runtime, conn: AsyncConnection, message: repo.MessageRow, notice: NeedNotice
) -> None:
    if message.status is MessageStatus.RECEIVED:
        message = await repo.set_status(
            conn,
            message,
            MessageStatus.VALIDATED,
            Stage.VALIDATE,
            "valid need-for-IP notice",
            ACTOR,
            canonical=notice.model_dump_json(),
        )
    decision = decide(notice)
    if decision.verdict is Verdict.HOLD:
        await repo.set_status(
            conn,
            message,
            MessageStatus.HELD_CONSENT,
            Stage.CONSENT,
            decision.reason,
            ACTOR,
            reason=decision.reason,
        )
        return
    await repo.add_event(conn, message.id, Stage.CONSENT, None, decision.reason, ACTOR)
    try:
        unit = route(notice, rt.directory)
    except Refused as r:
        await receipts.reject(rt, conn, message, Stage.ROUTE, r.errors, notice=notice)
        return
    message = await repo.set_status(
        conn,
        message,
        MessageStatus.ROUTED,
        Stage.ROUTE,
        f"to {unit.name} (kommune {unit.kommune_nr}, HER-id {unit.her_id}) via {unit.adapter}",
        ACTOR,
        recipient_kommune=unit.kommune_nr,
        recipient_her_id=unit.her_id,
        recipient_adapter=unit.adapter,
    )
    await repo.add_outbox(
        conn,
        command_record(
            rt.topics.deliver,
            unit.kommune_nr,
            Command(message.id, message.generation),
            message.id,
        ),
    )
