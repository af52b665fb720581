"""The consent decision (gateway/consent/rules.py): every purpose x consenter x validity case.

Expected verdicts come from the table below, written from the law as the issue states it, not
from the function: no consent yet, not yet in force or expired -> hold (one may come); refused
or withdrawn -> deny (stop); next of kin must say why the person lacks capacity; parents
consent for a child under 16 (helserettslig myndighetsalder, pasient- og
brukerrettighetsloven § 4-3).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.consent.rules import Verdict, decide
from gateway.domain.consent import ConsentPurpose, ConsentRecord
from gateway.domain.model import ConsentGiver

AT = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
CHILD = dt.date(2015, 5, 1)  # 11 years old at AT
ADULT = dt.date(1980, 5, 1)
RECORDED = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)

#: who consented -> (given_by, lacks-capacity reason, the person's birth date)
CONSENTERS: dict[str, tuple[ConsentGiver, str | None, dt.date | None]] = {
    "person": (ConsentGiver.PERSON, None, ADULT),
    "person-born-unknown": (ConsentGiver.PERSON, None, None),
    "next-of-kin-with-reason": (ConsentGiver.NEXT_OF_KIN, "alvorleg demens", ADULT),
    "next-of-kin-without-reason": (ConsentGiver.NEXT_OF_KIN, None, ADULT),
    "parents-of-a-child": (ConsentGiver.PARENTS, None, CHILD),
    "parents-of-an-adult": (ConsentGiver.PARENTS, None, ADULT),
    "parents-birth-unknown": (ConsentGiver.PARENTS, None, None),
}
#: the consenter may give this consent (when the consent is otherwise in force)
MAY_CONSENT = {
    "person": True,
    "person-born-unknown": True,
    "next-of-kin-with-reason": True,
    "next-of-kin-without-reason": False,
    "parents-of-a-child": True,
    "parents-of-an-adult": False,
    "parents-birth-unknown": True,  # FH-nummer: no birth date to hold against the parents
}

#: validity case -> (fields of the record, or None for no record for the purpose)
VALIDITY: dict[str, dict[str, Any] | None] = {
    "in-force-open-ended": {"given_on": dt.date(2026, 10, 1)},
    "in-force-period": {
        "given_on": dt.date(2026, 10, 1),
        "valid_from": dt.date(2026, 11, 1),
        "valid_until": dt.date(2027, 10, 31),
    },
    "last-day": {"given_on": dt.date(2026, 1, 1), "valid_until": dt.date(2026, 11, 23)},
    "not-yet": {"given_on": dt.date(2026, 11, 20), "valid_from": dt.date(2026, 12, 1)},
    "expired": {"given_on": dt.date(2025, 1, 1), "valid_until": dt.date(2026, 11, 22)},
    "withdrawn-before": {
        "given_on": dt.date(2026, 10, 1),
        "withdrawn_at": dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
    },
    "withdrawn-later": {
        "given_on": dt.date(2026, 10, 1),
        "withdrawn_at": dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    },
    "refused": {"given_on": dt.date(2026, 10, 1), "refused": True},
    "none": None,
}
#: validity case -> the verdict when the consenter may consent
IN_FORCE = {
    "in-force-open-ended": Verdict.ALLOW,
    "in-force-period": Verdict.ALLOW,
    "last-day": Verdict.ALLOW,
    "not-yet": Verdict.HOLD,
    "expired": Verdict.HOLD,
    "withdrawn-before": Verdict.DENY,
    "withdrawn-later": Verdict.ALLOW,
    "refused": Verdict.DENY,
    "none": Verdict.HOLD,
}


def record(
    purposes: tuple[ConsentPurpose, ...], given_by: ConsentGiver, reason: str | None, **fields: Any
) -> ConsentRecord:
    return ConsentRecord.model_validate(
        {
            "id": fields.pop("id", "c1"),
            "purposes": purposes,
            "given_by": given_by,
            "lacks_capacity_reason": reason,
            "recorded_at": fields.pop("recorded_at", RECORDED),
            **fields,
        }
    )


def expected(consenter: str, validity: str) -> Verdict:
    verdict = IN_FORCE[validity]
    # a refusal or a withdrawal stops the message whoever gave it; no record holds it
    if verdict is Verdict.ALLOW and not MAY_CONSENT[consenter]:
        return Verdict.HOLD
    return verdict


CASES = list(itertools.product(ConsentPurpose, CONSENTERS, VALIDITY))


@pytest.mark.parametrize(("purpose", "consenter", "validity"), CASES)
def test_every_purpose_consenter_and_validity(
    purpose: ConsentPurpose, consenter: str, validity: str
) -> None:
    given_by, reason, born = CONSENTERS[consenter]
    fields = VALIDITY[validity]
    records = [] if fields is None else [record((purpose,), given_by, reason, **fields)]
    decision = decide(purpose, records, at=AT, born=born)
    assert decision.verdict is expected(consenter, validity), decision.reason
    assert decision.reason
    assert decision.consent_id == (None if fields is None else "c1")


@pytest.mark.parametrize("purpose", list(ConsentPurpose))
def test_a_consent_for_another_purpose_does_not_count(purpose: ConsentPurpose) -> None:
    others = tuple(p for p in ConsentPurpose if p is not purpose)
    consent = record(others, ConsentGiver.PERSON, None, given_on=dt.date(2026, 1, 1))
    assert decide(purpose, [consent], at=AT).verdict is Verdict.HOLD


def test_the_latest_statement_wins() -> None:
    yes = record(
        (ConsentPurpose.NEED_NOTICE,), ConsentGiver.PERSON, None, given_on=dt.date(2026, 1, 1)
    )
    no = record(
        (ConsentPurpose.NEED_NOTICE,),
        ConsentGiver.PERSON,
        None,
        id="c2",
        given_on=dt.date(2026, 11, 10),
        refused=True,
        recorded_at=RECORDED + dt.timedelta(days=9),
    )
    yes_again = yes.model_copy(update={"id": "c3", "recorded_at": RECORDED + dt.timedelta(days=15)})
    assert decide(ConsentPurpose.NEED_NOTICE, [yes], at=AT).verdict is Verdict.ALLOW
    assert decide(ConsentPurpose.NEED_NOTICE, [no, yes], at=AT).verdict is Verdict.DENY
    decision = decide(ConsentPurpose.NEED_NOTICE, [yes_again, no, yes], at=AT)
    assert (decision.verdict, decision.consent_id) == (Verdict.ALLOW, "c3")


def test_a_consent_that_names_kommuner_covers_only_those() -> None:
    c = record(
        (ConsentPurpose.TRANSFER,),
        ConsentGiver.PERSON,
        None,
        given_on=dt.date(2026, 1, 1),
        kommuner=("5001",),
    )
    assert decide(ConsentPurpose.TRANSFER, [c], at=AT, recipient_kommune="5001").verdict is (
        Verdict.ALLOW
    )
    held = decide(ConsentPurpose.TRANSFER, [c], at=AT, recipient_kommune="1506")
    assert held.verdict is Verdict.HOLD
    assert "5001" in held.reason
    assert "1506" in held.reason


def test_confidential_information_only_to_the_participants_named() -> None:
    c = record(
        (ConsentPurpose.SHARE_CONFIDENTIAL,),
        ConsentGiver.PERSON,
        None,
        given_on=dt.date(2026, 1, 1),
        participants=("p1", "p2"),
    )
    purpose = ConsentPurpose.SHARE_CONFIDENTIAL
    assert decide(purpose, [c], at=AT, participants=["p1"]).verdict is Verdict.ALLOW
    assert decide(purpose, [c], at=AT, participants=["p1", "p3"]).verdict is Verdict.HOLD


def test_parents_until_the_child_turns_16() -> None:
    c = record((ConsentPurpose.PLAN,), ConsentGiver.PARENTS, None, given_on=dt.date(2026, 11, 1))
    day_before = dt.date(2010, 11, 2)  # 15 on 2026-11-01
    sixteenth = dt.date(2010, 11, 1)  # 16 on 2026-11-01
    assert decide(ConsentPurpose.PLAN, [c], at=AT, born=day_before).verdict is Verdict.ALLOW
    assert decide(ConsentPurpose.PLAN, [c], at=AT, born=sixteenth).verdict is Verdict.HOLD


@given(
    st.sampled_from(ConsentPurpose),
    st.sampled_from(list(CONSENTERS)),
    st.sampled_from(list(VALIDITY)),
    st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2050, 1, 1),
        timezones=st.just(dt.UTC),
    ),
)
def test_reasons_name_purposes_and_dates_never_a_reason_text(
    purpose: ConsentPurpose, consenter: str, validity: str, at: dt.datetime
) -> None:
    """The lacks-capacity reason is health information: it never goes into a decision."""
    given_by, _, born = CONSENTERS[consenter]
    fields = VALIDITY[validity]
    secret = "Qwertzdiagnose"
    reason = secret if given_by is ConsentGiver.NEXT_OF_KIN else None
    records = [] if fields is None else [record((purpose,), given_by, reason, **fields)]
    decision = decide(purpose, records, at=at, born=born)
    assert secret not in decision.reason
    assert decision.verdict in Verdict


def test_a_consent_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="end before"):
        record(
            (ConsentPurpose.PLAN,),
            ConsentGiver.PERSON,
            None,
            given_on=dt.date(2026, 1, 1),
            valid_until=dt.date(2025, 12, 31),
        )
