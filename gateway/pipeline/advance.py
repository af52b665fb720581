"""A validated message's way on: consent, then route, then the delivery queue.

Run by the pipeline for a newly validated message, and again whenever something changes what
the answer would be: a consent arrives or is withdrawn (gateway/pipeline/consents.py). Each
step is an event on the message's timeline, the consent decision with its reason included.

A plan message also goes to the plan's other parties (gateway/plan_parties.py): one child
message per health trust that takes part, each with its own consent (``share-hf``), delivery,
retries and acknowledgement, so one slow party holds up no one. A plan *update* -- sent by the
KE that keeps the plan, naming no new kommune -- goes to those parties only.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway import plan_parties
from gateway.consent.rules import PURPOSE_OF, ConsentDecision, Verdict, decide
from gateway.domain.consent import ConsentPurpose
from gateway.domain.content import Content, person_of
from gateway.domain.identifiers import birth_date, parse_person_id
from gateway.domain.model import (
    CoordinatingUnit,
    HealthTrust,
    NeedNotice,
    NoticeKind,
    ReceivingUnit,
)
from gateway.domain.plan import PlanStatusMessage, PlanTransfer
from gateway.domain.receipt import ReceiptError, ReceiptStatus, Refused
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline import receipts
from gateway.routing import HeldForOperator, Routed, route
from gateway.runtime import Runtime
from gateway.store import repository as repo
from gateway.transport import Command, command_record
from mappings.codes.kommune_register import kommune_register

ACTOR = "gateway"
#: where a message stands when consent and routing are (re)decided for it
_MAY_ROUTE = frozenset(
    {
        MessageStatus.VALIDATED,
        MessageStatus.HELD_CONSENT,
        MessageStatus.HELD_ROUTING,
        MessageStatus.DEAD,
    }
)
UNDELIVERED = (
    MessageStatus.VALIDATED,
    MessageStatus.HELD_CONSENT,
    MessageStatus.HELD_ROUTING,
    MessageStatus.ROUTED,
    MessageStatus.RETRYING,
)


def consent_decision(
    conn: Connection,
    rt: Runtime,
    content: Content,
    recipient_kommune: str | None,
    purpose: ConsentPurpose | None = None,
) -> ConsentDecision:
    """The decision for this message now, from every consent on record for the person: for a
    notice the need-notice purpose, for a plan transfer the transfer purpose (unless the
    caller names another: the plan itself for an update, sharing for a party's copy)."""
    patient = person_of(content)
    person = parse_person_id(patient.person_id, allow_synthetic=True)
    return decide(
        purpose or PURPOSE_OF[content.kind],
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
    if message.parent_id is not None:
        if isinstance(notice, PlanStatusMessage):
            _advance_status(conn, rt, message, notice, actor)
        else:
            _advance_party_copy(conn, rt, message, notice, actor)
        return
    try:
        routing: Routed | HeldForOperator | Refused = route(
            notice, rt.directory, kommune_register(), rt.clock().date(), rt.population
        )
    except Refused as refused:
        routing = refused
    recipient = routing.unit.kommune_nr if isinstance(routing, Routed) else None
    update = isinstance(routing, Routed) and is_update(notice, routing.unit)
    decision = consent_decision(
        conn, rt, notice, recipient, ConsentPurpose.PLAN if update else None
    )
    if not _consent_allows(conn, rt, message, notice, decision, actor):
        return
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
        if message.status is MessageStatus.HELD_ROUTING:
            repo.add_event(conn, message.id, Stage.ROUTE, None, f"still: {routing.reason}", actor)
            return
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
    if update:
        assert isinstance(notice, PlanTransfer)
        _hand_to_parties(conn, rt, message, notice, unit, actor)
        return
    _queue(conn, rt, message, notice, unit, actor)
    copies = (
        _party_copies(conn, rt, message, notice, actor)
        if isinstance(notice, PlanTransfer)
        else _health_trust_copy(conn, rt, message, notice, actor)
        if isinstance(notice, NeedNotice) and notice.health_trust_takes_part
        else []
    )
    for child, content in copies:
        advance(conn, rt, child, content, actor=actor)


def is_update(content: Content, unit: CoordinatingUnit) -> bool:
    """A plan sent by the KE that keeps it and stays there: an update for the plan's parties,
    not a transfer (a plan is never delivered back to the KE that sent it)."""
    return (
        isinstance(content, PlanTransfer)
        and content.new_kommune_nr is None
        and content.sender.organisation.her_id == unit.her_id
    )


def _consent_allows(
    conn: Connection,
    rt: Runtime,
    message: repo.MessageRow,
    notice: Content,
    decision: ConsentDecision,
    actor: str,
) -> bool:
    """Act on the consent decision: stop (deny), hold, or let the message on (True) when it
    may still be routed."""
    detail = f"{decision.verdict}: {decision.reason}"
    if decision.verdict is Verdict.DENY:
        error = ReceiptError(code="X99", detail=f"consent: {decision.reason}")
        receipts.reject(conn, rt, message, Stage.CONSENT, (error,), notice=notice)
        return False
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
        return False
    repo.add_event(conn, message.id, Stage.CONSENT, None, detail, actor)
    # already on its way (routed, held for routing): consent still allows it
    return message.status in _MAY_ROUTE


def _queue(
    conn: Connection,
    rt: Runtime,
    message: repo.MessageRow,
    notice: Content,
    unit: ReceivingUnit,
    actor: str,
) -> repo.MessageRow:
    """ROUTED to ``unit``, with its delivery command in the outbox."""
    kommune_nr = unit.kommune_nr if isinstance(unit, CoordinatingUnit) else None
    where = f"kommune {kommune_nr}, " if kommune_nr else ""
    message = repo.set_status(
        conn,
        message,
        MessageStatus.ROUTED,
        Stage.ROUTE,
        f"to {unit.name} ({where}HER-id {unit.her_id}) via {unit.adapter}",
        actor,
        recipient_kommune=kommune_nr,
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
            kommune_nr or message.id,
            Command(message.id, message.generation),
            message.id,
        ),
    )
    return message


def _hand_to_parties(
    conn: Connection,
    rt: Runtime,
    message: repo.MessageRow,
    update: PlanTransfer,
    unit: CoordinatingUnit,
    actor: str,
) -> None:
    """An update goes to the plan's parties only; it is answered once they all have answered
    (gateway/pipeline/receipts.py), at once when the plan has no party to send it to."""
    copies = _party_copies(conn, rt, message, update, actor)
    message = repo.set_status(
        conn,
        message,
        MessageStatus.ROUTED,
        Stage.ROUTE,
        f"update of the plan {unit.name} keeps: to the plan's {len(copies)} other parties",
        actor,
        reason=None,
    )
    message = repo.set_status(
        conn,
        message,
        MessageStatus.DELIVERED,
        Stage.DELIVER,
        f"handed to {len(copies)} parties, each delivered on its own",
        actor,
    )
    if not copies:
        repo.set_status(
            conn,
            message,
            MessageStatus.ACKNOWLEDGED,
            Stage.ACKNOWLEDGE,
            "plan version recorded; the plan has no other party in the directory to send it to",
            actor,
        )
        receipts.issue(conn, rt, message, ReceiptStatus.OK, (), notice=update)
        return
    for child, content in copies:
        advance(conn, rt, child, content, actor=actor)


def _party_copies(
    conn: Connection, rt: Runtime, message: repo.MessageRow, transfer: PlanTransfer, actor: str
) -> list[tuple[repo.MessageRow, PlanTransfer]]:
    """One child message per party of the plan, each with the plan as that party may see it;
    made once (a message advanced again keeps the children it has)."""
    if repo.children_of(conn, message.id):
        return []
    copies = []
    for party in plan_parties.parties_of(transfer.plan, rt.directory):
        confidential = plan_parties.named_in_sharing(transfer.plan, party) and (
            consent_decision(conn, rt, transfer, None, ConsentPurpose.SHARE_CONFIDENTIAL).verdict
            is not Verdict.DENY
        )
        plan, left_out = plan_parties.view_for(
            transfer.plan, party.participants, confidential=confidential
        )
        content = transfer.model_copy(update={"plan": plan})
        note = (
            f"; left out (no § 19 h consent names its participants): {', '.join(left_out)}"
            if left_out
            else ""
        )
        child = _copy_for(
            conn,
            message,
            content,
            party.unit,
            f"the plan for {party.unit.name}, a party",
            note,
            actor,
        )
        copies.append((child, content))
    return copies


def _copy_for(
    conn: Connection,
    message: repo.MessageRow,
    content: Content,
    unit: HealthTrust,
    what: str,
    note: str,
    actor: str,
) -> repo.MessageRow:
    """A child of ``message`` carrying ``content`` to ``unit``, named on the parent's timeline
    (``note``, if any, on both)."""
    child = repo.insert_child(
        conn,
        message,
        canonical=content.model_dump_json(),
        recipient_her_id=unit.her_id,
        detail=f"{what} (from message {message.id}){note}",
        actor=actor,
    )
    repo.add_event(
        conn,
        message.id,
        Stage.ROUTE,
        None,
        f"to {unit.name} (HER-id {unit.her_id}) as message {child.id}{note}",
        actor,
    )
    return child


def _health_trust_copy(
    conn: Connection, rt: Runtime, message: repo.MessageRow, notice: NeedNotice, actor: str
) -> list[tuple[repo.MessageRow, NeedNotice]]:
    """The notice for the sending health trust's own KE, when the notice says the trust takes
    part; made once. A trust the directory does not list is noted on the timeline: the
    kommune still gets its notice."""
    if repo.children_of(conn, message.id):
        return []
    trust = rt.directory.health_trust_of(notice.sender.organisation)
    if trust is None:
        repo.add_event(
            conn,
            message.id,
            Stage.ROUTE,
            None,
            "the health trust takes part, but the sender's trust is not in the directory: its "
            "koordinerende enhet is not told by the gateway",
            actor,
        )
        return []
    what = f"the notice for {trust.name}'s koordinerende enhet, which takes part"
    return [(_copy_for(conn, message, notice, trust, what, "", actor), notice)]


def _advance_status(
    conn: Connection, rt: Runtime, message: repo.MessageRow, status: Content, actor: str
) -> None:
    """A status message about a plan goes to the unit that has the plan; it needs no consent
    of its own (gateway/pipeline/plan_status.py)."""
    if message.status not in _MAY_ROUTE:
        return
    entry = rt.directory.entry_by_her_id(message.recipient_her_id or 0)
    if entry is None:
        _no_unit(conn, rt, message, status, actor)
        return
    _queue(conn, rt, message, status, entry.unit, actor)


def _no_unit(
    conn: Connection, rt: Runtime, message: repo.MessageRow, content: Content, actor: str
) -> None:
    """DEAD with E21 (retryable once the directory has the unit again)."""
    error = ReceiptError(
        code="E21", detail=f"HER-id {message.recipient_her_id} is no active unit in the directory"
    )
    if message.status is MessageStatus.DEAD:
        detail = f"still: {receipts.reason_text((error,))}"
        repo.add_event(conn, message.id, Stage.ROUTE, None, detail, actor)
    else:
        receipts.dead(conn, rt, message, Stage.ROUTE, (error,), notice=content)


def _advance_party_copy(
    conn: Connection, rt: Runtime, message: repo.MessageRow, content: Content, actor: str
) -> None:
    """A party's copy: consent -- for a plan the person's consent to share it with the health
    trust; for a notice to the sending trust's own KE the notice's own -- then the trust's
    entry in the directory."""
    purpose = ConsentPurpose.SHARE_WITH_HF if isinstance(content, PlanTransfer) else None
    decision = consent_decision(conn, rt, content, None, purpose)
    if not _consent_allows(conn, rt, message, content, decision, actor):
        return
    entry = rt.directory.recipient_entry(None, message.recipient_her_id)
    if entry is None:
        _no_unit(conn, rt, message, content, actor)
        return
    _queue(conn, rt, message, content, entry.unit, actor)


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
