"""Hypothesis strategies for individual plans (gateway/domain/plan.py).

Built like tests/strategies.py: from the rules of the formats (FHIR R4 text, codes and dates),
with Norwegian letters, empty optional parts and many participants, never from the mappings.
Cross-references (a measure's owner, the coordinator, who may see confidential information)
point at keys the plan really has, as the model demands.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from gateway.domain.model import ConsentGiver, CoordinatorKind
from gateway.domain.plan import (
    Cooperation,
    Coordinator,
    Goal,
    Measure,
    Participant,
    ParticipantKind,
    Plan,
    PlanStatus,
    PlanTransfer,
    SharingConsent,
)
from tests.strategies import (
    CONSENTS,
    KOMMUNE_NRS,
    SENT_AT,
    fhir_text,
    fhir_url,
    organisations,
    patients,
    senders,
)

IDS = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)
DATES = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2199, 12, 31))
PHONES = st.from_regex(r"\+47[0-9]{8}", fullmatch=True) | fhir_text(20)
EMAILS = st.from_regex(r"[a-z]{1,10}@[a-z]{1,10}\.no", fullmatch=True)


def _optional(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


@st.composite
def participants(draw: st.DrawFn, key: str) -> Participant:
    kind = draw(st.sampled_from(ParticipantKind))
    professional = kind is ParticipantKind.PROFESSIONAL
    return Participant(
        key=key,
        kind=kind,
        name=draw(fhir_text()),
        role=draw(_optional(fhir_text())),
        hpr_nr=draw(st.none() | st.integers(1, 10**9 - 1)) if professional else None,
        organisation=draw(st.none() | organisations(identified=False)),
        phone=draw(_optional(PHONES)),
        email=draw(_optional(EMAILS)),
        contribution=draw(_optional(fhir_text(120))),
    )


@st.composite
def _period(draw: st.DrawFn) -> tuple[dt.date | None, dt.date | None]:
    start = draw(st.none() | DATES)
    end = draw(st.none() | DATES)
    if start and end and end < start:
        start, end = end, start
    return start, end


@st.composite
def plans(draw: st.DrawFn, *, max_participants: int = 8) -> Plan:
    people = [draw(participants(f"p{i}")) for i in range(draw(st.integers(0, max_participants)))]
    people_keys = [p.key for p in people]
    goals = [
        Goal(key=f"g{i}", description=draw(fhir_text(120)), target_date=draw(st.none() | DATES))
        for i in range(draw(st.integers(0, 4)))
    ]
    goal_keys = [g.key for g in goals]
    measures = []
    for i in range(draw(st.integers(0, 5))):
        start, end = draw(_period())
        measures.append(
            Measure(
                key=f"m{i}",
                description=draw(fhir_text(120)),
                scope=draw(_optional(fhir_text(40))),
                owner=draw(st.none() | st.sampled_from(people_keys)) if people_keys else None,
                how=draw(_optional(fhir_text(120))),
                goals=tuple(draw(st.lists(st.sampled_from(goal_keys), unique=True)))
                if goal_keys
                else (),
                start=start,
                end=end,
            )
        )
    coordinator = None
    if people_keys and draw(st.booleans()):
        coordinator = Coordinator(
            participant=draw(st.sampled_from(people_keys)),
            kind=draw(
                st.sampled_from([CoordinatorKind.KOORDINATOR, CoordinatorKind.BARNEKOORDINATOR])
            ),
        )
    sharing = None
    if draw(st.booleans()):
        sharing = SharingConsent(
            given_by=draw(st.sampled_from(ConsentGiver)),
            lacks_capacity_reason=draw(_optional(fhir_text(80))),
            given_on=draw(DATES),
            participants=tuple(draw(st.lists(st.sampled_from(people_keys), unique=True)))
            if people_keys
            else (),
            reference=draw(_optional(fhir_text())),
        )
    period_start = draw(DATES)
    period_end = draw(st.none() | st.dates(min_value=period_start, max_value=dt.date(2199, 12, 31)))
    version = draw(st.integers(1, 40))
    status = draw(st.sampled_from(PlanStatus))
    return Plan(
        plan_id=draw(IDS),
        version=version,
        version_id=draw(IDS),
        previous_version_id=None if version == 1 else draw(IDS),
        status=status,
        closed_reason=draw(fhir_text()) if status is PlanStatus.CLOSED else None,
        patient=draw(patients()),
        responsible=draw(organisations(identified=True)),
        needs=tuple(draw(st.lists(fhir_text(120), max_size=4))),
        resources=tuple(draw(st.lists(fhir_text(120), max_size=4))),
        goals=tuple(goals),
        participants=tuple(people),
        coordinator=coordinator,
        measures=tuple(measures),
        period_start=period_start,
        period_end=period_end,
        evaluations=tuple(draw(st.lists(DATES, max_size=4))),
        consent=draw(CONSENTS),
        sharing=sharing,
        cooperation=tuple(
            draw(
                st.lists(
                    st.builds(
                        Cooperation,
                        agency=organisations(identified=False),
                        description=st.none() | fhir_text(120),
                    ),
                    max_size=3,
                )
            )
        ),
    )


def plan_transfers() -> st.SearchStrategy[PlanTransfer]:
    return st.builds(
        PlanTransfer,
        sender_message_id=IDS,
        sent_at=SENT_AT,
        source_endpoint=fhir_url(),
        sender=senders(),
        new_kommune_nr=st.none() | KOMMUNE_NRS,
        plan=plans(),
    )
