"""Made-up but well-formed notices for the demo, the tests and the benchmarks.

Person ids are synthetic (month + 80, the Tenor test range) so they can never belong to a real
person; a gateway must run with ``IPGW_ACCEPT_SYNTHETIC_IDS=true`` to take them.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

from gateway.domain.identifiers import PersonIdKind, control_digits
from gateway.domain.model import (
    ConsentAttestation,
    ConsentGiver,
    Contact,
    NeedNotice,
    NoticeKind,
    Organisation,
    Patient,
    PersonName,
    Sender,
)
from gateway.domain.plan import (
    Coordinator,
    Goal,
    Measure,
    Participant,
    ParticipantKind,
    Plan,
    PlanTransfer,
    SharingConsent,
)

GIVEN = ["Kari", "Ola", "Ingrid", "Lars", "Sigrid", "Nils", "Astrid", "Jonas", "Sofie", "Emil"]
FAMILY = ["Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Berg", "Haugen", "Dahl", "Lie"]
NEEDS = [
    "Langvarige og koordinerte tjenester etter hjerneslag; behov for rehabilitering i kommunen.",
    "Sammensatte behov etter trafikkskade; trenger koordinator og individuell plan.",
    "Barn med alvorlig sykdom; familien trenger barnekoordinator.",
    "Psykisk helse og rus: flere tjenester involvert, ønsker individuell plan.",
]

HELSE_MORE_OG_ROMSDAL = Organisation(
    name="Helse Møre og Romsdal HF", her_id=99100001, orgnr="983974899"
)
DEPARTMENTS = [
    Organisation(name="Nevrologisk avdeling, Ålesund sjukehus", her_id=99100011),
    Organisation(name="Barne- og ungdomsavdelinga, Molde sjukehus", her_id=99100012),
    Organisation(name="Klinikk for psykisk helse og rus", her_id=99100013),
]


def synthetic_person_id(
    rng: random.Random, kind: PersonIdKind = PersonIdKind.FNR, *, child: bool = False
) -> str:
    """A valid-checksum Tenor-style synthetic id (month + 80).

    The individual number follows the century rule (000-499 born 1900-1999, 500-999 born
    2000-2039), so the birth date reads back right; ``child``: born 2012-2024.
    """
    first, days = (dt.date(2012, 1, 1), 4_700) if child else (dt.date(1930, 1, 1), 25_500)
    while True:
        born = first + dt.timedelta(days=rng.randrange(0, days))
        day = born.day + (40 if kind is PersonIdKind.DNR else 0)
        individual = rng.randrange(500, 1000) if born.year >= 2000 else rng.randrange(500)
        first_nine = f"{day:02d}{born.month + 80:02d}{born.year % 100:02d}{individual:03d}"
        digits = control_digits(first_nine)
        if digits:
            return f"{first_nine}{digits[0]}{digits[1]}"


def make_notice(
    rng: random.Random,
    kommune_nr: str,
    *,
    with_consent: bool = True,
    sent_at: dt.datetime | None = None,
) -> NeedNotice:
    requested = rng.choice(
        [
            (NoticeKind.INDIVIDUELL_PLAN, NoticeKind.KOORDINATOR),
            (NoticeKind.INDIVIDUELL_PLAN,),
            (NoticeKind.BARNEKOORDINATOR,),
        ]
    )
    return NeedNotice(
        sender_message_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        sent_at=sent_at or dt.datetime.now(dt.UTC).replace(microsecond=0),
        source_endpoint="urn:oid:2.16.578.1.12.4.1.2:99100001",
        patient=Patient(
            person_id=synthetic_person_id(rng, child=NoticeKind.BARNEKOORDINATOR in requested),
            id_kind=PersonIdKind.FNR,
            name=PersonName(given=rng.choice(GIVEN), family=rng.choice(FAMILY)),
            kommune_nr=kommune_nr,
        ),
        sender=Sender(
            organisation=HELSE_MORE_OG_ROMSDAL,
            department=rng.choice(DEPARTMENTS),
            contact=Contact(name="Koordinerende enhet HMR", phone="+4770000000"),
        ),
        requested=requested,
        need=rng.choice(NEEDS),
        urgent=rng.random() < 0.1,
        next_of_kin_involved=NoticeKind.BARNEKOORDINATOR in requested,
        interpreter_language="ar" if rng.random() < 0.1 else None,
        consent=(
            ConsentAttestation(
                given_by=(
                    ConsentGiver.PARENTS
                    if NoticeKind.BARNEKOORDINATOR in requested
                    else ConsentGiver.PERSON
                ),
                given_on=dt.date(2026, 11, 1),
            )
            if with_consent
            else None
        ),
    )


def ke_orgnr(kommune_nr: str) -> str:
    """The (fictitious) organisasjonsnummer of a kommune's KE in the shipped directory:
    99 + kommunenummer + two digits + the mod-11 check digit (the first two digits that give
    one)."""
    weights = (3, 2, 7, 6, 5, 4, 3, 2)
    for tail in range(100):
        base = f"99{kommune_nr}{tail:02d}"
        rest = sum(w * int(c) for w, c in zip(weights, base, strict=True)) % 11
        if rest != 1:
            return base + str(0 if rest == 0 else 11 - rest)
    raise ValueError(kommune_nr)  # pragma: no cover - some tail always has a check digit


def ke_of(kommune_nr: str) -> Organisation:
    """The (fictitious) KE of a kommune in the shipped directory: HER-id 99 000 000 + nr."""
    return Organisation(
        name=f"Koordinerende enhet {kommune_nr}", her_id=99_000_000 + int(kommune_nr)
    )


def make_transfer(
    rng: random.Random,
    old_kommune: str,
    new_kommune: str,
    *,
    plan_id: str | None = None,
    version: int = 1,
    previous_version_id: str | None = None,
    person: Patient | None = None,
    sent_at: dt.datetime | None = None,
    health_trust: Organisation | None = None,
) -> PlanTransfer:
    """A plan that moves with its person from ``old_kommune``'s KE to ``new_kommune``; with
    ``health_trust``, a doctor there takes part and the § 19 h consent names them."""
    patient = person or Patient(
        person_id=synthetic_person_id(rng, child=False),
        id_kind=PersonIdKind.FNR,
        name=PersonName(given=rng.choice(GIVEN), family=rng.choice(FAMILY)),
        kommune_nr=old_kommune,
    )
    old_ke = ke_of(old_kommune)
    plan = Plan(
        plan_id=plan_id or str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        version=version,
        version_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        previous_version_id=previous_version_id if version > 1 else None,
        patient=patient,
        responsible=old_ke,
        needs=(rng.choice(NEEDS),),
        resources=("Familie og nettverk som stiller opp",),
        goals=(Goal(key="g1", description="Bo hjemme og gå tilbake til arbeid"),),
        participants=(
            Participant(
                key="p1",
                kind=ParticipantKind.PERSON,
                name=f"{patient.name.given} {patient.name.family}",
            ),
            Participant(
                key="p2",
                kind=ParticipantKind.PROFESSIONAL,
                name="Koordinator i kommunen",
                role="koordinator",
                organisation=old_ke,
                contribution="Holder sammen planarbeidet",
            ),
            *(
                (
                    Participant(
                        key="hf1",
                        kind=ParticipantKind.PROFESSIONAL,
                        name="Lege i spesialisthelsetjenesten",
                        role="lege",
                        organisation=health_trust,
                        contribution="Medisinsk oppfølging og kontroller",
                    ),
                )
                if health_trust
                else ()
            ),
        ),
        coordinator=Coordinator(participant="p2"),
        sharing=(
            SharingConsent(
                given_by=ConsentGiver.PERSON, given_on=dt.date(2025, 12, 1), participants=("hf1",)
            )
            if health_trust
            else None
        ),
        measures=(
            Measure(
                key="m1",
                description="Fysioterapi",
                scope="2 timer per uke",
                owner="p2",
                goals=("g1",),
            ),
        ),
        period_start=dt.date(2026, 1, 1),
        consent=ConsentAttestation(given_by=ConsentGiver.PERSON, given_on=dt.date(2025, 12, 1)),
    )
    return PlanTransfer(
        sender_message_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        sent_at=sent_at or dt.datetime.now(dt.UTC).replace(microsecond=0),
        source_endpoint=f"urn:oid:2.16.578.1.12.4.1.2:{old_ke.her_id}",
        sender=Sender(organisation=old_ke, contact=Contact(name="Koordinerende enhet")),
        new_kommune_nr=new_kommune,
        plan=plan,
    )


def next_version(
    rng: random.Random,
    earlier: PlanTransfer,
    to_kommune: str | None,
    *,
    health_trust: Organisation | None = None,
) -> PlanTransfer:
    """The plan's next version, sent by the kommune it went to with ``earlier``: on to
    ``to_kommune`` (the person moved again), or an update (``None``: it stays there)."""
    here = earlier.new_kommune_nr or earlier.plan.patient.kommune_nr
    assert here is not None, "the earlier transfer names where the plan went"
    later = make_transfer(
        rng,
        here,
        to_kommune or here,
        plan_id=earlier.plan.plan_id,
        version=earlier.plan.version + 1,
        previous_version_id=earlier.plan.version_id,
        person=earlier.plan.patient.model_copy(update={"kommune_nr": here}),
        health_trust=health_trust,
    )
    return later if to_kommune else later.model_copy(update={"new_kommune_nr": None})
