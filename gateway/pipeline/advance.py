"""A validated notice's way on: consent, then route, then the delivery queue.

Run by the pipeline for a newly validated notice, and again whenever something changes what
the answer would be: a consent arrives or is withdrawn (gateway/pipeline/consents.py). Each
step is an event on the message's timeline, the consent decision with its reason included.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.consent.rules import PURPOSE_OF, ConsentDecision, Verdict, decide
from gateway.domain.content import Content, person_of
from gateway.domain.identifiers import birth_date, parse_person_id
from gateway.domain.model import NeedNotice, NoticeKind
from gateway.domain.receipt import ReceiptError, Refused
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline import receipts
from gateway.routing import HeldForOperator, Routed, route
from gateway.runtime import Runtime
from gateway.store import repository as repo
from gateway.transport import Command, command_record
from mappings.codes.kommune_register import kommune_register

ACTOR = "gateway"
#: where a message may stand when the consent answer can still change its way
#: where a message stands when consent and routing are (re)decided for it
_MAY_ROUTE = frozenset({MessageStatus.VALIDATED, MessageStatus.HELD_CONSENT, MessageStatus.DEAD})
UNDELIVERED = (
    MessageStatus.VALIDATED,
    MessageStatus.HELD_CONSENT,
    MessageStatus.HELD_ROUTING,
    MessageStatus.ROUTED,
    MessageStatus.RETRYING,
)


def consent_decision(
    conn: Connection, rt: Runtime, content: Content, recipient_kommune: str | None
) -> ConsentDecision:
    """The decision for this message now, from every consent on record for the person: for a
    notice the need-notice purpose, for a plan transfer the transfer purpose."""
    patient = person_of(content)
    person = parse_person_id(patient.person_id, allow_synthetic=True)
    return decide(
        PURPOSE_OF[content.kind],
        repo.consents_for(conn, rt.pseudonymize(patient.person_id)),
        at=rt.clock(),
        recipient_kommune=recipient_kommune,
        born=birth_date(person),
    )


def advance(
    conn: Connection,
    rt: Runtime,
    message: repo.MessageRow,
    notice: Content,
    *,
    actor: str = ACTOR,
) -> None:
    """Consent first, then route: held, stopped, refused, waiting for an operator, or queued.

    Routing is worked out before the consent decision only so that a consent naming a kommune
    can be checked against the recipient; nothing is routed before consent allows it.
    """
    try:
        routing: Routed | HeldForOperator | Refused = route(
            notice, rt.directory, kommune_register(), rt.clock().date(), rt.population
        )
    except Refused as refused:
        routing = refused
    recipient = routing.unit.kommune_nr if isinstance(routing, Routed) else None
    decision = consent_decision(conn, rt, notice, recipient)
    detail = f"{decision.verdict}: {decision.reason}"
    if decision.verdict is Verdict.DENY:
        error = ReceiptError(code="X99", detail=f"consent: {decision.reason}")
        receipts.reject(conn, rt, message, Stage.CONSENT, (error,), notice=notice)
        return
    if decision.verdict is Verdict.HOLD:
        if message.status not in (MessageStatus.VALIDATED, MessageStatus.DEAD):
            # still held, or already on its way under a consent that held then
            repo.add_event(conn, message.id, Stage.CONSENT, None, detail, actor)
        else:
            repo.set_status(
                conn,
                message,
                MessageStatus.HELD_CONSENT,
                Stage.CONSENT,
                detail,
                actor,
                reason=decision.reason,
            )
        return
    repo.add_event(conn, message.id, Stage.CONSENT, None, detail, actor)
    if message.status not in _MAY_ROUTE:
        return  # already on its way (routed, held for routing): consent still allows it
    if isinstance(routing, Refused):
        if any(e.code == "E21" for e in routing.errors):
            # no KE to deliver to: DEAD, so the operator can retry once the directory has one
            if message.status is MessageStatus.DEAD:
                reason = receipts.reason_text(routing.errors)
                repo.add_event(conn, message.id, Stage.ROUTE, None, f"still: {reason}", actor)
            else:
                receipts.dead(conn, rt, message, Stage.ROUTE, routing.errors, notice=notice)
        else:
            receipts.reject(conn, rt, message, Stage.ROUTE, routing.errors, notice=notice)
        return
    if isinstance(routing, HeldForOperator):
        repo.set_status(
            conn,
            message,
            MessageStatus.HELD_ROUTING,
            Stage.ROUTE,
            routing.reason,
            actor,
            reason=routing.reason,
        )
        return
    unit = routing.unit
    earlier = (
        _coordinator_notice(conn, rt, message, notice, unit.kommune_nr)
        if isinstance(notice, NeedNotice)
        else None
    )
    if earlier is not None:
        assert isinstance(notice, NeedNotice)
        notice = notice.model_copy(update={"existing_coordinator": True})
        repo.add_event(
            conn,
            message.id,
            Stage.ROUTE,
            None,
            f"the person already has a coordinator from kommune {unit.kommune_nr} (message "
            f"{earlier}): delivered with that flag set, a family has one coordinator",
            actor,
        )
    if routing.mapped:
        repo.add_event(conn, message.id, Stage.ROUTE, None, routing.mapped, actor)
    message = repo.set_status(
        conn,
        message,
        MessageStatus.ROUTED,
        Stage.ROUTE,
        f"to {unit.name} (kommune {unit.kommune_nr}, HER-id {unit.her_id}) via {unit.adapter}",
        actor,
        recipient_kommune=unit.kommune_nr,
        recipient_her_id=unit.her_id,
        recipient_adapter=unit.adapter,
        reason=None,
        canonical=notice.model_dump_json(),
        # a retried dead message is a new attempt: the stages' dedupe must let it through
        generation=message.generation + (message.status is MessageStatus.DEAD),
        attempts=0,
        failures=0,
        resends=0,
        next_attempt_at=None,
    )
    repo.add_outbox(
        conn,
        command_record(
            rt.topics.deliver,
            unit.kommune_nr,
            Command(message.id, message.generation),
            message.id,
        ),
    )


_COORDINATORS = frozenset({NoticeKind.KOORDINATOR, NoticeKind.BARNEKOORDINATOR})


def _coordinator_notice(
    conn: Connection, rt: Runtime, message: repo.MessageRow, notice: NeedNotice, kommune_nr: str
) -> str | None:
    """An earlier notice asking the same kommune for a coordinator for the same person, which
    reached it; None when there is none or this notice asks for no coordinator."""
    if notice.existing_coordinator or not _COORDINATORS & set(notice.requested):
        return None
    reached = repo.messages_of_person(
        conn,
        rt.pseudonymize(notice.patient.person_id),
        (MessageStatus.DELIVERED, MessageStatus.ACKNOWLEDGED),
    )
    for other in reached:
        if other.id == message.id or other.recipient_kommune != kommune_nr:
            continue
        if other.canonical and _COORDINATORS & set(
            NeedNotice.model_validate_json(other.canonical).requested
        ):
            return other.id
    return None
