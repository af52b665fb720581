"""The consent decision: may this message go to this recipient now? Pure and table-tested.

Allow, hold or deny, with a reason a person can act on (the sender reads it in the AppRec, the
operator in the timeline), never naming the person:

- **allow**: a consent for the purpose holds now and covers the recipient;
- **hold**: none holds yet — none on record, not yet in force, expired, not covering this
  kommune or these participants, or given by someone who cannot give it — and one may come:
  the message waits (HELD_CONSENT) and is released when it does;
- **deny**: the person said no, or withdrew: the message is stopped.

The latest statement about a purpose wins: a withdrawal after a consent stops it, a new
consent after a withdrawal allows again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum

from gateway.domain.consent import ConsentPurpose, ConsentRecord
from gateway.domain.model import ConsentGiver, MessageKind

#: helserettslig myndighetsalder (pasient- og brukerrettighetsloven § 4-3): from 16 the young
#: person consents in health matters; parents consent for a child younger than that
HEALTH_CONSENT_AGE = 16


class Verdict(StrEnum):
    ALLOW = "allow"
    HOLD = "hold"
    DENY = "deny"


@dataclass(frozen=True)
class ConsentDecision:
    verdict: Verdict
    #: readable by the operator and the sender; names purposes, dates and kommuner only
    reason: str
    #: the consent the decision rests on, when there is one
    consent_id: str | None = None


#: the purpose a message of each kind needs
PURPOSE_OF: dict[MessageKind, ConsentPurpose] = {
    MessageKind.NEED_NOTICE: ConsentPurpose.NEED_NOTICE,
    MessageKind.PLAN_TRANSFER: ConsentPurpose.TRANSFER,
}

PURPOSE_TEXT: dict[ConsentPurpose, str] = {
    ConsentPurpose.NEED_NOTICE: "notify the kommune's koordinerende enhet",
    ConsentPurpose.PLAN: "make an individual plan",
    ConsentPurpose.TRANSFER: "transfer the plan to another kommune",
    ConsentPurpose.SHARE_WITH_HF: "share the plan with the health trust",
    ConsentPurpose.SHARE_CONFIDENTIAL: "share confidential information with participants",
}

GIVER_TEXT: dict[ConsentGiver, str] = {
    ConsentGiver.PERSON: "the person",
    ConsentGiver.NEXT_OF_KIN: "next of kin (the person lacks capacity to consent)",
    ConsentGiver.PARENTS: "those with parental responsibility",
}


def decide(
    purpose: ConsentPurpose,
    consents: Iterable[ConsentRecord],
    *,
    at: dt.datetime,
    recipient_kommune: str | None = None,
    born: dt.date | None = None,
    participants: Collection[str] = (),
) -> ConsentDecision:
    """The decision for ``purpose`` at ``at``, from every consent on record for the person.

    ``born``: the person's birth date when known (parents' consent counts for a child only);
    ``participants``: for confidential information, who is to see it.
    """
    what = PURPOSE_TEXT[purpose]
    relevant = sorted(
        (c for c in consents if purpose in c.purposes), key=lambda c: (c.recorded_at, c.id)
    )
    if not relevant:
        return ConsentDecision(
            Verdict.HOLD,
            f"no consent to {what} is on record: the message waits for one "
            "(a FHIR Consent, or Samtykke in the XML)",
        )
    c = relevant[-1]
    today = at.astimezone(dt.UTC).date()
    if c.refused:
        return ConsentDecision(
            Verdict.DENY, f"{GIVER_TEXT[c.given_by]} refused consent to {what}", c.id
        )
    if c.withdrawn_at is not None and c.withdrawn_at <= at:
        return ConsentDecision(
            Verdict.DENY,
            f"consent to {what} was withdrawn on {c.withdrawn_at.date().isoformat()}",
            c.id,
        )
    if today < c.starts:
        return ConsentDecision(
            Verdict.HOLD, f"consent to {what} holds from {c.starts.isoformat()}", c.id
        )
    if c.valid_until is not None and c.valid_until < today:
        return ConsentDecision(
            Verdict.HOLD,
            f"consent to {what} expired on {c.valid_until.isoformat()}: a new consent is needed",
            c.id,
        )
    if c.given_by is ConsentGiver.NEXT_OF_KIN and c.lacks_capacity_reason is None:
        return ConsentDecision(
            Verdict.HOLD,
            f"consent to {what} came from next of kin without saying why the person lacks "
            "capacity to consent: send it with the reason",
            c.id,
        )
    if (
        c.given_by is ConsentGiver.PARENTS
        and born is not None
        and _age(born, c.given_on) >= HEALTH_CONSENT_AGE
    ):
        return ConsentDecision(
            Verdict.HOLD,
            f"consent to {what} came from those with parental responsibility, but the "
            f"person was {HEALTH_CONSENT_AGE} or older and consents themselves",
            c.id,
        )
    if c.kommuner and recipient_kommune is not None and recipient_kommune not in c.kommuner:
        return ConsentDecision(
            Verdict.HOLD,
            f"consent to {what} names kommune {', '.join(c.kommuner)}, "
            f"not kommune {recipient_kommune}",
            c.id,
        )
    missing = [p for p in participants if p not in c.participants]
    if purpose is ConsentPurpose.SHARE_CONFIDENTIAL and missing:
        return ConsentDecision(
            Verdict.HOLD,
            f"consent to {what} does not name {len(missing)} of the participants",
            c.id,
        )
    return ConsentDecision(
        Verdict.ALLOW,
        f"consent to {what} given by {GIVER_TEXT[c.given_by]} on {c.given_on.isoformat()}",
        c.id,
    )


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
