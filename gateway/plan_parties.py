"""The parties of a plan besides the kommune that keeps it, and what each may see.

A health trust (helseforetak) takes part in many plans: a participant works there. It gets the
plan's updates when the person consented to sharing with the health trust (``share-hf``, the
consent stage decides that). Confidential information -- the person's needs, goals and
resources, the measures others carry out, what the other participants contribute, the
cooperation with other agencies, why the person cannot consent -- goes only to participants
the § 19 h sharing consent names; a trust none of whose participants it names gets the plan
without those parts, and the message records what was left out. Pure: the pipeline
(gateway/pipeline/advance.py) does the I/O.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from gateway.directory import Directory
from gateway.domain.model import HealthTrust
from gateway.domain.plan import Plan


@dataclass(frozen=True)
class Party:
    unit: HealthTrust
    #: the keys of the plan's participants who work there
    participants: tuple[str, ...]


def parties_of(plan: Plan, directory: Directory) -> list[Party]:
    """The health trusts in the directory that some participant of the plan belongs to, in
    HER-id order (one each, however many of its people take part)."""
    found: dict[int, tuple[HealthTrust, list[str]]] = {}
    for p in plan.participants:
        unit = directory.health_trust_of(p.organisation) if p.organisation else None
        if unit is not None:
            found.setdefault(unit.her_id, (unit, []))[1].append(p.key)
    return [Party(unit, tuple(keys)) for _, (unit, keys) in sorted(found.items())]


def named_in_sharing(plan: Plan, party: Party) -> bool:
    """Whether the plan's § 19 h consent names one of the party's participants."""
    return plan.sharing is not None and bool(
        set(plan.sharing.participants) & set(party.participants)
    )


def view_for(
    plan: Plan, participants: Collection[str], *, confidential: bool
) -> tuple[Plan, tuple[str, ...]]:
    """The plan as a party with these ``participants`` may see it, and what was left out
    (in words, for the timeline; no content).

    With ``confidential`` the whole plan. Without: what the party needs to do its part -- who
    takes part and how to reach them, the coordinator, the party's own measures, the period and
    evaluation dates, the status, who consented -- and none of the person's needs, goals,
    resources, the other measures, the others' contributions, the cooperation with other
    agencies or why the person cannot consent.
    """
    if confidential:
        return plan, ()
    own = set(participants)
    measures = tuple(m.model_copy(update={"goals": ()}) for m in plan.measures if m.owner in own)
    people = tuple(
        p if p.key in own else p.model_copy(update={"contribution": None})
        for p in plan.participants
    )
    left_out = [
        (len(plan.needs), "needs"),
        (len(plan.resources), "resources"),
        (len(plan.goals), "goals"),
        (len(plan.measures) - len(measures), "measures of other participants"),
        (
            sum(1 for a, b in zip(plan.participants, people, strict=True) if a != b),
            "contributions of other participants",
        ),
        (len(plan.cooperation), "cooperation with other agencies"),
        (
            sum(1 for c in (plan.consent, plan.sharing) if c and c.lacks_capacity_reason),
            "reasons why the person cannot consent",
        ),
    ]
    view = plan.model_copy(
        update={
            "needs": (),
            "resources": (),
            "goals": (),
            "measures": measures,
            "participants": people,
            "cooperation": (),
            # why the person lacks capacity to consent is health information too
            "consent": plan.consent.model_copy(update={"lacks_capacity_reason": None}),
            "sharing": (
                plan.sharing.model_copy(update={"lacks_capacity_reason": None})
                if plan.sharing
                else None
            ),
        }
    )
    # the copy skipped validation: check the view is a plan in its own right
    return Plan.model_validate(view.model_dump()), tuple(f"{n} {what}" for n, what in left_out if n)
