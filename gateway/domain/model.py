"""The canonical model: what the gateway carries between formats.

Mappings turn FHIR and KITH XML into these objects and back; the pipeline only ever sees these.
They are frozen so a stage cannot change what an earlier stage checked.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from gateway.domain.identifiers import PersonIdKind, parse_her_id, parse_kommune_nr, parse_orgnr


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


KommuneNr = Annotated[str, AfterValidator(parse_kommune_nr)]


def _not_a_truth_value(value: object) -> object:
    # pydantic would read true as 1: a HER-id written as a truth value is a mistake
    if isinstance(value, bool):
        raise ValueError("a HER-id is a number, not true or false")
    return value


HerId = Annotated[int, BeforeValidator(_not_a_truth_value), AfterValidator(parse_her_id)]


def _text(value: str) -> str:
    """Text every format we speak can carry: FHIR R4 ``string`` is the narrowest.

    R4 allows no whitespace but space, tab, CR and LF (its JSON Schema's ``\\S`` refuses
    NBSP, U+2028, ideographic space, U+FEFF, ...) and says strings should hold no other
    control characters; XML 1.0 cannot hold U+FFFE and U+FFFF at all. Surrounding whitespace
    carries no meaning and is dropped, so the canonical form is the same whichever format a
    message came in.
    """
    value = value.strip()
    if not value:
        raise ValueError("must hold some text")
    bad = _NOT_CARRIED.search(value)
    if bad:
        raise ValueError(f"holds a character FHIR or XML cannot carry (U+{ord(bad[0]):04X})")
    return value


def _offset_fits_fhir(value: dt.datetime) -> dt.datetime:
    """FHIR instant/dateTime offsets are whole minutes between -14:00 and +14:00."""
    offset = value.utcoffset()
    assert offset is not None  # AwareDatetime
    if offset.total_seconds() % 60 or abs(offset) > dt.timedelta(hours=14):
        raise ValueError("UTC offset must be whole minutes within -14:00..+14:00")
    return value


#: whitespace but space, tab, CR and LF (``\\s`` is str.isspace), other C0 controls; U+FEFF
#: is whitespace to FHIR's JSON Schema; U+FFFE and U+FFFF are not XML 1.0 characters
_NOT_CARRIED = re.compile(r"[^\S \t\r\n]|[\x00-\x08\x0e-\x1f\ufeff\ufffe\uffff]")
#: free text: names, the need, organisation names (see ``_text``)
NonBlank = Annotated[str, AfterValidator(_text)]
#: a FHIR ``code``: runs of non-whitespace separated by single spaces
Code = Annotated[str, Field(pattern=r"^[^\s]+( [^\s]+)*$"), AfterValidator(_text)]
#: a FHIR ``url``/``uri``: no whitespace at all
Uri = Annotated[str, Field(pattern=r"^\S+$"), AfterValidator(_text)]
#: a point in time with its sender's UTC offset, as FHIR ``instant`` and MsgHead GenDate hold it
Instant = Annotated[AwareDatetime, AfterValidator(_offset_fits_fhir)]
#: what both FHIR ids and MsgHead MsgIds (GUIDs) can hold
MessageRef = Annotated[str, Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]


def _distinct(kinds: tuple[NoticeKind, ...]) -> tuple[NoticeKind, ...]:
    if len(set(kinds)) != len(kinds):
        raise ValueError("each requested service at most once")
    return kinds


class MessageKind(StrEnum):
    NEED_NOTICE = "need-notice"
    PLAN_TRANSFER = "plan-transfer"
    #: the gateway tells a unit that has a plan what became of it (gateway/domain/plan.py)
    PLAN_STATUS = "plan-status"
    #: a consent posted on its own (kept as a message only when refused)
    CONSENT = "consent"


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


def _national(kind: PersonIdKind) -> PersonIdKind:
    if kind is PersonIdKind.HNR:
        raise ValueError(LOCAL_ID_REASON)
    return kind


#: why an H-nummer cannot name the person in a message between services
LOCAL_ID_REASON = (
    "an H-nummer is local to the institution that issued it: send the fødselsnummer, "
    "D-nummer or felles hjelpenummer"
)


class Patient(Model):
    person_id: Annotated[str, Field(pattern=r"^[0-9]{11}$")]
    #: a national id only: the kommune must find the person in its own records
    id_kind: Annotated[PersonIdKind, AfterValidator(_national)]
    name: PersonName
    #: bostedskommune as the sender knows it (Address.district in FHIR)
    kommune_nr: KommuneNr | None = None


class Organisation(Model):
    name: NonBlank
    her_id: HerId | None = None
    #: organisasjonsnummer, with its mod-11 check digit
    orgnr: Annotated[str, AfterValidator(parse_orgnr)] | None = None


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
    #: why the person cannot consent themselves, when next of kin consented in their place
    lacks_capacity_reason: NonBlank | None = None
    given_on: dt.date
    reference: NonBlank | None = None


class NeedNotice(Model):
    """Melding om behov for individuell plan / koordinator / barnekoordinator."""

    kind: Literal[MessageKind.NEED_NOTICE] = MessageKind.NEED_NOTICE
    #: the sender's own id for the message (FHIR MessageHeader.id, MsgHead MsgId); a sender's
    #: retry reuses it, which is how the gateway tells a retry from a new message
    sender_message_id: MessageRef
    sent_at: Instant
    source_endpoint: Uri
    patient: Patient
    sender: Sender
    requested: Annotated[tuple[NoticeKind, ...], Field(min_length=1), AfterValidator(_distinct)]
    need: NonBlank
    urgent: bool = False
    next_of_kin_involved: bool = False
    #: the person (the family, for a barnekoordinator) already has a coordinator from the
    #: kommune: a family has one, never two. Set by the sender, or by the gateway when it
    #: delivered such a notice for the person to the same kommune before.
    existing_coordinator: bool = False
    #: the health trust takes part in the plan work: its own koordinerende enhet
    #: (spesialisthelsetjenesteloven § 2-5 a) gets the notice too
    health_trust_takes_part: bool = False
    #: language the person needs an interpreter for (BCP 47), None when not needed
    interpreter_language: Code | None = None
    consent: ConsentAttestation | None = None


class ReceivingUnit(Model):
    """A unit the gateway delivers to, as the directory lists it: its address (HER-id) and the
    adapter of the platform it uses."""

    name: NonBlank
    her_id: HerId
    adapter: NonBlank
    #: the organisation's organisasjonsnummer (a KE's: its kommune's): the one its HelseID
    #: tokens name, so the gateway knows which client speaks for the unit
    orgnr: Annotated[str, AfterValidator(parse_orgnr)] | None = None


class CoordinatingUnit(ReceivingUnit):
    """A kommune's koordinerende enhet: receives need notices and the plans that move in."""

    kommune_nr: KommuneNr
    kommune_name: NonBlank


class HealthTrust(ReceivingUnit):
    """A helseforetak that takes part in plans: it receives the updates it is party to.

    Found from a plan participant's organisation by HER-id or organisasjonsnummer.
    """
