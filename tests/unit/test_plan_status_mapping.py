"""Plan status messages (gateway/domain/plan.py ``PlanStatusMessage``) <-> FHIR R4 message
Bundle (mappings/fhir/plan_status.py) and MsgHead + Dialogmelding (mappings/plo/plan_status.py).

Expected values come from the generated or hand-written status, the official R4 JSON Schema and
KITH XSDs (../shared/standards) and the published systems (spelled out here, as in
tests/unit/test_fhir_plan.py), never from the code under test.

A status message comes from the gateway itself: the model refuses a sender department or
contact (neither format carries them). The gateway sends as its own organisation with a
HER-id (gateway/pipeline/plan_status.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from lxml import etree
from pydantic import ValidationError

from gateway.domain.identifiers import PersonIdKind
from gateway.domain.model import Contact, Organisation, Patient, PersonName, Sender
from gateway.domain.plan import PLAN_EVENT_TEXT, PlanEvent, PlanStatusMessage
from gateway.domain.receipt import Refused
from mappings.fhir.common import check_structure
from mappings.fhir.plan_status import bundle_to_status, readable, status_to_bundle
from mappings.fhir.r4json import r4_json_problems
from mappings.outbound import to_fhir, to_msghead
from mappings.plo.msghead import read_envelope, to_bytes
from mappings.plo.plan_status import msghead_to_status, status_dialog, status_to_msghead
from mappings.plo.xmlsafe import parse_xml
from tests import plan_strategies
from tests.standards import PERSON_ID_SYSTEM, r4_schema_validator, schema_problems
from tests.strategies import (
    HER_IDS,
    KOMMUNE_NRS,
    ORGNRS,
    SENT_AT,
    fhir_text,
    fhir_url,
    organisations,
    patients,
    strings_in,
)
from tests.unit.test_plo_mapping import RECEIVER, schema_set

Json = dict[str, Any]

# the project's own systems, as mappings/fhir/systems.py publishes them (written out here)
OWN = "https://ipgw.example/fhir"
EVENT_SYSTEM = f"{OWN}/CodeSystem/message-event"
PLAN_EVENT = f"{OWN}/CodeSystem/plan-event"
PLAN_ID = f"{OWN}/NamingSystem/plan-id"
GATEWAY_MESSAGE = f"{OWN}/NamingSystem/gateway-message-id"
PLAN_VERSION = f"{OWN}/StructureDefinition/plan-version"
NEW_KOMMUNE = f"{OWN}/StructureDefinition/new-kommune"
NEW_RESPONSIBLE = f"{OWN}/StructureDefinition/new-responsible"

MH = "http://www.kith.no/xmlstds/msghead/2006-05-24"
DIA = "http://www.kith.no/xmlstds/dialog/2013-01-23"
XHTML = "http://www.w3.org/1999/xhtml"
NSMAP = {"mh": MH, "dia": DIA, "h": XHTML}
#: the labelled lines a platform reads back, in the order mappings/plo/plan_status.py writes them
REQUIRED_LINES = ("Hendelse", "Plan-id", "Versjon", "Gjelder melding", "Statusmelding")

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX = 10 * 1024 * 1024

# --------------------------------------------------------------------------- fixed statuses

#: the gateway, as gateway/pipeline/plan_status.py names itself (Settings.gateway_her_id)
GATEWAY = Sender(organisation=Organisation(name="IP-gatewayen", her_id=99999999))
#: synthetic (month + 80: 15.03.85), so it can never be a real person's number
SYNTHETIC_FNR = "15838512086"

TRANSFERRED = PlanStatusMessage(
    message_ref="3f6d2c1e-8a4b-4e5f-9c7d-1a2b3c4d5e6f",
    sent_at=dt.datetime(2026, 11, 23, 14, 5, 9, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    sender=GATEWAY,
    patient=Patient(
        person_id=SYNTHETIC_FNR,
        id_kind=PersonIdKind.FNR,
        name=PersonName(given="Åsne Kjærstin", family="Øyehaug-Ødegård"),
        kommune_nr="1506",
    ),
    plan_id="ip-2024-0042",
    version=3,
    event=PlanEvent.TRANSFERRED,
    regarding="7d1e0c2a-5b8f-4a43-9e61-2f0d4c3b1a77",
    new_kommune_nr="1508",
    new_responsible=Organisation(name="Koordinerande eining, Ålesund kommune", her_id=99200012),
)

WITHDRAWN = PlanStatusMessage(
    message_ref="m-1",
    sent_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
    sender=Sender(organisation=Organisation(name="IP-gatewayen", her_id=1, orgnr="942952880")),
    patient=Patient(
        person_id="55437010063",  # synthetic D-nummer: day 15 + 40, month 03 + 40, 1970
        id_kind=PersonIdKind.DNR,
        name=PersonName(given="Ørjan", family="Æsøy"),
    ),
    plan_id="p",
    version=2**31 - 1,
    event=PlanEvent.CONSENT_WITHDRAWN,
    regarding="r",
)

# --------------------------------------------------------------------------- strategies

#: MessageRef values: GUIDs as the gateway makes them, or any id FHIR and MsgHead both hold
REFS = st.one_of(st.uuids().map(str), plan_strategies.IDS)
#: a FHIR instant with the sender's offset, in whole seconds (the gateway sends those)
WHOLE_SECONDS = SENT_AT.map(lambda d: d.replace(microsecond=0))
#: the gateway as sender: a HER-id (MsgHead needs an ident; a receiver answers to it)
GATEWAYS = st.builds(
    lambda name, her_id, orgnr: Sender(
        organisation=Organisation(name=name, her_id=her_id, orgnr=orgnr)
    ),
    fhir_text(),
    HER_IDS,
    st.none() | ORGNRS,
)
#: the new KE as the Notat's lines carry it: a name and perhaps a HER-id and orgnr
NAMED_KE = st.builds(
    Organisation, name=fhir_text(), her_id=st.none() | HER_IDS, orgnr=st.none() | ORGNRS
)
#: the new KE as FHIR carries it: any organisation (HER-id, orgnr, both or neither)
ANY_KE = organisations(identified=False)


@st.composite
def statuses(
    draw: st.DrawFn,
    *,
    responsible: st.SearchStrategy[Organisation] = ANY_KE,
    distinctive: bool = False,
) -> PlanStatusMessage:
    event = draw(st.sampled_from(PlanEvent))
    return PlanStatusMessage(
        message_ref=draw(REFS),
        sent_at=draw(WHOLE_SECONDS),
        sender=draw(GATEWAYS),
        patient=draw(patients(distinctive=distinctive)),
        plan_id=draw(REFS),
        version=draw(st.integers(1, 2**31 - 1)),
        event=event,
        regarding=draw(REFS),
        new_kommune_nr=draw(KOMMUNE_NRS) if event is PlanEvent.TRANSFERRED else None,
        new_responsible=draw(st.none() | responsible),
    )


# --------------------------------------------------------------------------- helpers


def over_the_wire(bundle: Json) -> Json:
    """As a receiver gets it: serialised and parsed again."""
    loaded: Json = orjson.loads(orjson.dumps(bundle))
    return loaded


def resources(bundle: Json, resource_type: str) -> list[Json]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def communication(bundle: Json) -> Json:
    (found,) = resources(bundle, "Communication")
    return found


def resolve(bundle: Json, ref: Json) -> Json:
    found: list[Json] = [e["resource"] for e in bundle["entry"] if e["fullUrl"] == ref["reference"]]
    assert len(found) == 1, "a reference resolves to exactly one entry"
    return found[0]


def reparse(root: etree._Element) -> etree._Element:
    return parse_xml(to_bytes(root), max_bytes=MAX)


def xpath(root: etree._Element, path: str) -> list[Any]:
    found = root.xpath(path, namespaces=NSMAP)
    assert isinstance(found, list)
    return found


def xml_strings(root: etree._Element) -> list[str]:
    """Every text, tail and attribute value (the escaped bytes would hide ``&`` or ``<``)."""
    out: list[str] = []
    for element in root.iter():
        out.extend(s for s in (element.text, element.tail) if s)
        out.extend(str(v) for v in element.attrib.values())
    return out


def secrets_of(status: PlanStatusMessage) -> list[str]:
    p = status.patient
    return [p.person_id, p.name.given, p.name.family]


def assert_holds_none(texts: Iterable[str], secrets: Iterable[str], where: str) -> None:
    joined = "\n".join(texts)
    for secret in secrets:
        assert secret not in joined, f"{where} holds a person id or name"


def status_lines(root: etree._Element) -> dict[str, etree._Element]:
    """label -> the <p> of that labelled line in the Notat."""
    lines = {}
    for b in xpath(root, "//dia:Notat/dia:TekstNotatInnhold//h:p/h:b"):
        lines[(b.text or "").strip().removesuffix(":")] = b.getparent()
    return lines


def remove(element: etree._Element) -> None:
    parent = element.getparent()
    assert parent is not None
    parent.remove(element)


def msghead_of(status: PlanStatusMessage, msg_id: str | None = None) -> etree._Element:
    msg_id = msg_id or str(uuid.uuid4())
    return reparse(status_to_msghead(status, msg_id=msg_id, receiver=RECEIVER))


# --------------------------------------------------------------------------- FHIR round trip


@settings(PROPERTY, max_examples=40)
@given(statuses(), st.none() | fhir_url())
@example(TRANSFERRED, None)
@example(TRANSFERRED, "urn:oid:2.16.578.1.12.4.1.2:99200001")
@example(WITHDRAWN, None)
def test_fhir_round_trip_and_r4_structure(
    status: PlanStatusMessage, destination: str | None
) -> None:
    bundle = status_to_bundle(status, destination=destination)
    # the structure checks the plan tests use: R4 JSON, the R4 model, the official schema
    assert r4_json_problems(bundle) == []
    Bundle.model_validate(bundle)
    check_structure(bundle)
    assert schema_problems(r4_schema_validator(), bundle) == []

    back = bundle_to_status(over_the_wire(bundle), allow_synthetic_ids=True)
    assert back == status
    # datetime == compares instants: the sender's offset must survive too
    assert back.sent_at.utcoffset() == status.sent_at.utcoffset()
    assert back.sent_at.isoformat() == status.sent_at.isoformat()


@settings(PROPERTY, max_examples=30)
@given(statuses(), st.none() | fhir_url())
@example(TRANSFERRED, "urn:oid:2.16.578.1.12.4.1.2:99200001")
@example(WITHDRAWN, None)
def test_fhir_layout(status: PlanStatusMessage, destination: str | None) -> None:
    """What the round trip cannot see: which systems and references a receiver reads."""
    bundle = status_to_bundle(status, destination=destination)
    header = bundle["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    assert header["id"] == status.message_ref
    assert (header["eventCoding"]["system"], header["eventCoding"]["code"]) == (
        EVENT_SYSTEM,
        "plan-status",
    )
    assert header.get("destination") == ([{"endpoint": destination}] if destination else None)
    (focus,) = header["focus"]
    comm = resolve(bundle, focus)
    assert comm is communication(bundle)
    assert [c["code"] for cat in comm["category"] for c in cat["coding"]] == [status.event.value]
    assert [c["system"] for cat in comm["category"] for c in cat["coding"]] == [PLAN_EVENT]
    assert {"identifier": {"system": PLAN_ID, "value": status.plan_id}} in comm["about"]
    assert {"identifier": {"system": GATEWAY_MESSAGE, "value": status.regarding}} in comm["about"]
    patient = resolve(bundle, comm["subject"])
    assert patient["resourceType"] == "Patient"
    assert patient["identifier"] == [
        {"system": PERSON_ID_SYSTEM[status.patient.id_kind], "value": status.patient.person_id}
    ]
    sender = resolve(bundle, header["sender"])
    assert sender is resolve(bundle, comm["sender"])
    assert (sender["resourceType"], sender["name"]) == (
        "Organization",
        status.sender.organisation.name,
    )
    values = {e["url"]: e for e in comm.get("extension", [])}
    assert values[PLAN_VERSION]["valuePositiveInt"] == status.version
    assert (NEW_KOMMUNE in values) == (status.new_kommune_nr is not None)
    if status.new_kommune_nr:
        assert values[NEW_KOMMUNE]["valueCoding"]["code"] == status.new_kommune_nr
    assert (NEW_RESPONSIBLE in values) == (status.new_responsible is not None)
    if status.new_responsible:
        ke = resolve(bundle, values[NEW_RESPONSIBLE]["valueReference"])
        assert (ke["resourceType"], ke["name"]) == ("Organization", status.new_responsible.name)
    assert comm["payload"] == [{"contentString": readable(status)}]


# --------------------------------------------------------------------------- MsgHead round trip


@settings(PROPERTY, max_examples=60)
@given(statuses(responsible=NAMED_KE))
@example(TRANSFERRED)
@example(WITHDRAWN)
def test_msghead_round_trip_and_schema(status: PlanStatusMessage) -> None:
    msg_id = str(uuid.uuid4())
    root = msghead_of(status, msg_id)
    assert schema_set().errors(root) == []

    back = msghead_to_status(root, allow_synthetic_ids=True)
    assert back == status
    assert back.sent_at.utcoffset() == status.sent_at.utcoffset()
    assert back.sent_at.isoformat() == status.sent_at.isoformat()

    envelope = read_envelope(root, allow_synthetic_ids=True)
    assert (envelope.msg_type, envelope.msg_id) == ("DIALOG_HELSEFAGLIG", msg_id)
    assert envelope.receiver == RECEIVER
    assert envelope.patient == status.patient


def test_msghead_lines_by_hand() -> None:
    root = msghead_of(TRANSFERRED)
    lines = {label: "".join(p.itertext()) for label, p in status_lines(root).items()}
    assert lines == {
        "Hendelse": "Hendelse: transferred",
        "Plan-id": "Plan-id: ip-2024-0042",
        "Versjon": "Versjon: 3",
        "Gjelder melding": "Gjelder melding: 7d1e0c2a-5b8f-4a43-9e61-2f0d4c3b1a77",
        "Statusmelding": "Statusmelding: 3f6d2c1e-8a4b-4e5f-9c7d-1a2b3c4d5e6f",
        "Ny kommune": "Ny kommune: 1508",
        "Ny ansvarlig": "Ny ansvarlig: Koordinerande eining, Ålesund kommune",
        "Ny ansvarlig HER-id": "Ny ansvarlig HER-id: 99200012",
    }
    sender = "/mh:MsgHead/mh:MsgInfo/mh:Sender/mh:Organisation"
    assert xpath(root, f"{sender}/mh:Ident[mh:TypeId/@V='HER']/mh:Id/text()") == ["99999999"]
    assert xpath(root, "/mh:MsgHead/mh:MsgInfo/mh:GenDate/text()") == ["2026-11-23T14:05:09+01:00"]


# --------------------------------------------------------------------------- privacy


@settings(PROPERTY, max_examples=40)
@given(statuses(distinctive=True))
@example(TRANSFERRED)
@example(WITHDRAWN)
def test_readable_texts_hold_no_person(status: PlanStatusMessage) -> None:
    """The person is in Patient (FHIR) and MsgInfo/Patient (MsgHead), nowhere else."""
    secrets = secrets_of(status)
    others = [
        status.message_ref,
        status.plan_id,
        status.regarding,
        status.sender.organisation.name,
        status.new_responsible.name if status.new_responsible else "",
    ]
    # a generated id or organisation name that happens to contain them says nothing
    assume(not any(s in o for s in secrets for o in others))

    assert_holds_none([readable(status)], secrets, "readable()")
    assert_holds_none(xml_strings(status_dialog(status)), secrets, "the Dialogmelding")

    bundle = status_to_bundle(status)
    (patient,) = resources(bundle, "Patient")
    assert all(s in "\n".join(strings_in(patient)) for s in secrets)  # the secrets are real
    rest = [e["resource"] for e in bundle["entry"] if e["resource"] is not patient]
    assert_holds_none(strings_in(rest), secrets, "a FHIR resource other than Patient")

    root = msghead_of(status)
    (patient_el,) = xpath(root, "/mh:MsgHead/mh:MsgInfo/mh:Patient")
    assert all(s in "\n".join(xml_strings(patient_el)) for s in secrets)
    remove(patient_el)
    assert_holds_none(xml_strings(root), secrets, "the MsgHead outside MsgInfo/Patient")


def test_readable_text_by_hand() -> None:
    assert readable(TRANSFERRED) == (
        f"{PLAN_EVENT_TEXT[PlanEvent.TRANSFERRED]}. Plan-id ip-2024-0042, versjon 3. "
        "Ny ansvarlig: kommune 1508 (Koordinerande eining, Ålesund kommune). "
        "Avslutt planen her og gi tilgang videre."
    )
    assert "Planen skal ikke lenger brukes" in readable(WITHDRAWN)


# --------------------------------------------------------------------------- refusals


def _drop_about(system: str) -> Callable[[Json], None]:
    def change(comm: Json) -> None:
        comm["about"] = [a for a in comm["about"] if a["identifier"]["system"] != system]
        if not comm["about"]:
            del comm["about"]  # an empty array is no R4 JSON: keep the Bundle valid

    return change


def _drop_category(comm: Json) -> None:
    del comm["category"]


def _foreign_category(comm: Json) -> None:
    comm["category"] = [{"coding": [{"system": "http://example.org/other", "code": "transferred"}]}]


def _drop_version(comm: Json) -> None:
    comm["extension"] = [e for e in comm["extension"] if e["url"] != PLAN_VERSION]
    if not comm["extension"]:
        del comm["extension"]


@pytest.mark.parametrize("status", [TRANSFERRED, WITHDRAWN], ids=["transferred", "withdrawn"])
@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_drop_about(PLAN_ID), id="no-plan-id-about"),
        pytest.param(_drop_about(GATEWAY_MESSAGE), id="no-regarding-about"),
        pytest.param(_drop_category, id="no-event-category"),
        pytest.param(_foreign_category, id="event-in-another-system"),
        pytest.param(_drop_version, id="no-plan-version"),
    ],
)
def test_bundle_without_plan_id_or_event_is_refused(
    status: PlanStatusMessage, change: Callable[[Json], None]
) -> None:
    bundle = over_the_wire(status_to_bundle(status))
    change(communication(bundle))
    check_structure(bundle)  # still R4: the refusal is the mapping's, not the structure check's
    with pytest.raises(Refused) as info:
        bundle_to_status(bundle, allow_synthetic_ids=True)
    found = [e.code for e in info.value.errors]
    assert found, "Refused without errors"
    assert set(found) == {"T02"}, f"{found} (detail: {info.value})"
    assert_holds_none([str(info.value)], secrets_of(status), "the refusal")


def test_bundle_of_another_event_is_t10() -> None:
    bundle = status_to_bundle(TRANSFERRED)
    bundle["entry"][0]["resource"]["eventCoding"]["code"] = "plan-transfer"
    with pytest.raises(Refused) as info:
        bundle_to_status(bundle, allow_synthetic_ids=True)
    assert [e.code for e in info.value.errors] == ["T10"]


@pytest.mark.parametrize(
    ("status", "label"),
    [
        *((TRANSFERRED, label) for label in (*REQUIRED_LINES, "Ny kommune")),
        *((WITHDRAWN, label) for label in REQUIRED_LINES),
    ],
)
def test_msghead_without_a_line_is_t02(status: PlanStatusMessage, label: str) -> None:
    root = msghead_of(status)
    line = status_lines(root)[label]
    remove(line)
    assert label not in status_lines(root)
    assert schema_set().errors(root) == []  # still a valid Dialogmelding
    with pytest.raises(Refused) as info:
        msghead_to_status(root, allow_synthetic_ids=True)
    assert [e.code for e in info.value.errors] == ["T02"]
    assert_holds_none([str(info.value)], secrets_of(status), "the refusal")


@pytest.mark.parametrize(
    ("label", "value"),
    [("Versjon", "tre"), ("Versjon", "0"), ("Hendelse", "closed"), ("Plan-id", "ip 42")],
)
def test_msghead_with_an_invalid_line_is_t02(label: str, value: str) -> None:
    root = msghead_of(WITHDRAWN)
    (b,) = status_lines(root)[label]
    b.tail = value
    with pytest.raises(Refused) as info:
        msghead_to_status(root, allow_synthetic_ids=True)
    assert [e.code for e in info.value.errors] == ["T02"]


@pytest.mark.parametrize(
    ("base", "change"),
    [
        pytest.param(WITHDRAWN, {"new_kommune_nr": "1508"}, id="withdrawn-with-kommune"),
        pytest.param(TRANSFERRED, {"new_kommune_nr": None}, id="transferred-without-kommune"),
        pytest.param(
            TRANSFERRED, {"event": PlanEvent.CONSENT_WITHDRAWN}, id="withdrawn-keeps-kommune"
        ),
    ],
)
def test_model_names_the_new_kommune_only_for_a_transfer(
    base: PlanStatusMessage, change: dict[str, Any]
) -> None:
    data = base.model_dump()
    PlanStatusMessage.model_validate(data)  # the base itself is fine
    with pytest.raises(ValidationError, match="names the kommune it went to"):
        PlanStatusMessage.model_validate({**data, **change})


@pytest.mark.parametrize(
    "sender",
    [
        Sender(
            organisation=Organisation(name="ip-gateway", her_id=99999999),
            department=Organisation(name="Avdeling", her_id=5),
        ),
        Sender(
            organisation=Organisation(name="ip-gateway", her_id=99999999),
            contact=Contact(name="Ola Nordmann"),
        ),
    ],
    ids=["department", "contact"],
)
def test_model_refuses_a_sender_other_than_the_gateway_itself(sender: Sender) -> None:
    data = TRANSFERRED.model_dump()
    with pytest.raises(ValidationError, match="from the gateway itself"):
        PlanStatusMessage.model_validate({**data, "sender": sender.model_dump()})


# --------------------------------------------------------------------------- outbound


@settings(PROPERTY, max_examples=15)
@given(statuses(responsible=NAMED_KE), st.none() | fhir_url(), st.booleans())
@example(TRANSFERRED, "urn:oid:2.16.578.1.12.4.1.2:99200001", True)
@example(WITHDRAWN, None, False)
def test_outbound_dispatches_a_status_to_its_mappings(
    status: PlanStatusMessage, destination: str | None, structured: bool
) -> None:
    assert to_fhir(status, destination=destination) == status_to_bundle(
        status, destination=destination
    )
    msg_id = str(uuid.uuid4())
    direct = to_bytes(status_to_msghead(status, msg_id=msg_id, receiver=RECEIVER))
    dispatched = to_msghead(status, msg_id=msg_id, receiver=RECEIVER, structured=structured)
    assert to_bytes(dispatched) == direct
