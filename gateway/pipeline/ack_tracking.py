"""Acknowledgement tracking: answers that arrive later through a platform (AppRecs polled from
adapters that collect them), and delivered messages whose answer does not come.

Delivered but not acknowledged within the ack timeout (``ack_timeout_seconds``, or the KE
entry's own ``ack_timeout_seconds`` setting for a platform known to answer slowly): resent
with the same message id (the recipient keeps one), up to ``ack_resends`` times, then DEAD
with the reason, for the operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid

from sqlalchemy import Connection

from gateway.delivery import Acknowledgement, CollectsAcknowledgements, ReceivesDocuments
from gateway.delivery_policy import Policy
from gateway.directory import RecipientEntry
from gateway.domain.content import load_content
from gateway.domain.receipt import ReceiptError
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline import acknowledge, ingest, receipts
from gateway.runtime import Runtime
from gateway.store import repository as repo
from gateway.transport import Command, command_record

log = logging.getLogger(__name__)

ACTOR = "gateway"


async def collect(rt: Runtime) -> int:
    """Poll every adapter that receives answers later; record them, then mark them handled
    (an answer is marked only once it is recorded, so none is lost with the process)."""
    recorded = 0
    for adapter in rt.adapters.loaded():
        if not isinstance(adapter, CollectsAcknowledgements):
            continue
        try:
            acks = await adapter.poll_acknowledgements()
        except Exception as e:
            log.warning("acknowledgements: polling %s failed (%s)", adapter.name, type(e).__name__)
            continue
        if acks:
            recorded += await rt.db.write(_record_all, rt, acks, adapter.name)
            rt.committed()
            await adapter.mark_handled(acks)
        if isinstance(adapter, ReceivesDocuments):
            await take_in(rt, adapter)
    return recorded


async def take_in(rt: Runtime, adapter: ReceivesDocuments) -> None:
    """Messages a platform brought for the gateway: taken in as a ``POST /plo`` would be (a
    refused one is kept as REJECTED with its code), then marked handled."""
    name = getattr(adapter, "name", "adapter")
    for document in adapter.take_inbound():
        if document.refused:
            # the adapter could not trust it (signature, certificate): kept as it came, REJECTED
            # with the adapter's codes, and never read further
            receipt = await ingest.store_refused(
                rt, document.body, document.content_type, f"adapter:{name}", document.refused
            )
            # an authentication failure on this path too: on the audit log
            codes = ",".join(e.code for e in document.refused)
            await rt.db.write(
                repo.audit,
                f"adapter:{name}",
                "refused",
                str(receipt.gateway_message_id),
                f"inbound {codes}",
            )
            await adapter.mark_inbound_handled([document])
            continue
        # a refused one is kept, REJECTED with its receipt, for the operator; any other
        # failure leaves it unread at the platform, to be taken on the next poll
        with contextlib.suppress(ingest.IngestRefused):
            # no token on this path: the message service vouches for the sender
            await ingest.accept_plo(
                rt, document.body, document.content_type, f"adapter:{name}", None
            )
        await adapter.mark_inbound_handled([document])


def _record_all(conn: Connection, rt: Runtime, acks: list[Acknowledgement], adapter: str) -> int:
    recorded = 0
    for ack in acks:
        message = repo.get_message(conn, ack.message_id) if _is_uuid(ack.message_id) else None
        if message is None:
            log.warning(
                "acknowledgements: %s answered a message the gateway does not know", adapter
            )
            continue
        try:
            with conn.begin_nested():
                result = acknowledge.record(
                    conn,
                    rt,
                    message,
                    ack.errors,
                    actor=f"adapter:{adapter}",
                    detail=ack.detail or f"acknowledged by the recipient ({adapter})",
                )
        except repo.StaleStatus:
            continue
        recorded += not result.repeated
    return recorded


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def resend_overdue(rt: Runtime) -> int:
    """Resend (or give up on) delivered messages whose acknowledgement is overdue."""
    policy = rt.settings.delivery_policy
    entries: list[RecipientEntry] = [*rt.directory.entries.values()]
    entries += rt.directory.health_trusts.values()
    shortest = min([policy.ack_timeout, *(_timeout_of(e, policy) for e in entries)])
    rows = await rt.db.read(
        repo.held_before, MessageStatus.DELIVERED, repo.now() - dt.timedelta(seconds=shortest)
    )
    now = repo.now()
    overdue = [
        m
        for m in rows
        # a plan update handed to its parties has no recipient of its own: its parties' own
        # messages are the ones tracked
        if m.recipient_her_id is not None
        and m.updated_at < now - dt.timedelta(seconds=_timeout(rt, m, policy))
    ]
    if not overdue:
        return 0
    await rt.db.write(_resend_or_dead, rt, policy, overdue)
    rt.committed()
    return len(overdue)


def _timeout(rt: Runtime, m: repo.MessageRow, policy: Policy) -> float:
    return _timeout_of(
        rt.directory.recipient_entry(m.recipient_kommune, m.recipient_her_id), policy
    )


def _timeout_of(entry: RecipientEntry | None, policy: Policy) -> float:
    value = entry.settings.get("ack_timeout_seconds") if entry else None
    return float(value) if isinstance(value, int | float) and value > 0 else policy.ack_timeout


def _resend_or_dead(
    conn: Connection, rt: Runtime, policy: Policy, overdue: list[repo.MessageRow]
) -> None:
    for m in overdue:
        waited = _timeout(rt, m, policy)
        try:
            with conn.begin_nested():
                if m.resends < policy.ack_resends:
                    after = repo.set_status(
                        conn,
                        m,
                        MessageStatus.RETRYING,
                        Stage.ACKNOWLEDGE,
                        f"no acknowledgement within {waited:g} s: resent with the same message "
                        f"id (resend {m.resends + 1} of {policy.ack_resends})",
                        ACTOR,
                        resends=m.resends + 1,
                        next_attempt_at=None,
                    )
                    repo.add_outbox(
                        conn,
                        command_record(
                            rt.topics.deliver,
                            m.recipient_kommune or m.id,
                            Command(after.id, after.generation, after.attempts),
                            m.id,
                        ),
                    )
                else:
                    error = ReceiptError(
                        code="X99",
                        detail=f"delivered but never acknowledged by the recipient (resent "
                        f"{m.resends} times); the operator can retry it",
                    )
                    notice = load_content(m.kind, m.canonical) if m.canonical else None
                    receipts.dead(conn, rt, m, Stage.ACKNOWLEDGE, (error,), notice=notice)
        except repo.StaleStatus:
            continue  # acknowledged meanwhile


async def run(rt: Runtime, *, interval: float) -> None:
    while True:
        try:
            await collect(rt)
            await resend_overdue(rt)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning(
                "acknowledgement tracking failed (%s); again in %ss", type(e).__name__, interval
            )
        await asyncio.sleep(interval)
