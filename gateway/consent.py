"""Consent rules. For now one: a notice must carry a consent attestation.

Pure functions; the pipeline stores each decision as a timeline event. The consent registry
(standalone Consent resources, withdrawal, hold expiry) builds on this.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.domain.model import ConsentGiver, NeedNotice


class Verdict(StrEnum):
    ALLOW = "allow"
    HOLD = "hold"


@dataclass(frozen=True)
class ConsentDecision:
    verdict: Verdict
    #: readable by the operator and the sender; never names the person
    reason: str


_GIVER_TEXT = {
    ConsentGiver.PERSON: "the person",
    ConsentGiver.NEXT_OF_KIN: "next of kin (the person lacks capacity to consent)",
    ConsentGiver.PARENTS: "those with parental responsibility",
}


def decide(notice: NeedNotice) -> ConsentDecision:
    if notice.consent is None:
        return ConsentDecision(
            Verdict.HOLD,
            "no consent to notify the kommune: send an active Consent for the patient",
        )
    c = notice.consent
    return ConsentDecision(
        Verdict.ALLOW, f"consent attested, given by {_GIVER_TEXT[c.given_by]} on {c.given_on}"
    )
