"""A plan moves from any platform to any other through the gateway, and every forskrift § 19
item (a–i) survives (issue 6).

Each generated PlanTransfer (tests/plan_strategies.py) comes in as a platform sends it to the
gateway — a FHIR message Bundle (``transfer_to_bundle``, JSON on the wire, ``bundle_to_transfer``)
or a MsgHead with IndividuellPlan (``transfer_to_msghead``, serialised, parsed with the hardened
parser, validated against the official schema set, ``msghead_to_transfer``) — and goes out
through the real adapter of every target to the running simulated platform, over HTTP. What
the platform stored is read back as the next hop would read it (the FHIR platform's Bundle by
its id; the NHN receiver's kept MsgHead by MsgId) and compared with the original transfer.

The comparison is model equality of the whole PlanTransfer. The envelope the targets add —
the Bundle id / MsgId (the gateway's message id), MessageHeader.destination, the MsgHead
Receiver — is not part of the canonical transfer, so no field is left out of it. The one
expected difference, and only it: ``samspill`` takes text fields of at most 2000 characters
(adapters/README.md), so a longer free text comes back cut with `` […]``; the test asserts
that exactly those fields differ, that each is a prefix of the original, that the delivery
detail names the field and that ``CarePlan.note`` holds the full text. For the text-only
receivers (``nhn_msh`` with ``structured = false``, ``acos``) the readable Dialogmelding must
hold every item of the plan, or, where ``acos``'s 4000 characters cannot, say that it was cut,
with the detail saying so; the structured IndividuellPlan beside it still holds every field.

Inputs mix ordinary generated plans with plans whose free texts are longer than 2000
characters, so the limits are exercised in every pair, not only in the hand-made cases below.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters import acos, fhir_rest, nhn_msh, sampro, samspill
from adapters.fhir_rest import FhirRest
from adapters.nhn_msh import NhnMsh
from gateway.config import Settings
from gateway.delivery import AdapterContext, Delivered, Delivery, DeliveryFailed
from gateway.delivery_policy import Cause
from gateway.demo.pki import SimulatedPki
from gateway.demo.platforms.fhir_server import FhirPlatform
from gateway.demo.platforms.nhn_msh_server import NhnMessageService
from gateway.domain.model import CoordinatingUnit, Organisation
from gateway.domain.plan import PlanTransfer
from gateway.store.database import Database
from mappings.fhir.plan import bundle_to_transfer, transfer_to_bundle
from mappings.outbound import to_fhir, to_msghead
from mappings.plo.msghead import Party, default_endpoint, to_bytes
from mappings.plo.plan import msghead_to_transfer, transfer_to_msghead
from mappings.plo.xmlsafe import parse_xml
from mappings.plo.xsd import SchemaSet, load_schema_set
from tests.plan_strategies import plan_transfers
from tests.standards import standards_dir
from tests.strategies import distinctive_name, fhir_text, patients
from tests.unit.test_fhir_plan import BASE

pytestmark = pytest.mark.integration

GATEWAY_HER = 99000001
KE_HER = 99001506
MH = "http://www.kith.no/xmlstds/msghead/2006-05-24"
DIA = "http://www.kith.no/xmlstds/dialog/2013-01-23"
IP = "https://ipgw.example/xmlstds/ip-melding/2026-11-23"
XHTML = "http://www.w3.org/1999/xhtml"
NS = {"mh": MH, "dia": DIA, "ip": IP, "h": XHTML}
MAX_BYTES = 10**8
#: the vendors' limits and markers as adapters/README.md publishes them
SAMSPILL_LIMIT = 2000
SAMSPILL_CUT = " […]"
ACOS_LIMIT = 4000
ACOS_CUT_LABEL = "Forkortet"
STRUCTURED_LABEL = "Strukturert plan"
#: keep the file well under a minute: 2 sources x 8 targets x this
EXAMPLES = 15
PROPERTY = settings(
    deadline=None,
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow],
)

Json = dict[str, Any]


# --------------------------------------------------------------------------- inputs


@st.composite
def long_text(draw: st.DrawFn) -> str:
    """A free text longer than samspill's field: words repeated, or one endless word."""
    # a little over, so what strip() takes off the end never brings it under
    length = draw(st.integers(SAMSPILL_LIMIT + 20, 2 * SAMSPILL_LIMIT + 500))
    if draw(st.integers(0, 9)) == 0:
        return "x" * length
    words = draw(st.lists(fhir_text(12), min_size=1, max_size=5))
    text = " ".join(words) + " "
    return (text * (length // len(text) + 1))[:length].strip()


def _free_text_slots(t: PlanTransfer) -> list[tuple[Any, ...]]:
    """Paths (in ``model_dump()``) of the plan's free texts: what a vendor limit may cut."""
    plan = t.plan
    slots: list[tuple[Any, ...]] = [("consent", "lacks_capacity_reason")]
    slots += [("needs", i) for i in range(len(plan.needs))]
    slots += [("resources", i) for i in range(len(plan.resources))]
    slots += [("goals", i, "description") for i in range(len(plan.goals))]
    for i in range(len(plan.participants)):
        slots += [("participants", i, "role"), ("participants", i, "contribution")]
    for i in range(len(plan.measures)):
        slots += [("measures", i, f) for f in ("description", "scope", "how")]
    slots += [("cooperation", i, "description") for i in range(len(plan.cooperation))]
    if plan.closed_reason:
        slots.append(("closed_reason",))
    if plan.sharing:
        slots.append(("sharing", "lacks_capacity_reason"))
    return slots


@st.composite
def lengthened(draw: st.DrawFn, transfers: st.SearchStrategy[PlanTransfer]) -> PlanTransfer:
    """A transfer with one to three of its plan's free texts longer than 2000 characters."""
    t = draw(transfers)
    slots = draw(
        st.lists(st.sampled_from(_free_text_slots(t)), min_size=1, max_size=3, unique=True)
    )
    data = t.model_dump()
    for slot in slots:
        owner: Any = data["plan"]
        for step in slot[:-1]:
            if isinstance(owner[step], tuple):  # needs, goals, ...: made assignable
                owner[step] = list(owner[step])
            owner = owner[step]
        owner[slot[-1]] = draw(long_text())
    return PlanTransfer.model_validate(data)


@st.composite
def distinctive(draw: st.DrawFn) -> PlanTransfer:
    """Generated transfers whose person data cannot occur in a detail by chance."""
    t = draw(plan_transfers())
    people = tuple(
        p.model_copy(update={"name": draw(distinctive_name())}) for p in t.plan.participants
    )
    plan = t.plan.model_copy(
        update={"patient": draw(patients(distinctive=True)), "participants": people}
    )
    return t.model_copy(update={"plan": plan})


TRANSFERS = st.one_of(distinctive(), lengthened(distinctive()))


def person_data(t: PlanTransfer) -> list[str]:
    patient = t.plan.patient
    return [patient.person_id, patient.name.family, *(p.name for p in t.plan.participants)]


# --------------------------------------------------------------------------- the platforms


@dataclass
class World:
    """The simulated platforms and one adapter per target, on one event loop for the module."""

    runner: asyncio.Runner
    fhir: FhirPlatform
    nhn: NhnMessageService
    adapters: dict[str, FhirRest | NhnMsh]
    schemas: SchemaSet
    #: what the run saw, for the report at the end
    seen: dict[str, int]

    def deliver(self, adapter: str, delivery: Delivery) -> Delivered:
        return self.runner.run(self.adapters[adapter].deliver(delivery))

    @property
    def nhn_adapter(self) -> NhnMsh:
        adapter = self.adapters["nhn_msh"]
        assert isinstance(adapter, NhnMsh)
        return adapter


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("plans")
    # the NHN path signed and encrypted (CMS), with test certificates, as on the health network
    pki = SimulatedPki(tmp / "pki")
    pki.ensure(GATEWAY_HER, KE_HER)
    fhir, nhn = FhirPlatform(), NhnMessageService(pki=pki)
    fhir.start()
    nhn.start()
    db = Database(f"sqlite:///{tmp / 'store.db'}")
    context = AdapterContext(
        settings=Settings(
            data_dir=tmp, gateway_her_id=GATEWAY_HER, **pki.gateway_settings(GATEWAY_HER)
        ),
        db=db,
    )
    runner = asyncio.Runner()
    adapters: dict[str, FhirRest | NhnMsh] = {
        "fhir_rest": fhir_rest.create(context),
        "samspill": samspill.create(context),
        "nhn_msh": nhn_msh.create(context),
        "sampro": sampro.create(context),
        "acos": acos.create(context),
    }
    schemas = load_schema_set(standards_dir() / "xsd")
    started = time.monotonic()
    w = World(runner, fhir, nhn, adapters, schemas, {})
    yield w
    for adapter in adapters.values():
        runner.run(adapter.aclose())
    runner.run(db.close())
    runner.close()
    fhir.stop()
    nhn.stop()
    print(f"\nplans across adapters: {w.seen} in {time.monotonic() - started:.1f} s")


def count(world: World, what: str) -> None:
    world.seen[what] = world.seen.get(what, 0) + 1


def unit(adapter: str) -> CoordinatingUnit:
    return CoordinatingUnit(
        kommune_nr="1506",
        kommune_name="Molde",
        name="Koordinerende enhet, Molde kommune",
        her_id=KE_HER,
        adapter=adapter,
    )


def read_msghead(world: World, document: bytes) -> tuple[PlanTransfer, etree._Element]:
    """As a receiver reads it: the hardened parser, the official schema set, the mapping."""
    root = parse_xml(document, max_bytes=MAX_BYTES)
    assert world.schemas.errors(root) == []
    return msghead_to_transfer(root, allow_synthetic_ids=True)[0], root


# --------------------------------------------------------------------------- sources


def from_fhir(world: World, t: PlanTransfer) -> PlanTransfer:
    body = orjson.dumps(transfer_to_bundle(t))
    return bundle_to_transfer(orjson.loads(body), allow_synthetic_ids=True)


def from_ip_xml(world: World, t: PlanTransfer) -> PlanTransfer:
    gateway = Party(Organisation(name="IP-gateway", her_id=GATEWAY_HER))
    root = transfer_to_msghead(t, msg_id=str(uuid.uuid4()), receiver=gateway)
    return read_msghead(world, to_bytes(root))[0]


SOURCES: dict[str, Callable[[World, PlanTransfer], PlanTransfer]] = {
    "fhir": from_fhir,
    "ip-xml": from_ip_xml,
}


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Arrived:
    """What the target platform holds, read back, and what the adapter said about it."""

    transfer: PlanTransfer
    detail: str
    bundle: Json | None = None
    msghead: etree._Element | None = None


def via_fhir(adapter: str) -> Callable[[World, PlanTransfer], Arrived]:
    def target(world: World, t: PlanTransfer) -> Arrived:
        d = Delivery(str(uuid.uuid4()), 1, t, unit(adapter), {"base_url": world.fhir.base_url})
        delivered = world.deliver(adapter, d)
        assert delivered.acknowledgement is not None
        assert delivered.acknowledgement.ok
        bundle = world.fhir.bundle(d.message_id)
        assert bundle is not None
        assert bundle["id"] == d.message_id
        back = bundle_to_transfer(bundle, allow_synthetic_ids=True)
        return Arrived(back, delivered.detail, bundle=bundle)

    return target


def via_nhn(adapter: str, **extra: Any) -> Callable[[World, PlanTransfer], Arrived]:
    def target(world: World, t: PlanTransfer) -> Arrived:
        settings_ = {"base_url": world.nhn.base_url, **extra}
        d = Delivery(str(uuid.uuid4()), 1, t, unit(adapter), settings_)
        delivered = world.deliver(adapter, d)
        assert delivered.acknowledgement is None  # the AppRec comes later
        document = world.nhn.kept(KE_HER)[d.message_id]
        back, root = read_msghead(world, document)
        assert root.findtext(f"{{{MH}}}MsgInfo/{{{MH}}}MsgId") == d.message_id
        return Arrived(back, delivered.detail, msghead=root)

    return target


def inbox_fhir(world: World, t: PlanTransfer) -> Arrived:
    """What ``GET /ke/{k}/inbox/{id}`` gives (gateway/api/ke.py renders with mappings/outbound)."""
    ke = Organisation(name=unit("ke_inbox").name, her_id=KE_HER)
    body = orjson.dumps(to_fhir(t, destination=default_endpoint(ke, None)))
    return Arrived(bundle_to_transfer(orjson.loads(body), allow_synthetic_ids=True), "")


def inbox_xml(world: World, t: PlanTransfer) -> Arrived:
    """``GET /ke/{k}/inbox/{id}`` with ``Accept: application/xml``."""
    ke = Party(Organisation(name=unit("ke_inbox").name, her_id=KE_HER))
    root = to_msghead(t, msg_id=str(uuid.uuid4()), receiver=ke)
    back, parsed = read_msghead(world, to_bytes(root))
    return Arrived(back, "", msghead=parsed)


TARGETS: dict[str, Callable[[World, PlanTransfer], Arrived]] = {
    "fhir_rest": via_fhir("fhir_rest"),
    "samspill": via_fhir("samspill"),
    "nhn_msh": via_nhn("nhn_msh"),
    "nhn_msh-text-only": via_nhn("nhn_msh", structured=False),
    "sampro": via_nhn("sampro"),
    "acos": via_nhn("acos"),
    "ke_inbox-fhir": inbox_fhir,
    "ke_inbox-xml": inbox_xml,
}


# --------------------------------------------------------------------------- checks


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, text) of every string in a dump, paths like ``plan.measures[1].how``."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from strings(item, f"{path}[{i}]")


def differences(a: Any, b: Any, path: str = "") -> set[str]:
    """Paths where two dumps differ (structure and values)."""
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return set().union(*(differences(a[k], b[k], f"{path}.{k}" if path else str(k)) for k in a))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return set().union(
            *(differences(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True)))
        )
    return set() if a == b else {path}


def readable_values(t: PlanTransfer) -> list[str]:
    """What a case worker must find in the text of a plan: every § 19 item and the sender."""
    plan = t.plan
    values = [plan.plan_id, str(plan.version), plan.version_id, plan.responsible.name]
    values += [plan.previous_version_id] if plan.previous_version_id else []
    values += [plan.closed_reason] if plan.closed_reason else []
    # a)
    values += [*plan.needs, *plan.resources]
    for g in plan.goals:
        values += [g.description] + ([g.target_date.isoformat()] if g.target_date else [])
    # b), c), d)
    for p in plan.participants:
        values += [p.name] + [v for v in (p.role, p.phone, p.email, p.contribution) if v]
        values += [str(p.hpr_nr)] if p.hpr_nr is not None else []
        values += [p.organisation.name] if p.organisation else []
    # e), f)
    for m in plan.measures:
        values += [m.description] + [v for v in (m.scope, m.how) if v]
        values += [d.isoformat() for d in (m.start, m.end) if d]
    # g)
    values += [plan.period_start.isoformat()] + [d.isoformat() for d in plan.evaluations]
    values += [plan.period_end.isoformat()] if plan.period_end else []
    # h)
    for consent in (plan.consent, plan.sharing):
        if consent is not None:
            values.append(consent.given_on.isoformat())
            values += [v for v in (consent.lacks_capacity_reason, consent.reference) if v]
    # i)
    for c in plan.cooperation:
        values += [c.agency.name] + ([c.description] if c.description else [])
    sender = t.sender
    values += [sender.organisation.name, t.sender_message_id]
    values += [sender.department.name] if sender.department else []
    values += [sender.contact.name] if sender.contact else []
    values += [t.new_kommune_nr] if t.new_kommune_nr else []
    return values


def labelled_lines(root: etree._Element) -> list[tuple[str, str]]:
    """(label, value) of the Dialogmelding's text lines (``<p><b>label: </b>value</p>``)."""
    found = root.xpath("//dia:Notat/dia:TekstNotatInnhold/h:div/h:p", namespaces=NS)
    assert isinstance(found, list)
    lines = []
    for p in found:
        assert isinstance(p, etree._Element)
        b = p.find(f"{{{XHTML}}}b")
        assert b is not None
        lines.append(((b.text or "").removesuffix(": "), b.tail or ""))
    return lines


def visible(lines: list[tuple[str, str]]) -> str:
    """The text as a reader sees it (and acos counts it): one line break between lines."""
    return "\n".join(f"{label}: {value}" for label, value in lines)


def documents(root: etree._Element) -> list[str]:
    contents = root.xpath("/mh:MsgHead/mh:Document/mh:RefDoc/mh:Content/*", namespaces=NS)
    assert isinstance(contents, list)
    return [etree.QName(c).localname for c in contents if isinstance(c, etree._Element)]


def check_samspill(world: World, t: PlanTransfer, arrived: Arrived) -> None:
    """Equal but for the free texts over 2000 characters: cut, named, kept whole in a note."""
    original = t.model_dump(mode="json")
    long = {path for path, text in strings(original) if len(text) > SAMSPILL_LIMIT}
    assert differences(original, arrived.transfer.model_dump(mode="json")) == long
    assert arrived.bundle is not None
    careplan = next(
        e["resource"]
        for e in arrived.bundle["entry"]
        if e["resource"]["resourceType"] == "CarePlan"
    )
    notes = [n["text"] for n in careplan.get("note", [])]
    back = dict(strings(arrived.transfer.model_dump(mode="json")))
    for path in long:
        full, cut = dict(strings(original))[path], back[path]
        assert len(cut) <= SAMSPILL_LIMIT
        assert cut.endswith(SAMSPILL_CUT)
        assert full.startswith(cut.removesuffix(SAMSPILL_CUT))
        assert path in arrived.detail
        assert any(full in note for note in notes), path
    assert len(notes) == len(long)
    if long:
        assert "CarePlan.note" in arrived.detail
        count(world, "samspill: texts cut")
    # nothing in the stored Bundle is over the limit but the notes that keep the full texts
    for path, text in strings(arrived.bundle):
        assert len(text) <= SAMSPILL_LIMIT or ".note[" in path, path


def check_text(world: World, t: PlanTransfer, arrived: Arrived, limit: int | None) -> None:
    """The readable Dialogmelding comes first and holds the plan, or says it was cut."""
    assert arrived.msghead is not None
    assert documents(arrived.msghead) == ["Dialogmelding", "IndividuellPlan"]
    lines = labelled_lines(arrived.msghead)
    text = visible(lines)
    labels = [label for label, _ in lines]
    assert labels[0] == "Individuell plan"
    assert STRUCTURED_LABEL in labels
    assert "IndividuellPlan" in arrived.detail
    if ACOS_CUT_LABEL in labels:
        assert limit is not None
        assert len(text) <= limit
        assert "cut" in arrived.detail
        count(world, "acos: text cut")
        # what shows is the plan's own text, whatever was cut after it
        assert t.plan.plan_id in text
        assert t.sender_message_id in text
        return
    if limit is not None:
        assert len(text) <= limit
    assert "whole plan" in arrived.detail
    missing = [i for i, value in enumerate(readable_values(t)) if value not in text]
    assert missing == []
    count(world, "text whole")


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("target", list(TARGETS))
@PROPERTY
@given(t=TRANSFERS)
def test_every_item_survives_the_move(
    world: World, source: str, target: str, t: PlanTransfer
) -> None:
    received = SOURCES[source](world, t)
    assert received == t  # what the gateway holds is what the sending platform had
    arrived = TARGETS[target](world, received)
    for value in person_data(t):
        assert value not in arrived.detail
    count(world, f"{source} -> {target}")

    if target == "samspill":
        check_samspill(world, t, arrived)
        return
    assert arrived.transfer == t
    if target == "fhir_rest":
        assert arrived.bundle is not None
        careplan = [
            e["resource"]
            for e in arrived.bundle["entry"]
            if e["resource"]["resourceType"] == "CarePlan"
        ]
        assert "note" not in careplan[0]  # nothing moved: every field is in its place
    elif target in ("nhn_msh", "sampro", "ke_inbox-xml"):
        assert arrived.msghead is not None
        assert documents(arrived.msghead) == ["IndividuellPlan"]
    elif target == "nhn_msh-text-only":
        check_text(world, t, arrived, None)
    elif target == "acos":
        check_text(world, t, arrived, ACOS_LIMIT)


# --------------------------------------------------------------------------- by hand

#: one measure's "how" longer than samspill's 2000 and acos's 4000 characters on its own
LONG_HOW = ("Ukentlig samtale med fysioterapeut og lærar om mål og framgang. " * 70).strip()


def long_transfer() -> PlanTransfer:
    """The hand-made plan of the mapping tests, one text made too long for both vendors."""
    measures = list(BASE.plan.measures)
    measures[0] = measures[0].model_copy(update={"how": LONG_HOW})
    plan = BASE.plan.model_copy(update={"measures": tuple(measures)})
    return PlanTransfer.model_validate(BASE.model_copy(update={"plan": plan}).model_dump())


def test_samspill_cuts_a_long_text_and_keeps_it_whole_in_a_note(world: World) -> None:
    t = long_transfer()
    arrived = TARGETS["samspill"](world, t)
    check_samspill(world, t, arrived)
    assert "plan.measures[0].how" in arrived.detail
    assert arrived.transfer.plan.measures[0].how != LONG_HOW
    assert arrived.transfer.model_copy(update={"plan": t.plan}) == t


def test_acos_cuts_a_long_plan_visibly_and_keeps_every_field_structured(world: World) -> None:
    t = long_transfer()
    arrived = TARGETS["acos"](world, t)
    assert arrived.transfer == t
    assert arrived.msghead is not None
    lines = labelled_lines(arrived.msghead)
    labels = [label for label, _ in lines]
    assert ACOS_CUT_LABEL in labels
    assert len(visible(lines)) <= ACOS_LIMIT
    assert "cut to the 4000 characters" in arrived.detail
    # which plan, from whom, and where the rest is: never cut
    assert labels[0] == "Individuell plan"
    assert labels[-2:] == ["Avsenders referanse", STRUCTURED_LABEL]
    # what comes before the long measure shows whole, the measure itself cut visibly
    measure = dict(lines)["Tiltak 1"]
    assert measure.endswith(SAMSPILL_CUT)
    assert LONG_HOW.startswith(measure.removesuffix(SAMSPILL_CUT).split("gjennomføring: ")[1])
    # the same plan to a text-only receiver without a limit shows all of it
    whole = TARGETS["nhn_msh-text-only"](world, t)
    assert whole.msghead is not None
    assert LONG_HOW in visible(labelled_lines(whole.msghead))


def test_samspill_refuses_a_plan_whose_name_it_cannot_hold(world: World) -> None:
    t = long_transfer()
    people = list(t.plan.participants)
    people[0] = people[0].model_copy(update={"name": "Å" * (SAMSPILL_LIMIT + 1)})
    plan = t.plan.model_copy(update={"participants": tuple(people)})
    t = PlanTransfer.model_validate(t.model_copy(update={"plan": plan}).model_dump())
    with pytest.raises(DeliveryFailed) as info:
        TARGETS["samspill"](world, t)
    assert info.value.cause is Cause.CLIENT_ERROR
    assert info.value.code == "T99"
    assert not info.value.retryable
    assert "plan.participants[0].name" in info.value.detail
    assert "ÅÅÅ" not in info.value.detail


def test_plans_on_the_nhn_service_are_answered_by_apprec_and_kept_apart(world: World) -> None:
    adapter = world.nhn_adapter
    before = world.nhn.duplicates_in_effect
    ids = []
    # two plan messages about the same person from the same sender: two messages, not one
    for _ in range(2):
        t = BASE.model_copy(update={"sender_message_id": str(uuid.uuid4())})
        d = Delivery(str(uuid.uuid4()), 1, t, unit("nhn_msh"), {"base_url": world.nhn.base_url})
        world.deliver("nhn_msh", d)
        ids.append(d.message_id)
    assert world.nhn.duplicates_in_effect == before
    acks = world.runner.run(adapter.poll_acknowledgements())
    answered = {a.message_id: a.ok for a in acks}
    assert [answered.get(i) for i in ids] == [True, True]
    world.runner.run(adapter.mark_handled(acks))
