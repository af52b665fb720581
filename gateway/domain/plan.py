"""The individual plan (individuell plan, IP) as forskrift om habilitering og rehabilitering,
individuell plan og koordinator § 19 defines its content, and the message that carries it.

Each § 19 item has its own field, so a mapping can show that every item survives a format
(mappings/README.md has the table):

a) goals, resources and needs      ``goals``, ``resources``, ``needs``
b) who takes part                  ``participants``
c) the coordinator                 ``coordinator``
d) what each contributes           ``Participant.contribution``
e) measures, scope and owner       ``measures`` (``description``, ``scope``, ``owner``)
f) how measures are carried out    ``Measure.how``
g) plan period, evaluation dates   ``period_start``, ``period_end``, ``evaluations``
h) consent to the plan and to
   sharing confidential information ``consent``, ``sharing``
i) cooperation with other services ``cooperation``

Cross-references inside a plan (a measure's owner, who may see confidential information)
use ``key``s local to the plan, so formats with and without resource ids carry them alike.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from gateway.domain.model import (
    ConsentAttestation,
    ConsentGiver,
    CoordinatorKind,
    Instant,
    KommuneNr,
    MessageKind,
    MessageRef,
    Model,
    NonBlank,
    Organisation,
    Patient,
    Sender,
    Uri,
)

#: a key local to one plan: letters, digits, '-' and '.', as FHIR ids and XML ids can hold
Key = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9\-.]{0,63}$")]
HprNr = Annotated[int, Field(ge=1, lt=10**9)]


class PlanStatus(StrEnum):
    """Where the plan stands; ``closed`` plans carry the reason they were closed."""

    ACTIVE = "active"
    CLOSED = "closed"


class ParticipantKind(StrEnum):
    """Who a participant is, which decides how formats name them (§ 19 b)."""

    #: the person the plan is for
    PERSON = "person"
    #: pårørende, incl. those with parental responsibility
    NEXT_OF_KIN = "next-of-kin"
    #: health or care personnel, in the kommune or the specialist health service
    PROFESSIONAL = "professional"
    #: anyone else: a teacher, a NAV adviser, a support contact
    OTHER = "other"


class Participant(Model):
    """Someone who takes part in the plan work (§ 19 b) and what they contribute (§ 19 d)."""

    key: Key
    kind: ParticipantKind
    name: NonBlank
    #: their role in the plan work, in words ("fysioterapeut", "mor", "kontaktlærer")
    role: NonBlank | None = None
    #: HPR-nummer of health personnel
    hpr_nr: HprNr | None = None
    organisation: Organisation | None = None
    phone: NonBlank | None = None
    email: NonBlank | None = None
    #: § 19 d: what this participant contributes
    contribution: NonBlank | None = None


class Coordinator(Model):
    """§ 19 c: who is the person's coordinator (or the family's barnekoordinator)."""

    participant: Key
    kind: Literal[CoordinatorKind.KOORDINATOR, CoordinatorKind.BARNEKOORDINATOR] = (
        CoordinatorKind.KOORDINATOR
    )


class Goal(Model):
    """§ 19 a: a goal the person has set, in their own words where possible."""

    key: Key
    description: NonBlank
    target_date: dt.date | None = None


class Measure(Model):
    """§ 19 e-f: a measure (tiltak) with its scope, owner and how it is carried out."""

    key: Key
    description: NonBlank
    #: omfang: how much, how often ("2 timer per uke")
    scope: NonBlank | None = None
    #: the participant responsible for the measure
    owner: Key | None = None
    #: § 19 f: how the measure is carried out
    how: NonBlank | None = None
    #: the goals this measure serves
    goals: tuple[Key, ...] = ()
    start: dt.date | None = None
    end: dt.date | None = None


class SharingConsent(Model):
    """§ 19 h: consent to share confidential information with named participants."""

    given_by: ConsentGiver
    #: why the person cannot consent themselves, when next of kin consented in their place
    lacks_capacity_reason: NonBlank | None = None
    given_on: dt.date
    #: the participants who may see confidential information
    participants: tuple[Key, ...]
    reference: NonBlank | None = None


class Cooperation(Model):
    """§ 19 i: cooperation with another service or agency (NAV, school, PPT, ...)."""

    agency: Organisation
    #: what the cooperation is about
    description: NonBlank | None = None


def _unique(keys: list[str], what: str) -> None:
    if len(set(keys)) != len(keys):
        raise ValueError(f"each {what} key at most once")


class Plan(Model):
    """An individual plan in one version."""

    #: the plan's own id, the same in every version and on every platform it moves to
    plan_id: MessageRef
    #: 1 for the first version; the gateway refuses an older version over a newer one (at
    #: most 2**31 - 1: FHIR positiveInt, and so the XML, stop there)
    version: Annotated[int, Field(ge=1, le=2**31 - 1)]
    #: this version's own id (a GUID where the platform has one)
    version_id: MessageRef
    #: the previous version's ``version_id`` (None for version 1)
    previous_version_id: MessageRef | None = None
    status: PlanStatus = PlanStatus.ACTIVE
    closed_reason: NonBlank | None = None
    patient: Patient
    #: the KE (or platform) that keeps the plan
    responsible: Organisation
    # a)
    needs: tuple[NonBlank, ...] = ()
    resources: tuple[NonBlank, ...] = ()
    goals: tuple[Goal, ...] = ()
    # b) and d)
    participants: tuple[Participant, ...] = ()
    # c)
    coordinator: Coordinator | None = None
    # e) and f)
    measures: tuple[Measure, ...] = ()
    # g)
    period_start: dt.date
    period_end: dt.date | None = None
    evaluations: tuple[dt.date, ...] = ()
    # h)
    consent: ConsentAttestation
    sharing: SharingConsent | None = None
    # i)
    cooperation: tuple[Cooperation, ...] = ()

    @model_validator(mode="after")
    def _references_hold(self) -> Plan:
        people = [p.key for p in self.participants]
        _unique(people, "participant")
        _unique([g.key for g in self.goals], "goal")
        _unique([m.key for m in self.measures], "measure")
        known_people, known_goals = set(people), {g.key for g in self.goals}
        if self.coordinator and self.coordinator.participant not in known_people:
            raise ValueError("the coordinator must be one of the participants")
        for m in self.measures:
            if m.owner is not None and m.owner not in known_people:
                raise ValueError("a measure's owner must be one of the participants")
            if not set(m.goals) <= known_goals:
                raise ValueError("a measure may only serve goals of the plan")
            if m.start and m.end and m.end < m.start:
                raise ValueError("a measure cannot end before it starts")
        if self.sharing and not set(self.sharing.participants) <= known_people:
            raise ValueError("confidential information is shared only with participants")
        if self.period_end and self.period_end < self.period_start:
            raise ValueError("the plan period cannot end before it starts")
        if (self.status is PlanStatus.CLOSED) != (self.closed_reason is not None):
            raise ValueError("a closed plan needs its reason, and only a closed plan has one")
        if (self.version == 1) != (self.previous_version_id is None):
            raise ValueError("every version but the first names the previous one")
        return self


class PlanTransfer(Model):
    """The plan sent from the old kommune's platform to the new kommune's (or an update)."""

    kind: Literal[MessageKind.PLAN_TRANSFER] = MessageKind.PLAN_TRANSFER
    sender_message_id: MessageRef
    sent_at: Instant
    source_endpoint: Uri
    sender: Sender
    #: the kommune the person moved to, when the sender knows it (else from the address)
    new_kommune_nr: KommuneNr | None = None
    plan: Plan


class PlanEvent(StrEnum):
    """What a status message tells a unit that has the plan."""

    #: the plan reached the kommune the person moved to, which acknowledged it: the old
    #: kommune can close its plan and hand over access to the new KE
    TRANSFERRED = "transferred"
    #: the consent the plan was shared under was withdrawn: the unit must stop using it
    CONSENT_WITHDRAWN = "consent-withdrawn"


PLAN_EVENT_TEXT: dict[PlanEvent, str] = {
    PlanEvent.TRANSFERRED: "Planen er overført til ny kommune og mottatt der",
    PlanEvent.CONSENT_WITHDRAWN: "Samtykket planen ble delt under, er trukket tilbake",
}


class PlanStatusMessage(Model):
    """A status message from the gateway about a plan a unit has (not a new version of it).

    It names the person, as the plan did, so the receiving system can file it with the plan;
    it carries no other content of the plan.
    """

    kind: Literal[MessageKind.PLAN_STATUS] = MessageKind.PLAN_STATUS
    #: the gateway's id of this status message (the id it is delivered under)
    message_ref: MessageRef
    sent_at: Instant
    #: the gateway
    sender: Sender
    patient: Patient
    plan_id: MessageRef
    version: Annotated[int, Field(ge=1, le=2**31 - 1)]
    event: PlanEvent
    #: the gateway's id of the message the status follows up (the transfer, the plan delivered)
    regarding: MessageRef
    #: for ``transferred``: the kommune the plan went to, and its KE
    new_kommune_nr: KommuneNr | None = None
    new_responsible: Organisation | None = None

    @model_validator(mode="after")
    def _names_where_it_went(self) -> PlanStatusMessage:
        if (self.event is PlanEvent.TRANSFERRED) != (self.new_kommune_nr is not None):
            raise ValueError("a transferred plan names the kommune it went to, and only it does")
        if self.sender.department is not None or self.sender.contact is not None:
            # what the formats carry: the gateway as an organisation, no unit or person
            raise ValueError("a status message comes from the gateway itself")
        return self
