"""Routing: which koordinerende enhet receives a message."""

from __future__ import annotations

from gateway.directory import Directory
from gateway.domain.model import CoordinatingUnit, NeedNotice
from gateway.domain.receipt import Refused


def route(notice: NeedNotice, directory: Directory) -> CoordinatingUnit:
    """The KE of the patient's bostedskommune as the notice gives it."""
    kommune_nr = notice.patient.kommune_nr
    if kommune_nr is None:
        raise Refused.one(
            "E36", "the patient's kommune is missing (Patient.address.district municipality code)"
        )
    unit = directory.unit_for(kommune_nr)
    if unit is None:
        raise Refused.one("E21", f"no koordinerende enhet is registered for kommune {kommune_nr}")
    return unit
