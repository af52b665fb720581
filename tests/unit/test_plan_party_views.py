"""The parties of a plan and what each may see (gateway/plan_parties.py).

Expected values come from the module's stated rules and from forskrift om habilitering og
rehabilitering, individuell plan og koordinator § 19 (what a plan holds), never from the code
under test: a participant belongs to the health trust whose HER-id, else whose orgnr, their
organisation carries; a party none of whose participants the § 19 h consent names gets the
plan without the needs, resources, goals (§ 19 a), the measures of others (§ 19 e-f), the
contributions of others (§ 19 d) and the cooperation with other agencies (§ 19 i).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.directory import Directory, DirectoryEntry, HealthTrustEntry
from gateway.domain.model import (
    ConsentAttestation,
    ConsentGiver,
    CoordinatingUnit,
    HealthTrust,
    Organisation,
    Patient,
    PersonName,
)
from gateway.domain.plan import (
    Cooperation,
    Coordinator,
    Goal,
    Measure,
    Participant,
    ParticipantKind,
    Plan,
    SharingConsent,
)
from gateway.plan_parties import Party, named_in_sharing, parties_of, view_for
from tests.plan_strategies import plans
from tests.strategies import HER_IDS, ORGNRS, fhir_text

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: the parts of a plan a party sees whatever the consent says
UNCHANGED = (
    "plan_id",
    "version",
    "version_id",
    "previous_version_id",
    "status",
    "closed_reason",
    "patient",
    "responsible",
    "coordinator",
    "period_start",
    "period_end",
    "evaluations",
)
#: seen without why the person cannot consent (health information too)
WITHOUT_REASON = ("consent", "sharing")
#: the KE in the generated directories: its HER-id is no health trust's
KE_HER_ID = 99_001_505


# --------------------------------------------------------------------------- oracles


def expected_trust(org: Organisation | None, trusts: Iterable[HealthTrust]) -> HealthTrust | None:
    """By HER-id first; only when the HER-id is absent or no trust's, by orgnr."""
    if org is None:
        return None
    trusts = list(trusts)
    for t in trusts:
        if org.her_id is not None and t.her_id == org.her_id:
            return t
    for t in trusts:
        if org.orgnr is not None and t.orgnr == org.orgnr:
            return t
    return None


def owned_by(measure: Measure, own: Collection[str]) -> bool:
    return measure.owner is not None and measure.owner in own


def json_token(text: str) -> str:
    """How ``text`` appears inside a JSON string literal."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def blank_strings(value: Any) -> Any:
    """The JSON value with every string value (not key) emptied: the view's skeleton."""
    if isinstance(value, dict):
        return {k: blank_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [blank_strings(v) for v in value]
    return "" if isinstance(value, str) else value


LEFT_OUT = re.compile(r"^([0-9]+) (\w+)")


def left_out_counts(left_out: Sequence[str]) -> dict[str, int]:
    """``("2 needs", "1 goals")`` -> ``{"needs": 2, "goals": 1}`` (first word names the part)."""
    counts: dict[str, int] = {}
    for item in left_out:
        match = LEFT_OUT.match(item)
        assert match, item
        word = match[2]
        assert word not in counts, f"{word} listed twice: {left_out}"
        counts[word] = int(match[1])
    return counts


# --------------------------------------------------------------------------- strategies


@st.composite
def trusts(draw: st.DrawFn) -> list[HealthTrust]:
    """One to three trusts with distinct HER-ids and orgnrs (some without orgnr), in no
    particular HER-id order."""
    n = draw(st.integers(1, 3))
    her_ids = draw(
        st.lists(HER_IDS.filter(lambda h: h != KE_HER_ID), min_size=n, max_size=n, unique=True)
    )
    orgnrs = draw(st.lists(ORGNRS, min_size=n, max_size=n, unique=True))
    return [
        HealthTrust(
            name=f"Helseforetak {i}",
            her_id=her,
            adapter=draw(st.sampled_from(["fhir_rest", "nhn_msh"])),
            orgnr=orgnr if draw(st.booleans()) else None,
        )
        for i, (her, orgnr) in enumerate(zip(her_ids, orgnrs, strict=True))
    ]


def directory_of(units: Iterable[HealthTrust], *, active: bool = True) -> Directory:
    ke = CoordinatingUnit(
        name="Koordinerende enhet, Kristiansund kommune",
        her_id=KE_HER_ID,
        adapter="ke_inbox",
        kommune_nr="1505",
        kommune_name="Kristiansund",
    )
    return Directory(
        entries={"1505": DirectoryEntry(ke)},
        health_trusts={u.her_id: HealthTrustEntry(u, active=active) for u in units},
    )


@st.composite
def organisation_near(draw: st.DrawFn, units: list[HealthTrust]) -> Organisation | None:
    """An organisation of one of ``units`` (by HER-id, orgnr or both, possibly with a stale
    HER-id or another trust's orgnr), of the KE, or of no trust at all."""
    name = draw(fhir_text(30))
    known_her = {u.her_id for u in units} | {KE_HER_ID}
    known_orgnr = {u.orgnr for u in units}
    other_her = draw(HER_IDS.filter(lambda h: h not in known_her))
    other_orgnr = draw(ORGNRS.filter(lambda o: o not in known_orgnr))
    unit = draw(st.sampled_from(units))
    second = draw(st.sampled_from(units))
    orgnr = unit.orgnr or other_orgnr
    # of a trust (when it has the orgnr the pair names)
    of_a_trust: list[tuple[int | None, str | None]] = [
        (unit.her_id, None),
        (None, orgnr),
        (unit.her_id, unit.orgnr),
        (other_her, orgnr),  # HER-id no trust's: found by orgnr when the trust has one
        (unit.her_id, second.orgnr),  # HER-id wins over another trust's orgnr
    ]
    # of none
    elsewhere: list[tuple[int | None, str | None] | None] = [
        None,
        (KE_HER_ID, None),  # a kommune's KE is no health trust
        (other_her, other_orgnr),
        (None, None),
    ]
    at_a_trust = draw(st.integers(0, 2)) < 2  # (hypothesis favours 0)
    pick = draw(st.sampled_from(of_a_trust if at_a_trust else elsewhere))
    return None if pick is None else Organisation(name=name, her_id=pick[0], orgnr=pick[1])


@st.composite
def plans_with_trusts(draw: st.DrawFn) -> tuple[Plan, list[HealthTrust]]:
    """A generated plan whose participants work at the generated trusts, at none, or at
    organisations the generator made up."""
    plan = draw(plans())
    units = draw(trusts())
    people = []
    for p in plan.participants:
        if draw(st.integers(0, 3)) < 3:  # most work at an organisation drawn here
            p = p.model_copy(update={"organisation": draw(organisation_near(units))})
        people.append(p)
    dumped = plan.model_dump()
    dumped["participants"] = [p.model_dump() for p in people]
    return Plan.model_validate(dumped), units


@st.composite
def plans_and_own(draw: st.DrawFn) -> tuple[Plan, frozenset[str]]:
    """A plan and the participant keys of a party: some of the plan's, maybe one it lacks."""
    plan = draw(plans())
    keys = [p.key for p in plan.participants]
    own = set(draw(st.lists(st.sampled_from(keys), unique=True))) if keys else set()
    if draw(st.booleans()):
        own.add("nobody-here")
    return plan, frozenset(own)


# --------------------------------------------------------------------------- view_for: properties


# Generating plans is what takes the time: each property test below draws its plans once and
# runs every check of its function on them.


@PROPERTY
@given(plans_and_own())
def test_view_for_properties(case: tuple[Plan, frozenset[str]]) -> None:
    plan, own = case
    check_confidential_view(plan, own)
    check_view_without_confidential_parts(plan, own)
    check_no_confidential_text_in_the_view(plan, own)


def check_confidential_view(plan: Plan, own: frozenset[str]) -> None:
    """With the consent: the whole plan, nothing left out."""
    view, left_out = view_for(plan, own, confidential=True)
    assert view == plan
    assert left_out == ()


def check_view_without_confidential_parts(plan: Plan, own: frozenset[str]) -> None:
    view, left_out = view_for(plan, own, confidential=False)

    # a plan in its own right, which survives a round trip through its dump
    assert isinstance(view, Plan)
    assert Plan.model_validate(view.model_dump()) == view
    assert Plan.model_validate_json(view.model_dump_json()) == view

    # § 19 a and i gone
    assert view.needs == ()
    assert view.resources == ()
    assert view.goals == ()
    assert view.cooperation == ()

    # exactly the party's own measures, in the plan's order, serving no goal
    kept = [m for m in plan.measures if owned_by(m, own)]
    assert [m.key for m in view.measures] == [m.key for m in kept]
    for shown, original in zip(view.measures, kept, strict=True):
        assert shown.goals == ()
        assert shown.model_dump(exclude={"goals"}) == original.model_dump(exclude={"goals"})

    # every participant, but only the party's own contributions
    assert [p.key for p in view.participants] == [p.key for p in plan.participants]
    for shown, original in zip(view.participants, plan.participants, strict=True):
        assert shown.model_dump(exclude={"contribution"}) == original.model_dump(
            exclude={"contribution"}
        )
        assert shown.name == original.name
        assert shown.organisation == original.organisation
        if original.key in own:
            assert shown.contribution == original.contribution
        else:
            assert shown.contribution is None

    for name in UNCHANGED:
        assert getattr(view, name) == getattr(plan, name), name
    for name in WITHOUT_REASON:
        shown, original = getattr(view, name), getattr(plan, name)
        assert (shown is None) == (original is None), name
        if original is not None:
            assert shown.lacks_capacity_reason is None, name
            assert shown.model_dump(exclude={"lacks_capacity_reason"}) == original.model_dump(
                exclude={"lacks_capacity_reason"}
            ), name

    # what was left out: nothing exactly when the view is the plan, each part with its count
    assert (left_out == ()) == (view == plan)
    counts = left_out_counts(left_out)
    assert all(n > 0 for n in counts.values()), left_out
    others = [p for p in plan.participants if p.key not in own]
    expected = {
        "needs": len(plan.needs),
        "resources": len(plan.resources),
        "goals": len(plan.goals),
        "measures": len(plan.measures) - len(kept),
        "contributions": sum(1 for p in others if p.contribution is not None),
        "cooperation": len(plan.cooperation),
        "reasons": sum(
            1 for c in (plan.consent, plan.sharing) if c is not None and c.lacks_capacity_reason
        ),
    }
    assert counts == {word: n for word, n in expected.items() if n}, left_out


def confidential_texts(plan: Plan, own: Collection[str]) -> list[tuple[str, str]]:
    """(what, text) of everything a party without the consent must not see."""
    texts = [("need", t) for t in plan.needs]
    texts += [
        ("why the person cannot consent", c.lacks_capacity_reason)
        for c in (plan.consent, plan.sharing)
        if c is not None and c.lacks_capacity_reason
    ]
    texts += [("resource", t) for t in plan.resources]
    texts += [("goal", g.description) for g in plan.goals]
    texts += [
        ("contribution", p.contribution)
        for p in plan.participants
        if p.key not in own and p.contribution is not None
    ]
    for c in plan.cooperation:
        texts.append(("cooperation agency", c.agency.name))
        if c.description is not None:
            texts.append(("cooperation", c.description))
    for m in plan.measures:
        if not owned_by(m, own):
            texts += [(f"measure {m.key}", t) for t in (m.description, m.scope, m.how) if t]
    return texts


def kept_json(plan: Plan, own: Collection[str], view: Plan) -> str:
    """The JSON text of every part of ``plan`` a party may see (built from the plan, not the
    view), plus the view's skeleton (keys, numbers, nulls: no string value)."""
    parts = [plan.model_dump_json(include=set(UNCHANGED))]
    parts += [
        c.model_dump_json(exclude={"lacks_capacity_reason"})
        for c in (plan.consent, plan.sharing)
        if c is not None
    ]
    parts += [m.model_dump_json(exclude={"goals"}) for m in plan.measures if owned_by(m, own)]
    parts += [
        p.model_dump_json(exclude=None if p.key in own else {"contribution"})
        for p in plan.participants
    ]
    parts.append(
        json.dumps(blank_strings(json.loads(view.model_dump_json())), separators=(",", ":"))
    )
    return "\n".join(parts)


def check_no_confidential_text_in_the_view(plan: Plan, own: frozenset[str]) -> None:
    view, _ = view_for(plan, own, confidential=False)
    text = view.model_dump_json()
    # the search sees texts as the JSON holds them: a kept text is found
    if plan.participants:
        assert json_token(plan.participants[0].name) in text
    assert json_token(plan.patient.name.family) in text
    allowed = kept_json(plan, own, view)
    for what, secret in confidential_texts(plan, own):
        token = json_token(secret)
        if token in text:
            # only where the same text is also in a part the party may see
            assert token in allowed, f"{what} {secret!r} is in the view"


# --------------------------------------------------------------------------- parties: properties


@PROPERTY
@given(plans_with_trusts())
def test_parties_properties(case: tuple[Plan, list[HealthTrust]]) -> None:
    plan, units = case
    check_parties(plan, units)
    check_named_in_sharing(plan, units)
    check_inactive_trust_is_still_a_party(plan, units)
    # a directory without trusts: no parties, whoever takes part
    assert parties_of(plan, directory_of([])) == []


def check_parties(plan: Plan, units: list[HealthTrust]) -> None:
    """One party per trust some participant works at, in HER-id order, with exactly its
    participants' keys (in the plan's order)."""
    directory = directory_of(units)
    parties = parties_of(plan, directory)

    expected: dict[int, list[str]] = {}
    for p in plan.participants:
        unit = expected_trust(p.organisation, units)
        if unit is not None:
            expected.setdefault(unit.her_id, []).append(p.key)

    her_ids = [party.unit.her_id for party in parties]
    assert her_ids == sorted(expected)  # one each, in HER-id order
    by_her = {u.her_id: u for u in units}
    for party in parties:
        assert party.unit == by_her[party.unit.her_id]
        assert party.participants == tuple(expected[party.unit.her_id])
    # nobody of an unknown organisation (nor of the KE) is anyone's
    listed = {k for party in parties for k in party.participants}
    for p in plan.participants:
        if expected_trust(p.organisation, units) is None:
            assert p.key not in listed


def check_named_in_sharing(plan: Plan, units: list[HealthTrust]) -> None:
    """Named iff the § 19 h consent names one of the party's participants."""
    for party in parties_of(plan, directory_of(units)):
        named = plan.sharing is not None and any(
            k in party.participants for k in plan.sharing.participants
        )
        assert named_in_sharing(plan, party) is named


def check_inactive_trust_is_still_a_party(plan: Plan, units: list[HealthTrust]) -> None:
    """active = false takes a trust out of delivery, not out of the plan (its messages go
    DEAD and can be retried, as for a KE)."""
    assert parties_of(plan, directory_of(units, active=False)) == parties_of(
        plan, directory_of(units)
    )


# --------------------------------------------------------------------------- examples

HMR = HealthTrust(
    name="Helse Møre og Romsdal HF", her_id=81_100_001, adapter="fhir_rest", orgnr="983974899"
)
#: a second trust (orgnr with a valid check digit)
OTHER_HF = HealthTrust(
    name="Helse Nord-Trøndelag HF", her_id=81_100_002, adapter="nhn_msh", orgnr="983658725"
)
#: a third, with no orgnr in the directory
NO_ORGNR_HF = HealthTrust(name="Sykehus uten orgnr", her_id=81_100_003, adapter="nhn_msh")
DIRECTORY = directory_of([OTHER_HF, NO_ORGNR_HF, HMR])  # not in HER-id order


def person(key: str, org: Organisation | None, contribution: str | None = None) -> Participant:
    return Participant(
        key=key,
        kind=ParticipantKind.PROFESSIONAL,
        name=f"Navn {key}",
        organisation=org,
        contribution=contribution,
    )


PEOPLE = (
    person("lege", Organisation(name="HMR, Kristiansund sykehus", her_id=HMR.her_id), "Medisinsk"),
    person("spl", Organisation(name="HMR, Molde sykehus", orgnr=HMR.orgnr), "Sårstell"),
    person("fysio", Organisation(name="St. Olav?", her_id=OTHER_HF.her_id), "Trening"),
    # stale HER-id, but the orgnr is HMR's
    person("psyk", Organisation(name="HMR DPS", her_id=123, orgnr=HMR.orgnr), "Samtaler"),
    person("mor", None, "Følger til timer"),
    person("nav", Organisation(name="NAV Kristiansund", orgnr="974749025"), "Arbeid"),
    person("ke", Organisation(name="KE Kristiansund", her_id=KE_HER_ID)),
    # no ids at all: must not match the trust that has no orgnr either
    person("skole", Organisation(name="Atlanten ungdomsskole")),
)


def example_plan(**changes: Any) -> Plan:
    fields: dict[str, Any] = {
        "plan_id": "plan-1",
        "version": 2,
        "version_id": "v2",
        "previous_version_id": "v1",
        "patient": Patient(
            person_id="13097248022",
            id_kind="FNR",
            name=PersonName(given="Kari", family="Nordmann"),
        ),
        "responsible": Organisation(name="KE Kristiansund", her_id=KE_HER_ID),
        "needs": ("Trenger hjelp med dusj",),
        "resources": ("Sterk familie", "Liker å gå tur"),
        "goals": (Goal(key="g1", description="Gå til butikken selv"),),
        "participants": PEOPLE,
        "coordinator": Coordinator(participant="ke"),
        "measures": (
            Measure(key="m1", description="Legetime", owner="lege", goals=("g1",)),
            Measure(key="m2", description="Treningsprogram", owner="fysio", how="Hver uke"),
            Measure(key="m3", description="Hjemmehjelp"),  # no owner
            Measure(key="m4", description="Sårskift", owner="spl", scope="2 ganger i uka"),
        ),
        "period_start": dt.date(2026, 1, 1),
        "evaluations": (dt.date(2026, 6, 1),),
        "consent": ConsentAttestation(given_by=ConsentGiver.PERSON, given_on=dt.date(2026, 1, 1)),
        "cooperation": (
            Cooperation(agency=Organisation(name="NAV"), description="Arbeidsavklaring"),
        ),
    }
    fields.update(changes)
    return Plan(**fields)


def sharing(*keys: str) -> SharingConsent:
    return SharingConsent(
        given_by=ConsentGiver.PERSON, given_on=dt.date(2026, 1, 2), participants=keys
    )


def test_parties_of_the_example_plan() -> None:
    assert parties_of(example_plan(), DIRECTORY) == [
        Party(HMR, ("lege", "spl", "psyk")),
        Party(OTHER_HF, ("fysio",)),
    ]


@pytest.mark.parametrize(
    ("org", "expected"),
    [
        (Organisation(name="a", her_id=HMR.her_id), HMR),
        (Organisation(name="a", orgnr=HMR.orgnr), HMR),
        (Organisation(name="a", her_id=HMR.her_id, orgnr=HMR.orgnr), HMR),
        (Organisation(name="a", her_id=123, orgnr=HMR.orgnr), HMR),  # HER-id unknown
        (Organisation(name="a", her_id=OTHER_HF.her_id, orgnr=HMR.orgnr), OTHER_HF),
        (Organisation(name="a", her_id=NO_ORGNR_HF.her_id), NO_ORGNR_HF),
        (Organisation(name="a", her_id=KE_HER_ID), None),  # the KE is no trust
        (Organisation(name="a", orgnr="974749025"), None),
        (Organisation(name="a"), None),  # no orgnr matches no orgnr
        (None, None),
    ],
)
def test_one_participant_parties(org: Organisation | None, expected: HealthTrust | None) -> None:
    plan = example_plan(participants=(person("x", org),), coordinator=None, measures=(), goals=())
    assert parties_of(plan, DIRECTORY) == ([Party(expected, ("x",))] if expected else [])


@pytest.mark.parametrize(
    ("consent", "hmr", "other"),
    [
        (None, False, False),
        (sharing(), False, False),
        (sharing("mor", "nav", "ke"), False, False),
        (sharing("psyk"), True, False),
        (sharing("mor", "fysio"), False, True),
        (sharing("fysio", "lege"), True, True),
    ],
)
def test_named_in_sharing_examples(consent: SharingConsent | None, hmr: bool, other: bool) -> None:
    plan = example_plan(sharing=consent)
    hmr_party, other_party = parties_of(plan, DIRECTORY)
    assert named_in_sharing(plan, hmr_party) is hmr
    assert named_in_sharing(plan, other_party) is other


def test_view_for_the_hmr_party_without_consent() -> None:
    plan = example_plan(sharing=sharing("mor"))
    view, left_out = view_for(plan, ("lege", "spl", "psyk"), confidential=False)
    assert (view.needs, view.resources, view.goals, view.cooperation) == ((), (), (), ())
    assert view.measures == (
        Measure(key="m1", description="Legetime", owner="lege"),
        Measure(key="m4", description="Sårskift", owner="spl", scope="2 ganger i uka"),
    )
    assert [(p.key, p.contribution) for p in view.participants] == [
        ("lege", "Medisinsk"),
        ("spl", "Sårstell"),
        ("fysio", None),
        ("psyk", "Samtaler"),
        ("mor", None),
        ("nav", None),
        ("ke", None),
        ("skole", None),
    ]
    assert view.coordinator == Coordinator(participant="ke")
    assert view.sharing == sharing("mor")
    assert left_out == (
        "1 needs",
        "2 resources",
        "1 goals",
        "2 measures of other participants",
        "3 contributions of other participants",
        "1 cooperation with other agencies",
    )
    text = view.model_dump_json()
    for secret in ("dusj", "Sterk familie", "butikken", "Trening", "Hjemmehjelp", "Arbeid"):
        assert secret not in text


@pytest.mark.parametrize(
    ("own", "measures", "left_out"),
    [
        # a party with no people in the plan sees no measure and no contribution
        (
            (),
            (),
            (
                "1 needs",
                "2 resources",
                "1 goals",
                "4 measures of other participants",
                "6 contributions of other participants",
                "1 cooperation with other agencies",
            ),
        ),
        (
            frozenset({"fysio", "nobody"}),
            ("m2",),
            (
                "1 needs",
                "2 resources",
                "1 goals",
                "3 measures of other participants",
                "5 contributions of other participants",
                "1 cooperation with other agencies",
            ),
        ),
        # everyone: only the unowned measure is someone else's
        (
            [p.key for p in PEOPLE],
            ("m1", "m2", "m4"),
            (
                "1 needs",
                "2 resources",
                "1 goals",
                "1 measures of other participants",
                "1 cooperation with other agencies",
            ),
        ),
    ],
)
def test_view_for_examples(
    own: Collection[str], measures: tuple[str, ...], left_out: tuple[str, ...]
) -> None:
    view, out = view_for(example_plan(), own, confidential=False)
    assert tuple(m.key for m in view.measures) == measures
    assert all(m.goals == () for m in view.measures)
    assert out == left_out


def test_view_of_a_plan_with_nothing_confidential_is_the_plan() -> None:
    plan = example_plan(
        needs=(),
        resources=(),
        goals=(),
        cooperation=(),
        measures=(Measure(key="m1", description="Legetime", owner="lege"),),
        participants=(person("lege", None, "Medisinsk"), person("mor", None)),
        coordinator=None,
    )
    assert view_for(plan, {"lege"}, confidential=False) == (plan, ())
    # someone else's contribution is the one thing left out
    view, out = view_for(plan, {"mor"}, confidential=False)
    assert out == ("1 measures of other participants", "1 contributions of other participants")
    assert view != plan


def test_confidential_view_keeps_everything_even_for_strangers() -> None:
    plan = example_plan(sharing=sharing("lege"))
    assert view_for(plan, (), confidential=True) == (plan, ())
    assert view_for(plan, ["nobody"], confidential=True) == (plan, ())
