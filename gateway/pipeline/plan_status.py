"""Status messages about a plan to the units that have it (gateway/domain/plan.py,
``PlanStatusMessage``): the push form of news they would otherwise have to look up.

- **Transferred**: when the new kommune acknowledges a transfer, the old kommune's KE is told,
  so it can close its plan and hand over access (beside the AppRec its platform gets).
- **Consent withdrawn**: when the person withdraws (or refuses) the consent a delivered plan
  was shared under, each unit that has it is told to stop using it: the new kommune of a
  transfer (purpose ``transfer``), a health trust that got a copy (``share-hf``), and every one
  of them when the consent to the plan itself (``plan``) goes.

Each is a child message of the message it follows up (kind ``plan-status``), delivered,
retried and acknowledged like any other and shown on the operator's timeline; it needs no
consent of its own, since it tells a unit that has the plan what became of it. Made in the
caller's transaction.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection

from gateway.consent.rules import Verdict
from gateway.domain.consent import ConsentPurpose, ConsentRecord
from gateway.domain.content import load_content
from gateway.domain.model import MessageKind, Organisation, Sender
from gateway.domain.plan import PlanEvent, PlanStatusMessage, PlanTransfer
from gateway.domain.status import MessageStatus, Stage
from gateway.pipeline.advance import advance, consent_decision
from gateway.runtime import Runtime
from gateway.store import repository as repo

ACTOR = "gateway"
#: what a delivered plan message was shared under, by whether it is a party's copy
_SHARED_UNDER = {True: ConsentPurpose.SHARE_WITH_HF, False: ConsentPurpose.TRANSFER}
_HAS_IT = (MessageStatus.DELIVERED, MessageStatus.ACKNOWLEDGED)


def transferred(conn: Connection, rt: Runtime, transfer: repo.MessageRow) -> str | None:
    """Tell the old kommune's KE that its plan reached the new kommune; the status message's
    id, or None when the sender is no KE the directory can deliver to."""
    content = _plan_message(transfer)
    old = content.sender.organisation.her_id
    if old is None or rt.directory.entry_by_her_id(old) is None:
        # said on the timeline, not dropped in silence: the sender still has its AppRec
        repo.add_event(
            conn,
            transfer.id,
            Stage.ACKNOWLEDGE,
            None,
            "the sender is no KE in the directory: no status message to tell it, its receipt "
            "says the plan arrived",
            ACTOR,
        )
        return None
    unit = rt.directory.recipient_unit(transfer.recipient_kommune, transfer.recipient_her_id)
    return _send(
        conn,
        rt,
        transfer,
        content,
        PlanEvent.TRANSFERRED,
        old,
        new_kommune_nr=transfer.recipient_kommune,
        new_responsible=Organisation(name=unit.name, her_id=unit.her_id) if unit else None,
    )


def consent_withdrawn(
    conn: Connection, rt: Runtime, pseudonym: str, record: ConsentRecord
) -> list[str]:
    """After ``record`` (a withdrawal or refusal) is filed: tell each unit that has one of the
    person's plans under a consent that no longer holds; the status messages' ids.

    One per plan and unit (for its newest version), once: a unit told before is not told again.
    """
    if not record.refused and record.withdrawn_at is None:
        return []
    newest: dict[tuple[str, int], tuple[repo.MessageRow, PlanTransfer]] = {}
    for m in repo.messages_of_person(conn, pseudonym, _HAS_IT):
        if m.kind != MessageKind.PLAN_TRANSFER or m.recipient_her_id is None:
            continue  # an update handed to its parties: their copies are the ones delivered
        content = _plan_message(m)
        key = (content.plan.plan_id, m.recipient_her_id)
        if key not in newest or newest[key][1].plan.version <= content.plan.version:
            newest[key] = (m, content)
    sent = []
    for m, content in newest.values():
        purpose = _SHARED_UNDER[m.parent_id is not None]
        gone = [
            p
            for p in (purpose, ConsentPurpose.PLAN)
            if p in record.purposes
            and consent_decision(conn, rt, content, None, p).verdict is Verdict.DENY
        ]
        if not gone or _told(conn, m.id, PlanEvent.CONSENT_WITHDRAWN):
            continue
        assert m.recipient_her_id is not None
        sent.append(_send(conn, rt, m, content, PlanEvent.CONSENT_WITHDRAWN, m.recipient_her_id))
    return sent


def _plan_message(m: repo.MessageRow) -> PlanTransfer:
    assert m.canonical is not None
    content = load_content(m.kind, m.canonical)
    assert isinstance(content, PlanTransfer)
    return content


def _told(conn: Connection, message_id: str, event: PlanEvent) -> bool:
    return any(
        c.kind == MessageKind.PLAN_STATUS
        and c.canonical is not None
        and PlanStatusMessage.model_validate_json(c.canonical).event is event
        for c in repo.children_of(conn, message_id)
    )


def _send(
    conn: Connection,
    rt: Runtime,
    about: repo.MessageRow,
    content: PlanTransfer,
    event: PlanEvent,
    to_her_id: int,
    *,
    new_kommune_nr: str | None = None,
    new_responsible: Organisation | None = None,
) -> str:
    message_id = str(uuid.uuid4())
    status = PlanStatusMessage(
        message_ref=message_id,
        sent_at=rt.clock().replace(microsecond=0),
        sender=Sender(
            organisation=Organisation(
                name=rt.settings.gateway_name, her_id=rt.settings.gateway_her_id
            )
        ),
        patient=content.plan.patient,
        plan_id=content.plan.plan_id,
        version=content.plan.version,
        event=event,
        regarding=about.id,
        new_kommune_nr=new_kommune_nr,
        new_responsible=new_responsible,
    )
    child = repo.insert_child(
        conn,
        about,
        canonical=status.model_dump_json(),
        recipient_her_id=to_her_id,
        detail=f"status '{event}' of plan version {status.version} for HER-id {to_her_id} "
        f"(about message {about.id})",
        actor=ACTOR,
        kind=MessageKind.PLAN_STATUS,
        message_id=message_id,
    )
    repo.add_event(
        conn,
        about.id,
        Stage.ACKNOWLEDGE if event is PlanEvent.TRANSFERRED else Stage.CONSENT,
        None,
        f"status '{event}' sent to HER-id {to_her_id} as message {child.id}",
        ACTOR,
    )
    advance(conn, rt, child, status)
    return child.id
