"""Routing: which koordinerende enhet receives a message.

The notice names the person's bostedskommune by number, as the hospital recorded it; hospital
systems lag behind the reforms, so an old number is first mapped through the kommune register
to today's kommune. A number that a split made ambiguous is not guessed: the message waits for
an operator, with the candidates named.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.directory import Directory
from gateway.domain.content import Content, person_of
from gateway.domain.model import CoordinatingUnit
from gateway.domain.plan import PlanTransfer
from gateway.domain.receipt import Refused
from gateway.population import PopulationRegister
from mappings.codes.kommune_register import KommuneRegister, ResolutionStatus


@dataclass(frozen=True)
class Routed:
    unit: CoordinatingUnit
    #: where the kommune came from and how an old number was mapped, for the timeline;
    #: None when the notice named a current kommune
    mapped: str | None = None


@dataclass(frozen=True)
class HeldForOperator:
    """Only a person can choose the recipient; ``reason`` names the candidates."""

    reason: str


def route(
    content: Content,
    directory: Directory,
    register: KommuneRegister,
    on: dt.date,
    population: PopulationRegister | None = None,
) -> Routed | HeldForOperator:
    """The KE of the patient's bostedskommune as it is on ``on`` (the day of routing).

    The kommune is the message's (for a plan transfer: the new kommune it names, else the
    person's address in the plan); when it names none, the population register's for the day
    the message was sent.
    """
    person = person_of(content)
    kommune_nr = person.kommune_nr
    if isinstance(content, PlanTransfer) and content.new_kommune_nr:
        kommune_nr = content.new_kommune_nr
    found_in_register = None
    if kommune_nr is None and population is not None:
        kommune_nr = population.bostedskommune(person.person_id, content.sent_at.date())
        if kommune_nr is not None:
            found_in_register = f"bostedskommune {kommune_nr} from the population register"
    if kommune_nr is None:
        raise Refused.one(
            "E36",
            "the patient's kommune is missing (Patient.address.district municipality code) "
            "and the population register does not know it",
        )
    resolution = register.resolve(kommune_nr, on)
    if resolution.status is ResolutionStatus.AMBIGUOUS:
        return HeldForOperator(resolution.reason)
    kommune = resolution.kommune
    if kommune is None:
        raise Refused.one("E21", f"{kommune_nr} is not a kommunenummer")
    entry = directory.entries.get(kommune.nr)
    if entry is None:
        raise Refused.one("E21", f"no koordinerende enhet is registered for kommune {kommune.nr}")
    if not entry.active:
        raise Refused.one(
            "E21", f"the koordinerende enhet of kommune {kommune.nr} is inactive in the directory"
        )
    unit = entry.unit
    mapped = resolution.reason if resolution.status is ResolutionStatus.REPLACED else None
    notes = "; ".join(n for n in (found_in_register, mapped) if n) or None
    return Routed(unit, notes)
