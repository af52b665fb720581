"""The consent registry at work: consents come in, held messages go on or are stopped.

A consent reaches the gateway inside a message (the notice's Consent / Samtykke) or on its own
(``POST /fhir/Consent``). Either way it is filed under the person's pseudonym and every message
of that person that has not yet been delivered is looked at again in the same transaction:
one held for consent is released when the consent allows it, one whose consent was refused or
withdrawn is stopped. Messages held longer than the hold period are rejected with a receipt
that says why (``expire_holds``). Nothing is dropped: each outcome is a status and an event.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import uuid

from sqlalchemy import Connection

from gateway.domain.consent import ConsentPurpose, ConsentRecord
from gateway.domain.content import load_content
from gateway.domain.model import ConsentAttestation
from gateway.domain.receipt import ReceiptError
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline import plan_status, receipts
from gateway.pipeline.advance import UNDELIVERED, advance
from gateway.runtime import Runtime
from gateway.store import repository as repo

log = logging.getLogger(__name__)

ACTOR = "gateway"
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_NS = uuid.UUID("0b6a4f1e-7c2d-4e8a-9f3b-5d1c2e3f4a5b")


def attested(
    attestation: ConsentAttestation, purpose: ConsentPurpose, source: str, at: dt.datetime
) -> ConsentRecord:
    """The record for a consent a message attests; its reference is its id when it can be."""
    reference = attestation.reference
    consent_id = (
        reference
        if reference and _ID.match(reference)
        else str(uuid.uuid5(_NS, f"{source}/{purpose}/{reference or ''}"))
    )
    return ConsentRecord(
        id=consent_id,
        purposes=(purpose,),
        given_by=attestation.given_by,
        lacks_capacity_reason=attestation.lacks_capacity_reason,
        given_on=attestation.given_on,
        recorded_at=at,
    )


def file_consent(
    conn: Connection, rt: Runtime, pseudonym: str, record: ConsentRecord, source: str
) -> int:
    """File ``record`` and look again at the person's undelivered messages; how many moved."""
    if not repo.save_consent(conn, pseudonym, record, source):
        return 0
    # a consent decision is on the audit log: who filed it, for which person (the pseudonym's
    # start), what it says; never the person's id or the giver's reasons
    state = "withdrawn" if record.withdrawn_at else "refused" if record.refused else "given"
    purposes = " ".join(p.value for p in record.purposes)
    repo.audit(
        conn, source[:128], "consent-filed", repo.person_target(pseudonym), f"{state}: {purposes}"
    )
    moved = 0
    for message in repo.messages_of_person(conn, pseudonym, UNDELIVERED):
        if message.canonical is None:
            continue
        notice = load_content(message.kind, message.canonical)
        with conn.begin_nested():
            before = message.status
            advance(conn, rt, message, notice)
            after = repo.get_message(conn, message.id)
            moved += after is not None and after.status is not before
    # the units that already have a plan under a consent now withdrawn are told
    plan_status.consent_withdrawn(conn, rt, pseudonym, record)
    return moved


def _expire(conn: Connection, rt: Runtime) -> list[str]:
    hold = dt.timedelta(days=rt.settings.consent_hold_days)
    expired = []
    for message in repo.held_before(conn, MessageStatus.HELD_CONSENT, rt.clock() - hold):
        notice = load_content(message.kind, message.canonical) if message.canonical else None
        detail = (
            f"no valid consent arrived within {rt.settings.consent_hold_days:g} days "
            f"({message.reason or 'held for consent'})"
        )
        with conn.begin_nested():
            receipts.reject(
                conn,
                rt,
                message,
                Stage.CONSENT,
                (ReceiptError(code="X99", detail=f"consent: {detail}"),),
                notice=notice,
                actor=ACTOR,
            )
        expired.append(message.id)
    return expired


async def expire_holds(rt: Runtime) -> list[str]:
    """Reject messages held for consent longer than the hold period; their ids."""
    expired = await rt.db.write(_expire, rt)
    if expired:
        rt.committed()
        log.info("consent: %d held messages rejected after the hold period", len(expired))
    return expired


async def run(rt: Runtime, *, interval: float) -> None:
    """Check the hold period every ``interval`` seconds until cancelled."""
    while True:
        try:
            await expire_holds(rt)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("consent hold check failed (%s); next in %ss", type(e).__name__, interval)
        await asyncio.sleep(interval)
