"""KITH XML: MsgHead v1.2 envelopes, the notice (Dialogmelding 1.1 + BehovForIP), the plan
(IndividuellPlan), checked against the official XSDs in ../shared/standards/xsd and the real
sample. Expected values come from the standards README and the samples, not from the mapping.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.domain.model import Organisation
from gateway.domain.plan import PlanTransfer
from gateway.domain.receipt import Refused
from mappings.plo.msghead import Party, read_envelope, to_bytes
from mappings.plo.notice import msghead_to_notice, notice_to_msghead
from mappings.plo.plan import msghead_to_transfer, transfer_to_msghead
from mappings.plo.xmlsafe import parse_xml
from mappings.plo.xsd import SchemaSet, load_schema_set
from tests.plan_strategies import plan_transfers
from tests.standards import standards_dir
from tests.strategies import need_notices
from tests.unit.test_fhir_notice import BASE, MINIMAL

MH = "http://www.kith.no/xmlstds/msghead/2006-05-24"
DIA = "http://www.kith.no/xmlstds/dialog/2013-01-23"
IP = "https://ipgw.example/xmlstds/ip-melding/2026-11-23"
NSMAP = {"mh": MH, "dia": DIA, "ip": IP, "fk1": "http://www.kith.no/xmlstds/felleskomponent1"}
RECEIVER = Party(
    Organisation(name="Molde kommune", orgnr="964979065"),
    Organisation(name="Koordinerende enhet", her_id=99001506),
)
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return load_schema_set(standards_dir() / "xsd")


_SCHEMAS: list[SchemaSet] = []


def schema_set() -> SchemaSet:
    """For hypothesis tests (no function-scoped fixtures there): built once."""
    if not _SCHEMAS:
        _SCHEMAS.append(load_schema_set(standards_dir() / "xsd"))
    return _SCHEMAS[0]


def reparse(root: etree._Element) -> etree._Element:
    """Serialise and parse again with the gateway's parser, as a receiver would."""
    return parse_xml(to_bytes(root), max_bytes=MAX)


def xpath(root: etree._Element, path: str) -> list[Any]:
    found = root.xpath(path, namespaces=NSMAP)
    assert isinstance(found, list)
    return found


# --------------------------------------------------------------------------- notice


@settings(PROPERTY, max_examples=150)
@given(need_notices(), st.booleans())
@example(BASE, True)
@example(MINIMAL, True)
def test_notice_round_trip_and_schema(notice: Any, same_id: bool) -> None:
    msg_id = notice.sender_message_id if same_id and _is_guid(notice.sender_message_id) else None
    msg_id = msg_id or str(uuid.uuid4())
    root = reparse(notice_to_msghead(notice, msg_id=msg_id, receiver=RECEIVER))
    assert schema_set().errors(root) == []
    back, envelope = msghead_to_notice(root, allow_synthetic_ids=True)
    assert back == notice
    assert envelope.msg_id == msg_id
    assert envelope.receiver == RECEIVER


def _is_guid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower() and len(value) == 36
    except ValueError:
        return False


def test_notice_is_a_helsefaglig_dialog_any_epj_can_show(schemas: SchemaSet) -> None:
    root = reparse(notice_to_msghead(BASE, msg_id=str(uuid.uuid4()), receiver=RECEIVER))
    assert schemas.errors(root) == []
    assert xpath(root, "/mh:MsgHead/mh:MsgInfo/mh:Type/@V") == ["DIALOG_HELSEFAGLIG"]
    assert xpath(root, "/mh:MsgHead/mh:MsgInfo/mh:MIGversion/text()") == ["v1.2 2006-05-24"]
    # sender: the trust with HER-id and orgnr, the department nested (it has a HER-id)
    org = "/mh:MsgHead/mh:MsgInfo/mh:Sender/mh:Organisation"
    assert xpath(root, f"{org}/mh:Ident[mh:TypeId/@V='HER']/mh:Id/text()") == ["99100001"]
    assert xpath(root, f"{org}/mh:Ident[mh:TypeId/@V='ENH']/mh:Id/text()") == ["997005562"]
    assert xpath(root, f"{org}/mh:Ident/mh:TypeId/@S") == ["2.16.578.1.12.4.1.1.9051"] * 2
    assert xpath(root, f"{org}/mh:Organisation/mh:Ident/mh:Id/text()") == ["99100012"]
    # patient: FNR ident with code list 8116; the kommune in Address/County
    patient = "/mh:MsgHead/mh:MsgInfo/mh:Patient"
    assert xpath(root, f"{patient}/mh:Ident/mh:Id/text()") == [BASE.patient.person_id]
    assert xpath(root, f"{patient}/mh:Ident/mh:TypeId/@V") == ["FNR"]
    assert xpath(root, f"{patient}/mh:Ident/mh:TypeId/@S") == ["2.16.578.1.12.4.1.1.8116"]
    assert xpath(root, f"{patient}/mh:Address/mh:County/@V") == ["1507"]
    # first document: the Dialogmelding Notat, topic 7322, role 9034/8 for the HF contact
    notat = "/mh:MsgHead/mh:Document[1]/mh:RefDoc/mh:Content/dia:Dialogmelding/dia:Notat"
    assert xpath(root, f"{notat}/dia:TemaKodet/@S") == ["2.16.578.1.12.4.1.1.7322"]
    role = xpath(root, f"{notat}/dia:RollerRelatertNotat/dia:RoleToPatient")
    assert [(r.get("V"), r.get("S")) for r in role] == [("8", "2.16.578.1.12.4.1.1.9034")]
    assert xpath(root, f"{notat}//fk1:TeleAddress/@V") == ["tel:+4770000000"]
    # the readable text holds the need, so an EPJ that ignores our content still shows it
    text = "".join(xpath(root, f"{notat}/dia:TekstNotatInnhold//text()"))
    assert BASE.need in text
    assert "barnekoordinator" in text
    # second document: our structured content
    structured = "/mh:MsgHead/mh:Document[2]/mh:RefDoc/mh:Content/ip:BehovForIP"
    assert xpath(root, f"{structured}/ip:Tjeneste/text()") == [
        "barnekoordinator",
        "individuell-plan",
    ]


def test_unstructured_notice_is_valid_dialog_but_not_readable_back(schemas: SchemaSet) -> None:
    root = reparse(
        notice_to_msghead(BASE, msg_id=str(uuid.uuid4()), receiver=RECEIVER, structured=False)
    )
    assert schemas.errors(root) == []
    assert len(xpath(root, "/mh:MsgHead/mh:Document")) == 1
    with pytest.raises(Refused) as info:
        msghead_to_notice(root, allow_synthetic_ids=True)
    assert [e.code for e in info.value.errors] == ["T10"]


def test_department_without_ident_travels_in_our_content(schemas: SchemaSet) -> None:
    dept = Organisation(name="Nevrologisk avdeling")
    notice = BASE.model_copy(update={"sender": BASE.sender.model_copy(update={"department": dept})})
    root = reparse(notice_to_msghead(notice, msg_id=str(uuid.uuid4()), receiver=RECEIVER))
    assert schemas.errors(root) == []
    assert xpath(root, "//mh:Sender/mh:Organisation/mh:Organisation") == []
    assert xpath(root, "//ip:BehovForIP/ip:Avdeling/ip:Navn/text()") == ["Nevrologisk avdeling"]
    assert msghead_to_notice(root, allow_synthetic_ids=True)[0] == notice


# --------------------------------------------------------------------------- plan


@settings(PROPERTY, max_examples=100)
@given(plan_transfers())
def test_plan_round_trip_and_schema(transfer: PlanTransfer) -> None:
    msg_id = str(uuid.uuid4())
    root = reparse(transfer_to_msghead(transfer, msg_id=msg_id, receiver=RECEIVER))
    assert schema_set().errors(root) == []
    back, envelope = msghead_to_transfer(root, allow_synthetic_ids=True)
    assert back == transfer
    assert envelope.msg_type == "IP_PLAN"


@settings(PROPERTY, max_examples=30)
@given(plan_transfers().filter(lambda t: any(m.owner for m in t.plan.measures)))
def test_plan_schema_checks_references(transfer: PlanTransfer) -> None:
    """The XSD's keyrefs refuse a measure owned by someone who is not a participant."""
    root = reparse(transfer_to_msghead(transfer, msg_id=str(uuid.uuid4()), receiver=RECEIVER))
    assert schema_set().errors(root) == []
    owner = xpath(root, "//ip:IndividuellPlan/ip:Tiltak/ip:Ansvarlig")[0]
    owner.set("deltaker", "nobody")
    errors = schema_set().errors(root)
    assert errors
    assert all(e.code == "T02" for e in errors)


# --------------------------------------------------------------------------- envelope


def sample(name: str) -> bytes:
    return (standards_dir() / "samples" / name).read_bytes()


def test_real_dialogmelding_sample_envelope(schemas: SchemaSet) -> None:
    root = parse_xml(sample("msghead-dialogmelding-1.1-helsefaglig.xml"), max_bytes=MAX)
    assert schemas.errors(root) == []
    env = read_envelope(root, allow_synthetic_ids=False)
    assert env.msg_type == "DIALOG_HELSEFAGLIG"
    assert env.msg_id == "d93cebe5-ac91-4022-8969-4f93300d8171"
    # GenDate without an offset is Norwegian local time (winter: +01:00)
    assert env.generated_at == dt.datetime(
        2019, 3, 8, 10, 32, 12, tzinfo=dt.timezone(dt.timedelta(hours=1))
    )
    assert env.sender == Party(Organisation(name="Kattskinnet legesenter", her_id=56704))
    assert env.receiver == Party(
        Organisation(name="ST OLAVS HOSPITAL HF", her_id=59),
        Organisation(name="Ortopedisk kirurgi", her_id=90998),
    )
    assert env.patient is not None
    assert env.patient.person_id == "13116900216"
    assert (env.patient.name.given, env.patient.name.family) == ("Line", "Danser")
    # a helsefaglig dialog without our content is not a notice: T10, not a crash
    with pytest.raises(Refused) as info:
        msghead_to_notice(root, allow_synthetic_ids=False)
    assert [e.code for e in info.value.errors] == ["T10"]


def _envelope_refusal(change: Any) -> list[str]:
    root = parse_xml(sample("msghead-dialogmelding-1.1-helsefaglig.xml"), max_bytes=MAX)
    change(root)
    with pytest.raises(Refused) as info:
        read_envelope(root, allow_synthetic_ids=False)
    return [e.code for e in info.value.errors]


def _set_text(path: str, text: str) -> Any:
    def change(root: etree._Element) -> None:
        (element,) = xpath(root, path)
        element.text = text

    return change


@pytest.mark.parametrize(
    ("change", "code"),
    [
        pytest.param(_set_text("//mh:MsgId", "12345"), "E10", id="msgid-not-guid"),
        pytest.param(_set_text("//mh:MIGversion", "v1.1 2006-02-15"), "T10", id="wrong-mig"),
        pytest.param(_set_text("//mh:Patient/mh:Ident/mh:Id", "13116900217"), "E31", id="bad-fnr"),
        pytest.param(_set_text("//mh:Patient/mh:Ident/mh:Id", " "), "E30", id="empty-fnr"),
        pytest.param(_set_text("//mh:Patient/mh:FamilyName", " "), "E32", id="no-family-name"),
        pytest.param(
            lambda r: xpath(r, "//mh:Patient/mh:Ident/mh:TypeId")[0].set("V", "DNR"),
            "E31",
            id="fnr-declared-as-dnr",
        ),
        pytest.param(
            lambda r: xpath(r, "//mh:Receiver/mh:Organisation/mh:Ident/mh:Id")[0].__setattr__(
                "text", "0"
            ),
            "E21",
            id="receiver-her-id-zero",
        ),
    ],
)
def test_envelope_refusals(change: Any, code: str) -> None:
    assert _envelope_refusal(change) == [code]


def test_wrong_namespace_is_t10() -> None:
    data = sample("msghead-dialogmelding-1.1-helsefaglig.xml").replace(
        b"http://www.kith.no/xmlstds/msghead/2006-05-24", b"http://www.kith.no/xmlstds/msghead/2099"
    )
    with pytest.raises(Refused) as info:
        read_envelope(parse_xml(data, max_bytes=MAX), allow_synthetic_ids=False)
    assert [e.code for e in info.value.errors] == ["T10"]


def test_lenient_codes_in_real_messages() -> None:
    """Real messages carry ``V=" HER"`` (see the AppRec 1.0 sample): the meaning is clear."""
    root = parse_xml(sample("msghead-dialogmelding-1.1-helsefaglig.xml"), max_bytes=MAX)
    for type_id in xpath(root, "//mh:Sender/mh:Organisation/mh:Ident/mh:TypeId"):
        type_id.set("V", " HER ")
    assert read_envelope(root, allow_synthetic_ids=False).sender.organisation.her_id == 56704
