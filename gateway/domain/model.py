"""The canonical model: what the gateway carries between formats.

Mappings turn FHIR and KITH XML into these objects and back; the pipeline only ever sees these.
They are frozen so a stage cannot change what an earlier stage checked.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gateway.domain.identifiers import PersonIdKind, parse_her_id, parse_kommune_nr


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


KommuneNr = Annotated[str, AfterValidator(parse_kommune_nr)]
HerId = Annotated[int, AfterValidator(parse_her_id)]
NonBlank = Annotated[str, Field(min_length=1, pattern=r"\S")]
#: what both FHIR ids and MsgHead MsgIds (GUIDs) can hold
MessageRef = Annotated[str, Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]


def _distinct(kinds: tuple[NoticeKind, ...]) -> tuple[NoticeKind, ...]:
    if len(set(kinds)) != len(kinds):
        raise ValueError("each requested service at most once")
    return kinds


class MessageKind(StrEnum):
    NEED_NOTICE = "need-notice"


class NoticeKind(StrEnum):
    """What the hospital asks the kommune for (forskrift §§ 16-21, hol. § 7-2 a)."""

    INDIVIDUELL_PLAN = "individuell-plan"
    KOORDINATOR = "koordinator"
    BARNEKOORDINATOR = "barnekoordinator"


CoordinatorKind = NoticeKind


class ConsentGiver(StrEnum):
    PERSON = "person"
    #: next of kin when the person lacks capacity to consent (samtykkekompetanse)
    NEXT_OF_KIN = "next-of-kin"
    #: those with parental responsibility, for a child
    PARENTS = "parents"


class PersonName(Model):
    given: NonBlank
    family: NonBlank


class Patient(Model):
    person_id: Annotated[str, Field(pattern=r"^[0-9]{11}$")]
    id_kind: PersonIdKind
    name: PersonName
    #: bostedskommune as the sender knows it (Address.district in FHIR)
    kommune_nr: KommuneNr | None = None


class Organisation(Model):
    name: NonBlank
    her_id: HerId | None = None
    orgnr: Annotated[str, Field(pattern=r"^[0-9]{9}$")] | None = None


class Contact(Model):
    """The health-trust person the kommune can call about the notice."""

    name: NonBlank
    phone: NonBlank | None = None


class Sender(Model):
    organisation: Organisation
    department: Organisation | None = None
    contact: Contact | None = None


class ConsentAttestation(Model):
    """The sender's statement that consent to notify the kommune was given.

    The full consent registry comes later; until then the notice must carry this.
    """

    given_by: ConsentGiver
    given_on: dt.date
    reference: NonBlank | None = None


class NeedNotice(Model):
    """Melding om behov for individuell plan / koordinator / barnekoordinator."""

    kind: Literal[MessageKind.NEED_NOTICE] = MessageKind.NEED_NOTICE
    #: the sender's own id for the message (FHIR MessageHeader.id, MsgHead MsgId); a sender's
    #: retry reuses it, which is how the gateway tells a retry from a new message
    sender_message_id: MessageRef
    sent_at: dt.datetime
    source_endpoint: NonBlank
    patient: Patient
    sender: Sender
    requested: Annotated[tuple[NoticeKind, ...], Field(min_length=1), AfterValidator(_distinct)]
    need: NonBlank
    urgent: bool = False
    next_of_kin_involved: bool = False
    #: language the person needs an interpreter for (BCP 47), None when not needed
    interpreter_language: NonBlank | None = None
    consent: ConsentAttestation | None = None


class CoordinatingUnit(Model):
    """A kommune's koordinerende enhet as the directory lists it."""

    kommune_nr: KommuneNr
    kommune_name: NonBlank
    name: NonBlank
    her_id: HerId
    adapter: NonBlank
