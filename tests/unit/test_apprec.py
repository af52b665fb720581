"""AppRec 1.0 and 1.1 (mappings/plo/apprec.py) against the official XSDs and the real samples.

Expected values come from the samples in ../shared/standards/samples, the XSDs and the
standards README (code lists 8258 and 8221), not from running the mapping.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.domain.model import Organisation
from gateway.domain.receipt import (
    ERROR_TEXTS,
    Receipt,
    ReceiptError,
    ReceiptStatus,
    Refused,
)
from mappings.plo.apprec import Version, apprec_to_receipt, build_apprec, receipt_to_apprec
from mappings.plo.xmlsafe import parse_xml
from mappings.plo.xsd import SchemaSet, load_schema_set
from tests.standards import standards_dir
from tests.strategies import HER_IDS, ORGNRS, SENT_AT, fhir_text

AR10 = "http://www.kith.no/xmlstds/apprec/2004-11-21"
AR11 = "http://www.kith.no/xmlstds/apprec/2012-02-15"
NAMESPACE = {"1.0": AR10, "1.1": AR11}
#: the MIGversion each XSD has as its default (AppRec-v1-2004-11-21.xsd, AppRec-v1.1.xsd)
MIG = {"1.0": "1.0 2004-11-21", "1.1": "v1.1 2012-02-15"}
ERROR_OID = "2.16.578.1.12.4.1.1.8221"
CEST = dt.timezone(dt.timedelta(hours=2))
CET = dt.timezone(dt.timedelta(hours=1))
MAX = 1024 * 1024
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
VERSIONS: tuple[Version, ...] = ("1.0", "1.1")


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return load_schema_set(standards_dir() / "xsd")


def sample_path(name: str) -> Path:
    return standards_dir() / "samples" / name


def sample(name: str) -> etree._Element:
    return parse_xml(sample_path(name).read_bytes(), max_bytes=MAX)


def read(document: bytes) -> etree._Element:
    return parse_xml(document, max_bytes=MAX)


def reread(root: etree._Element) -> Receipt:
    """Serialise an edited document and read it as the gateway reads any AppRec."""
    return apprec_to_receipt(read(etree.tostring(root)))


def q(version: Version, path: str) -> str:
    """``a/b`` in the namespace of ``version``."""
    return "/".join(f"{{{NAMESPACE[version]}}}{step}" for step in path.split("/"))


def refusal(root: etree._Element) -> tuple[str, str]:
    with pytest.raises(Refused) as info:
        apprec_to_receipt(root)
    [error] = info.value.errors
    return error.code, error.detail or ""


# --------------------------------------------------------------------------- generated


def organisations() -> st.SearchStrategy[Organisation]:
    return st.builds(
        Organisation,
        name=fhir_text(),
        her_id=st.none() | HER_IDS,
        orgnr=st.none() | ORGNRS,
    )


CODES = st.sampled_from(sorted(ERROR_TEXTS))
ERRORS = st.builds(ReceiptError, code=CODES, detail=st.none() | fhir_text(80))
MESSAGE_TYPES = st.sampled_from(
    ["DIALOG_HELSEFAGLIG", "need-notice", "plan-transfer", "EPIKRISE"]
) | st.from_regex(r"[A-Z][A-Z_]{0,30}", fullmatch=True)
MESSAGE_IDS = (
    st.none() | st.uuids().map(str) | st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)
)


@st.composite
def receipts(draw: st.DrawFn) -> Receipt:
    status = draw(st.sampled_from(ReceiptStatus))
    errors = draw(
        st.lists(ERRORS, min_size=0 if status is ReceiptStatus.OK else 1, max_size=4).map(tuple)
    )
    receiver = draw(st.none() | organisations())
    return Receipt(
        id=draw(st.uuids()),
        generated_at=draw(SENT_AT),
        sender=draw(organisations()),
        sender_department=draw(st.none() | organisations()),
        receiver=receiver,
        receiver_department=None if receiver is None else draw(st.none() | organisations()),
        status=status,
        errors=errors,
        original_message_type=draw(MESSAGE_TYPES),
        original_message_id=draw(MESSAGE_IDS),
        original_issued_at=draw(st.none() | SENT_AT),
        gateway_message_id=draw(st.uuids()),
    )


def carried(receipt: Receipt) -> Receipt:
    """What an AppRec carries of a receipt: no gateway id; an unknown issue time is GenDate."""
    return receipt.model_copy(
        update={
            "gateway_message_id": None,
            "original_issued_at": receipt.original_issued_at or receipt.generated_at,
        }
    )


@PROPERTY
@given(receipt=receipts(), version=st.sampled_from(VERSIONS))
def test_any_receipt_makes_a_valid_apprec_that_reads_back(
    schemas: SchemaSet, receipt: Receipt, version: Version
) -> None:
    document = receipt_to_apprec(receipt, version)
    assert document.startswith(b"<?xml version=")
    root = read(document)
    assert schemas.errors(root) == []
    assert root.tag == f"{{{NAMESPACE[version]}}}AppRec"
    assert root.findtext(q(version, "MIGversion")) == MIG[version]
    assert apprec_to_receipt(root) == carried(receipt)


@PROPERTY
@given(receipt=receipts(), version=st.sampled_from(VERSIONS))
def test_status_and_errors_carry_their_code_lists(
    schemas: SchemaSet, receipt: Receipt, version: Version
) -> None:
    root = read(receipt_to_apprec(receipt, version))
    status = root.find(q(version, "Status"))
    assert status is not None
    assert status.get("V") == receipt.status.value
    assert (
        status.get("DN")
        == {"1": "OK", "2": "Avvist", "3": "OK, feil i delmelding"}[receipt.status.value]
    )
    errors = root.findall(q(version, "Error"))
    assert [(e.get("S"), e.get("V"), e.get("DN"), e.get("OT")) for e in errors] == [
        (ERROR_OID, e.code, ERROR_TEXTS[e.code], e.detail) for e in receipt.errors
    ]


@PROPERTY
@given(receipt=receipts())
def test_json_view_mirrors_the_apprec_parties(receipt: Receipt) -> None:
    """GET /receipts serves to_json(): it must say what the AppRec XML says."""
    root = read(receipt_to_apprec(receipt))
    body = receipt.to_json()
    for tag, key in (("Sender", "sender"), ("Receiver", "receiver")):
        inst = root.find(q("1.1", f"{tag}/HCP/Inst"))
        assert inst is not None
        assert (body[key] or {"hcp": {"inst": {}}})["hcp"]["inst"] == inst_as_json(inst)


def inst_as_json(element: etree._Element) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for child in element:
        name = etree.QName(child).localname
        if name in ("Name", "Id"):
            found[name.lower()] = child.text
        elif name == "TypeId":
            found["typeId"] = dict(child.attrib)
        elif name == "Dept":
            found["dept"] = inst_as_json(child)
        elif name == "AdditionalId":
            found.setdefault("additionalId", []).append(
                {"id": child.findtext(q("1.1", "Id")), "type": dict(child[1].attrib)}
            )
    return found


# --------------------------------------------------------------------------- writing


HF = Organisation(name="Helse Møre og Romsdal HF", her_id=99100001)
KE = Organisation(name="Koordinerende enhet, Ålesund kommune", her_id=99001506)
GENERATED = dt.datetime(2026, 11, 2, 10, 31, 7, tzinfo=dt.UTC)
ISSUED = dt.datetime(2026, 11, 2, 8, 32, 15, tzinfo=CET)


def receipt(**over: Any) -> Receipt:
    fields: dict[str, Any] = {
        "generated_at": GENERATED,
        "sender": KE,
        "receiver": HF,
        "status": ReceiptStatus.OK,
        "original_message_type": "DIALOG_HELSEFAGLIG",
        "original_message_id": "4c793d90-c41b-11e0-962b-0800200c9a66",
        "original_issued_at": ISSUED,
        "gateway_message_id": uuid.UUID(int=42),
    }
    return Receipt(**(fields | over))


@pytest.mark.parametrize("version", VERSIONS)
def test_apprec_has_the_elements_of_the_samples(schemas: SchemaSet, version: Version) -> None:
    r = receipt(receiver_department=Organisation(name="Barneklinikken", her_id=91126))
    root = read(receipt_to_apprec(r, version))
    assert schemas.errors(root) == []
    msg_type = root.find(q(version, "MsgType"))
    assert msg_type is not None
    assert (msg_type.get("V"), msg_type.get("DN")) == ("APPREC", "Applikasjonskvittering")
    assert root.findtext(q(version, "Id")) == str(r.id)
    assert dt.datetime.fromisoformat(root.findtext(q(version, "GenDate")) or "") == GENERATED
    inst = root.find(q(version, "Sender/HCP/Inst"))
    assert inst is not None
    assert inst.findtext(q(version, "Name")) == "Koordinerende enhet, Ålesund kommune"
    assert inst.findtext(q(version, "Id")) == "99001506"
    type_id = inst.find(q(version, "TypeId"))
    assert type_id is not None
    # TypeId is a CS: V and DN only, no S (the schema refuses one)
    assert dict(type_id.attrib) == {"V": "HER", "DN": "HER-id"}
    dept = root.find(q(version, "Receiver/HCP/Inst/Dept"))
    assert dept is not None
    assert dept.findtext(q(version, "Name")) == "Barneklinikken"
    assert dept.findtext(q(version, "Id")) == "91126"
    original = root.find(q(version, "OriginalMsgId"))
    assert original is not None
    original_type = original.find(q(version, "MsgType"))
    assert original_type is not None
    assert original_type.get("V") == "DIALOG_HELSEFAGLIG"
    assert original.findtext(q(version, "Id")) == "4c793d90-c41b-11e0-962b-0800200c9a66"
    issued = dt.datetime.fromisoformat(original.findtext(q(version, "IssueDate")) or "")
    assert issued == ISSUED
    assert issued.utcoffset() == dt.timedelta(hours=1)


def test_rejection_writes_code_text_and_detail(schemas: SchemaSet) -> None:
    errors = (
        ReceiptError(code="E21", detail="ingen koordinerende enhet for kommune 1507"),
        ReceiptError(code="T02"),
    )
    root = read(receipt_to_apprec(receipt(status=ReceiptStatus.REJECTED, errors=errors)))
    assert schemas.errors(root) == []
    assert [dict(e.attrib) for e in root.findall(q("1.1", "Error"))] == [
        {
            "S": ERROR_OID,
            "V": "E21",
            "DN": "Mottaker finnes ikke",  # as in apprec-1.0-avvist.xml
            "OT": "ingen koordinerende enhet for kommune 1507",
        },
        {"S": ERROR_OID, "V": "T02", "DN": "XML validerer ikke"},
    ]


def test_organisation_number_is_the_id_without_her_id_and_additional_beside_one(
    schemas: SchemaSet,
) -> None:
    r = receipt(
        sender=Organisation(name="Ålesund kommune", orgnr="942953119"),
        receiver=Organisation(name="Helse Møre og Romsdal HF", her_id=99100001, orgnr="997005562"),
    )
    root = read(receipt_to_apprec(r))
    assert schemas.errors(root) == []
    sender = root.find(q("1.1", "Sender/HCP/Inst"))
    receiver = root.find(q("1.1", "Receiver/HCP/Inst"))
    assert sender is not None
    assert receiver is not None
    assert sender.findtext(q("1.1", "Id")) == "942953119"
    assert sender.find(q("1.1", "TypeId")).get("V") == "ENH"  # type: ignore[union-attr]
    assert receiver.findtext(q("1.1", "Id")) == "99100001"
    assert receiver.findtext(q("1.1", "AdditionalId/Id")) == "997005562"
    assert receiver.find(q("1.1", "AdditionalId/Type")).get("V") == "ENH"  # type: ignore[union-attr]
    assert apprec_to_receipt(root) == carried(r)


def test_unknown_receiver_and_original_are_empty_and_read_back(schemas: SchemaSet) -> None:
    """A message too broken to name its sender still gets a valid AppRec."""
    r = receipt(
        receiver=None,
        status=ReceiptStatus.REJECTED,
        errors=(ReceiptError(code="T01", detail="not well-formed XML (line 1, column 7)"),),
        original_message_id=None,
        original_issued_at=None,
    )
    root = read(receipt_to_apprec(r, "1.0"))
    assert schemas.errors(root) == []
    inst = root.find(q("1.0", "Receiver/HCP/Inst"))
    assert inst is not None
    assert len(inst) == 0
    assert root.findtext(q("1.0", "OriginalMsgId/Id")) == ""
    assert root.findtext(q("1.0", "OriginalMsgId/IssueDate")) == root.findtext(q("1.0", "GenDate"))
    back = apprec_to_receipt(root)
    assert back.receiver is None
    assert back.original_message_id is None
    assert back.original_issued_at == GENERATED


def test_times_are_written_with_a_valid_offset(schemas: SchemaSet) -> None:
    odd = dt.timezone(dt.timedelta(hours=1, seconds=30))  # xs:dateTime has no seconds offset
    r = receipt(generated_at=dt.datetime(2026, 11, 2, 10, 0, 0, 250000, tzinfo=odd))
    root = read(receipt_to_apprec(r))
    assert schemas.errors(root) == []
    assert root.findtext(q("1.1", "GenDate")) == "2026-11-02T08:59:30.250000+00:00"
    assert apprec_to_receipt(root).generated_at == r.generated_at


def test_naive_time_is_not_written() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        receipt_to_apprec(receipt(generated_at=dt.datetime(2026, 11, 2, 10, 0)))


def test_unknown_version_is_not_written() -> None:
    with pytest.raises(ValueError, match="version"):
        build_apprec(receipt(), "1.2")  # type: ignore[arg-type]


def test_control_character_in_detail_does_not_cost_the_receipt(schemas: SchemaSet) -> None:
    error = ReceiptError(code="X99", detail="feil i felt\x0b3")
    root = read(receipt_to_apprec(receipt(status=ReceiptStatus.REJECTED, errors=(error,))))
    assert schemas.errors(root) == []
    assert root.find(q("1.1", "Error")).get("OT") == "feil i felt\ufffd3"  # type: ignore[union-attr]


def test_gateway_message_id_is_set_by_the_caller() -> None:
    root = read(receipt_to_apprec(receipt()))
    assert apprec_to_receipt(root).gateway_message_id is None
    matched = apprec_to_receipt(root, gateway_message_id=uuid.UUID(int=7))
    assert matched.gateway_message_id == uuid.UUID(int=7)


# --------------------------------------------------------------------------- the samples

SAMPLES = ("apprec-1.0-ok.xml", "apprec-1.0-avvist.xml", "apprec-1.1-ok.xml")


def test_sample_10_rejected() -> None:
    r = apprec_to_receipt(sample("apprec-1.0-avvist.xml"))
    assert r.id == uuid.UUID("8d018d60-336b-11de-8bd7-0002a5d5c51b")
    # no offset in the sample: Norwegian local time (CET in December)
    assert r.generated_at == dt.datetime(2008, 12, 17, 9, 30, 47, tzinfo=CET)
    # TypeId V=" HER" with a leading space is still a HER-id
    assert r.sender == Organisation(name="Kattskinnet legesenter", her_id=56704)
    assert r.sender_department is None
    assert r.receiver == Organisation(name="Testsykehuset HF", her_id=123459)
    assert r.receiver_department == Organisation(name="Medisinsk mikrobiologi", her_id=91126)
    assert r.status is ReceiptStatus.REJECTED
    assert r.errors == (ReceiptError(code="E21", detail="Legen har sluttet"),)
    assert r.original_message_type == "EPIKRISE"
    assert r.original_message_id == "a6967e6a-8c0a-4be4-a647-c921d3086423"
    assert r.original_issued_at == dt.datetime(2020, 6, 19, 17, 2, 15, tzinfo=CEST)
    assert r.gateway_message_id is None


def test_sample_10_ok() -> None:
    r = apprec_to_receipt(sample("apprec-1.0-ok.xml"))
    assert r.id == uuid.UUID("1d6b0e00-33a1-11de-9255-0002a5d5c51b")
    assert r.generated_at == dt.datetime(2020, 6, 19, 18, 5, 23, tzinfo=CEST)
    assert r.sender == Organisation(name="Kattskinnet legesenter", her_id=56704)
    assert r.receiver == Organisation(name="Testsykehuset HF", her_id=123459)
    assert r.receiver_department == Organisation(name="Medisinsk mikrobiologi", her_id=91126)
    assert r.status is ReceiptStatus.OK
    assert r.errors == ()
    assert r.original_message_type == "EPIKRISE"
    assert r.original_message_id == "a6967e6a-8c0a-4be4-a647-c921d3086423"
    assert r.original_issued_at == dt.datetime(2020, 6, 19, 17, 2, 15, tzinfo=CEST)


def test_sample_11_ok() -> None:
    r = apprec_to_receipt(sample("apprec-1.1-ok.xml"))
    assert r.id == uuid.UUID("5e4f20c0-c41b-11e0-962b-0800200c9a66")
    assert r.generated_at == dt.datetime(2012, 2, 17, 10, 31, 7, tzinfo=CET)
    assert r.sender == Organisation(name="Kattskinnet legesenter", her_id=56704)
    assert r.receiver == Organisation(name="SYKEHUSET I VESTFOLD HF", her_id=69)
    # TypeId DN=" HER-id" with a stray space does not matter: V says HER
    assert r.receiver_department == Organisation(name="Kirurgi", her_id=89583)
    assert r.status is ReceiptStatus.OK
    assert r.errors == ()
    assert r.original_message_type == "EPIKRISE"
    assert r.original_message_id == "4c793d90-c41b-11e0-962b-0800200c9a66"
    assert r.original_issued_at == dt.datetime(2012, 2, 17, 8, 32, 15, tzinfo=CET)


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("version", VERSIONS)
def test_samples_round_trip(schemas: SchemaSet, name: str, version: Version) -> None:
    assert schemas.errors(sample(name)) == []
    first = apprec_to_receipt(sample(name))
    document = receipt_to_apprec(first, version)
    root = read(document)
    assert schemas.errors(root) == []
    assert apprec_to_receipt(root) == first
    assert receipt_to_apprec(apprec_to_receipt(root), version) == document


@pytest.mark.parametrize("name", SAMPLES)
def test_persons_in_the_samples_are_not_carried(name: str) -> None:
    """HCPerson names a person; a receipt answers for the unit."""
    document = receipt_to_apprec(apprec_to_receipt(sample(name)))
    for person in ("Rita Lin", "258521", "August September", "369767"):
        assert person.encode() not in document


# --------------------------------------------------------------------------- lenient reading


def test_stray_spaces_and_case_in_codes_are_read() -> None:
    root = sample("apprec-1.0-avvist.xml")
    status = root.find(q("1.0", "Status"))
    error = root.find(q("1.0", "Error"))
    type_id = root.find(q("1.0", "Receiver/HCP/Inst/TypeId"))
    assert status is not None
    assert error is not None
    assert type_id is not None
    status.set("V", " 3 ")
    error.set("V", " e21 ")
    error.set("S", f" {ERROR_OID} ")
    type_id.set("V", "her ")
    r = reread(root)
    assert r.status is ReceiptStatus.OK_WITH_ERRORS
    assert r.errors == (ReceiptError(code="E21", detail="Legen har sluttet"),)
    assert r.receiver == Organisation(name="Testsykehuset HF", her_id=123459)


def test_error_from_another_code_list_reads_as_other_error() -> None:
    root = sample("apprec-1.0-avvist.xml")
    error = root.find(q("1.0", "Error"))
    assert error is not None
    error.set("S", "2.16.578.1.12.4.1.1.8222")
    error.set("V", "29")
    r = reread(root)
    assert r.status is ReceiptStatus.REJECTED
    assert r.errors == (
        ReceiptError(code="X99", detail="29 (2.16.578.1.12.4.1.1.8222): Legen har sluttet"),
    )


def test_error_without_s_is_from_8221_and_blank_ot_is_no_detail() -> None:
    root = sample("apprec-1.0-avvist.xml")
    error = root.find(q("1.0", "Error"))
    assert error is not None
    del error.attrib["S"]
    error.set("OT", "  ")
    assert reread(root).errors == (ReceiptError(code="E21"),)


def test_health_professional_as_sender_reads_as_the_party() -> None:
    document = sample_path("apprec-1.1-ok.xml").read_bytes()
    document = document.replace(
        b"""<Inst>
                <Name>Kattskinnet legesenter</Name>
                <Id>56704</Id>
                <TypeId V="HER" DN="HER-id"/>
                <HCPerson>
                    <Name>August September</Name>
                    <Id>369767</Id>
                    <TypeId V="HER" DN="HER-id"/>
                </HCPerson>
            </Inst>""",
        b"""<HCProf>
                <Type V="LE" DN="Lege"/>
                <Name>Kari Fastlege</Name>
                <Id>369767</Id>
                <TypeId V="HER" DN="HER-id"/>
            </HCProf>""",
    )
    assert b"HCProf" in document
    r = apprec_to_receipt(read(document))
    assert r.sender == Organisation(name="Kari Fastlege", her_id=369767)
    assert r.sender_department is None


def test_time_in_utc_and_without_seconds_fraction_is_read() -> None:
    root = sample("apprec-1.1-ok.xml")
    gen_date = root.find(q("1.1", "GenDate"))
    assert gen_date is not None
    gen_date.text = " 2012-02-17T09:31:07.123456789Z "
    assert reread(root).generated_at == dt.datetime(2012, 2, 17, 9, 31, 7, 123456, tzinfo=dt.UTC)


def test_first_department_is_the_unit() -> None:
    root = sample("apprec-1.1-ok.xml")
    dept = root.find(q("1.1", "Receiver/HCP/Inst/Dept"))
    assert dept is not None
    second = copy.deepcopy(dept)
    second.find(q("1.1", "Name")).text = "Ortopedi"  # type: ignore[union-attr]
    dept.addnext(second)
    assert reread(root).receiver_department == Organisation(name="Kirurgi", her_id=89583)


# --------------------------------------------------------------------------- refusals


def without(root: etree._Element, path: str) -> etree._Element:
    element = root.find(path)
    assert element is not None
    parent = element.getparent()
    assert parent is not None
    parent.remove(element)
    return root


def test_wrong_namespace_is_refused() -> None:
    document = sample_path("apprec-1.1-ok.xml").read_bytes()
    document = document.replace(AR11.encode(), b"http://www.kith.no/xmlstds/apprec/2099-01-01")
    assert refusal(read(document)) == (
        "T10",
        "not an AppRec 1.0 or 1.1 document (root element or namespace)",
    )


def test_other_document_is_refused() -> None:
    code, _ = refusal(sample("msghead-dialogmelding-1.1-helsefaglig.xml"))
    assert code == "T10"


def test_missing_status_is_refused() -> None:
    root = without(sample("apprec-1.1-ok.xml"), q("1.1", "Status"))
    assert refusal(root) == ("T02", "AppRec/Status is missing")


@pytest.mark.parametrize(("value", "text"), [("2", "Avvist"), ("3", "OK, feil i delmelding")])
def test_status_2_or_3_without_error_is_refused(value: str, text: str) -> None:
    root = sample("apprec-1.0-ok.xml")
    status = root.find(q("1.0", "Status"))
    assert status is not None
    status.set("V", value)
    assert refusal(root) == (
        "T02",
        f"AppRec/Status {value} ({text}) needs at least one Error (8221)",
    )


def test_status_outside_8258_is_refused() -> None:
    root = sample("apprec-1.1-ok.xml")
    root.find(q("1.1", "Status")).set("V", "4")  # type: ignore[union-attr]
    assert refusal(root) == ("T02", "AppRec/Status V is not 1, 2 or 3 (code list 8258)")


def test_msg_type_other_than_apprec_is_refused() -> None:
    root = sample("apprec-1.1-ok.xml")
    root.find(q("1.1", "MsgType")).set("V", "EPIKRISE")  # type: ignore[union-attr]
    assert refusal(root) == ("T10", "AppRec/MsgType V is not APPREC")


def test_id_that_is_no_guid_is_refused() -> None:
    root = sample("apprec-1.1-ok.xml")
    root.find(q("1.1", "Id")).text = "kvittering-17"  # type: ignore[union-attr]
    assert refusal(root) == ("E10", "AppRec/Id is not a GUID")


def test_missing_original_msg_id_is_refused() -> None:
    root = without(sample("apprec-1.1-ok.xml"), q("1.1", "OriginalMsgId"))
    assert refusal(root) == ("T02", "AppRec/OriginalMsgId is missing")


def test_unreadable_gen_date_is_refused() -> None:
    root = sample("apprec-1.1-ok.xml")
    root.find(q("1.1", "GenDate")).text = "17.02.2012 10:31"  # type: ignore[union-attr]
    assert refusal(root) == ("T02", "AppRec/GenDate is not a date and time")


def test_sender_without_name_is_refused() -> None:
    root = without(sample("apprec-1.1-ok.xml"), q("1.1", "Sender/HCP/Inst/Name"))
    assert refusal(root) == ("T02", "AppRec/Sender/HCP/Inst/Name is missing")


def test_invalid_her_id_is_refused_without_its_value() -> None:
    root = sample("apprec-1.1-ok.xml")
    root.find(q("1.1", "Receiver/HCP/Inst/Dept/Id")).text = "89583x"  # type: ignore[union-attr]
    code, detail = refusal(root)
    assert (code, detail) == ("T02", "AppRec/Receiver/HCP/Inst/Dept: invalid HER-id")
    assert "89583" not in detail


def test_error_without_code_is_refused() -> None:
    root = sample("apprec-1.0-avvist.xml")
    del root.find(q("1.0", "Error")).attrib["V"]  # type: ignore[union-attr]
    assert refusal(root) == ("T02", "AppRec/Error[1] has no V")


@PROPERTY
@given(
    name=st.sampled_from(SAMPLES),
    cuts=st.lists(st.integers(0, 60), max_size=4),
    blanks=st.lists(st.integers(0, 60), max_size=4),
)
def test_damaged_apprec_reads_or_is_refused_never_crashes(
    name: str, cuts: list[int], blanks: list[int]
) -> None:
    """Whatever a sender leaves out or empties, the answer is a receipt or a coded refusal."""
    root = sample(name)
    for index in blanks:
        elements = list(root.iter())
        element = elements[index % len(elements)]
        element.text = " "
        for attribute in element.attrib:
            element.set(attribute, " ")
    for index in cuts:
        elements = list(root.iter())[1:]
        if elements:
            element = elements[index % len(elements)]
            parent = element.getparent()
            assert parent is not None
            parent.remove(element)
    codes: set[str] = set()
    try:
        apprec_to_receipt(root)
    except Refused as r:
        codes = {e.code for e in r.errors}
    assert codes <= {"T02", "T10", "E10"}
