"""Routing (gateway/routing.py) and receipts
(gateway/domain/receipt.py) against DESIGN.md and the AppRec facts in ../shared/standards/."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.config import DEFAULT_DIRECTORY
from gateway.demo.samples import make_notice
from gateway.directory import Directory, DirectoryEntry, load_directory
from gateway.domain.model import (
    CoordinatingUnit,
    NeedNotice,
    Organisation,
    PersonName,
)
from gateway.domain.receipt import Receipt, ReceiptError, ReceiptStatus, Refused
from gateway.population import PopulationRegisterError, load_file_register
from gateway.routing import HeldForOperator, Routed, route
from mappings.codes.kommune_register import kommune_register
from tests.standards import standards_dir

STANDARDS = standards_dir()
APPREC_11 = "{http://www.kith.no/xmlstds/apprec/2012-02-15}"
APPREC_10 = "{http://www.kith.no/xmlstds/apprec/2004-11-21}"
ERROR_OID = "2.16.578.1.12.4.1.1.8221"
LONG_DIGIT_RUN = re.compile(r"\d{6,}")


def notice(seed: int = 1, kommune_nr: str = "1506") -> NeedNotice:
    return make_notice(random.Random(seed), kommune_nr)


def with_patient(n: NeedNotice, **update: Any) -> NeedNotice:
    return n.model_copy(update={"patient": n.patient.model_copy(update=update)})


def assert_names_no_person(n: NeedNotice, text: str) -> None:
    lowered = text.lower()
    assert n.patient.person_id not in text
    assert n.patient.name.given.lower() not in lowered
    assert n.patient.name.family.lower() not in lowered
    assert not LONG_DIGIT_RUN.search(text), text


# A name that could not appear in any fixed text by accident.
ODD_NAME = PersonName(given="Xyzzyveig", family="Qwertzbakken")


# consent: tests/unit/test_consent_rules.py (rules) and tests/integration (the pipeline)


# --- routing ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(DEFAULT_DIRECTORY)


def small_directory() -> Directory:
    unit = CoordinatingUnit(
        kommune_nr="1506",
        kommune_name="Molde",
        name="Koordinerende enhet, Molde kommune",
        her_id=81234567,
        adapter="ke_inbox",
    )
    return Directory({"1506": DirectoryEntry(unit)})


REGISTER = kommune_register()
TODAY = dt.date(2026, 11, 23)


def routed(n: NeedNotice, directory: Directory) -> CoordinatingUnit:
    decision = route(n, directory, REGISTER, TODAY)
    assert isinstance(decision, Routed), decision
    return decision.unit


def test_routes_to_the_ke_of_the_patients_kommune(directory: Directory) -> None:
    unit = routed(notice(1, "1506"), directory)
    assert unit.kommune_nr == "1506"
    assert unit.kommune_name == "Molde"


@pytest.mark.parametrize(("nr", "name"), [("1508", "Ålesund"), ("5001", "Trondheim")])
def test_route_follows_the_kommune_not_the_sender(directory: Directory, nr: str, name: str) -> None:
    assert routed(notice(2, "1506"), directory).kommune_nr == "1506"
    moved = with_patient(notice(2, "1506"), kommune_nr=nr)
    assert routed(moved, directory).kommune_name == name


def test_route_uses_the_given_directory() -> None:
    unit = routed(notice(5, "1506"), small_directory())
    assert unit.her_id == 81234567


@pytest.mark.parametrize(
    ("old", "today", "name"),
    [
        ("1502", "1506", "Molde"),  # Molde before the 2020 merger
        ("1601", "5001", "Trondheim"),  # Sør-Trøndelag numbering before 2018
        ("1534", "1580", "Haram"),  # Haram before 2020, re-established 2024
        ("1504", "1508", "Ålesund"),  # Ålesund before 2020: the part that stayed Ålesund
    ],
)
def test_an_old_kommunenummer_reaches_todays_ke(
    directory: Directory, old: str, today: str, name: str
) -> None:
    decision = route(with_patient(notice(3), kommune_nr=old), directory, REGISTER, TODAY)
    assert isinstance(decision, Routed)
    assert (decision.unit.kommune_nr, decision.unit.kommune_name) == (today, name)
    assert decision.mapped is not None
    assert old in decision.mapped
    assert today in decision.mapped


def test_a_number_a_split_made_ambiguous_waits_for_an_operator(directory: Directory) -> None:
    n = with_patient(notice(4), kommune_nr="1507", name=ODD_NAME)  # Ålesund 2020-2023
    decision = route(n, directory, REGISTER, TODAY)
    assert isinstance(decision, HeldForOperator)
    assert "1508" in decision.reason
    assert "1580" in decision.reason
    assert_names_no_person(n, decision.reason)


@pytest.mark.parametrize("kommune_nr", ["0301", "9999", "1508"])
def test_unknown_kommune_is_refused_with_e21(kommune_nr: str) -> None:
    n = with_patient(notice(6), kommune_nr=kommune_nr, name=ODD_NAME)
    with pytest.raises(Refused) as info:
        route(n, small_directory(), REGISTER, TODAY)
    assert [e.code for e in info.value.errors] == ["E21"]
    assert "E21" in str(info.value)
    assert kommune_nr in str(info.value)  # a kommune is no person: the sender needs it
    assert_names_no_person(n, str(info.value))


def test_kommune_missing_from_default_directory_is_refused_with_e21(directory: Directory) -> None:
    with pytest.raises(Refused) as info:
        route(notice(8, "0301"), directory, REGISTER, TODAY)  # Oslo: not served by this gateway
    assert info.value.errors[0].code == "E21"


def test_missing_kommune_is_refused_with_e36(directory: Directory) -> None:
    n = with_patient(notice(9), kommune_nr=None, name=ODD_NAME)
    with pytest.raises(Refused) as info:
        route(n, directory, REGISTER, TODAY)
    assert [e.code for e in info.value.errors] == ["E36"]
    assert info.value.errors[0].detail
    assert_names_no_person(n, str(info.value))


# --- receipts (AppRec 1.1 as JSON) -----------------------------------------------------------


def sample(name: str) -> ET.Element:
    return ET.parse(STANDARDS / "samples" / name).getroot()


HF = Organisation(name="Helse Møre og Romsdal HF", her_id=99100001)
KE = Organisation(name="Koordinerende enhet, Molde kommune", her_id=99001506)
ISSUED = dt.datetime(2026, 11, 2, 8, 32, 15, tzinfo=dt.UTC)
GENERATED = dt.datetime(2026, 11, 2, 10, 31, 7, tzinfo=dt.UTC)


def receipt(status: ReceiptStatus, *errors: ReceiptError, **over: Any) -> Receipt:
    fields: dict[str, Any] = {
        "generated_at": GENERATED,
        "sender": KE,
        "receiver": HF,
        "status": status,
        "errors": errors,
        "original_message_type": "need-notice",
        "original_message_id": "4c793d90-c41b-11e0-962b-0800200c9a66",
        "original_issued_at": ISSUED,
        "gateway_message_id": uuid.UUID(int=42),
    }
    return Receipt(**(fields | over))


def test_ok_receipt_has_the_apprec_11_structure() -> None:
    r = receipt(ReceiptStatus.OK)
    body = r.to_json()
    xml = sample("apprec-1.1-ok.xml")
    msg_type = xml.find(f"{APPREC_11}MsgType")
    assert msg_type is not None
    assert body["msgType"] == {"V": "APPREC", "DN": msg_type.get("DN")}
    assert body["msgType"]["V"] == msg_type.get("V")
    assert body["miGversion"] == xml.findtext(f"{APPREC_11}MIGversion")
    status = xml.find(f"{APPREC_11}Status")
    assert status is not None
    assert body["status"] == {"V": "1", "DN": status.get("DN")}
    assert body["error"] == []
    assert body["id"] == str(r.id)
    assert dt.datetime.fromisoformat(body["genDate"]) == GENERATED
    assert body["originalMsgId"]["id"] == "4c793d90-c41b-11e0-962b-0800200c9a66"
    assert body["originalMsgId"]["msgType"]["V"] == "need-notice"
    assert dt.datetime.fromisoformat(body["originalMsgId"]["issueDate"]) == ISSUED
    assert body["gatewayMessageId"] == str(uuid.UUID(int=42))


def test_receipt_elements_in_apprec_order() -> None:
    body = receipt(ReceiptStatus.OK).to_json()
    order = [
        "msgType",
        "miGversion",
        "genDate",
        "id",
        "sender",
        "receiver",
        "status",
        "error",
        "originalMsgId",
    ]
    assert [k for k in body if k in order] == order
    xml_order = [child.tag.removeprefix(APPREC_11) for child in sample("apprec-1.1-ok.xml")]
    assert [t.lower() for t in xml_order] == [
        k.lower() for k in order if k != "error"
    ]  # the OK sample has no Error


def test_receipt_parties_carry_her_ids() -> None:
    body = receipt(ReceiptStatus.OK).to_json()
    assert body["sender"]["hcp"]["inst"] == {
        "name": KE.name,
        "id": "99001506",
        "typeId": {"V": "HER", "DN": "HER-id"},
    }
    assert body["receiver"]["hcp"]["inst"]["id"] == "99100001"
    assert body["receiver"]["hcp"]["inst"]["typeId"]["V"] == "HER"


def test_receipt_party_without_her_id_has_no_id() -> None:
    body = receipt(ReceiptStatus.OK, sender=Organisation(name="ip-gateway")).to_json()
    assert body["sender"]["hcp"]["inst"] == {"name": "ip-gateway"}


def test_rejected_receipt_has_status_2_and_a_coded_error() -> None:
    error = ReceiptError(code="E21", detail="no koordinerende enhet for kommune 0301")
    body = receipt(ReceiptStatus.REJECTED, error).to_json()
    xml = sample("apprec-1.0-avvist.xml")
    status = xml.find(f"{APPREC_10}Status")
    xml_error = xml.find(f"{APPREC_10}Error")
    assert status is not None
    assert xml_error is not None
    assert body["status"] == {"V": "2", "DN": status.get("DN")}
    assert body["error"] == [
        {
            "S": ERROR_OID,
            "V": "E21",
            "DN": xml_error.get("DN"),  # "Mottaker finnes ikke" in the official sample
            "OT": "no koordinerende enhet for kommune 0301",
        }
    ]
    assert xml_error.get("S") == ERROR_OID


def test_refused_becomes_the_receipt_errors(directory: Directory) -> None:
    with pytest.raises(Refused) as info:
        route(with_patient(notice(11), kommune_nr=None), directory, REGISTER, TODAY)
    body = receipt(ReceiptStatus.REJECTED, *info.value.errors).to_json()
    assert body["status"]["V"] == "2"
    assert [(e["S"], e["V"]) for e in body["error"]] == [(ERROR_OID, "E36")]
    assert body["error"][0]["OT"] == info.value.errors[0].detail


def test_error_without_detail_has_no_ot() -> None:
    body = receipt(ReceiptStatus.REJECTED, ReceiptError(code="T02")).to_json()
    assert body["error"][0].keys() == {"S", "V", "DN"}
    assert body["error"][0]["DN"]


def test_several_errors_keep_their_order() -> None:
    errors = (ReceiptError(code="E30"), ReceiptError(code="E32"), ReceiptError(code="X99"))
    body = receipt(ReceiptStatus.OK_WITH_ERRORS, *errors).to_json()
    assert body["status"]["V"] == "3"
    assert body["status"]["DN"]
    assert [e["V"] for e in body["error"]] == ["E30", "E32", "X99"]
    assert all(e["S"] == ERROR_OID for e in body["error"])


def test_unknown_error_code_reads_as_other_error() -> None:
    unknown = ReceiptError(code="E99")
    assert unknown.text == ReceiptError(code="X99").text
    assert unknown.text


def test_receipt_json_is_plain_json() -> None:
    body = receipt(ReceiptStatus.REJECTED, ReceiptError(code="E36", detail="kommune missing"))
    assert json.loads(json.dumps(body.to_json())) == body.to_json()


def test_receipt_without_original_issue_date_or_receiver() -> None:
    body = receipt(ReceiptStatus.OK, original_issued_at=None, receiver=None).to_json()
    assert body["originalMsgId"]["issueDate"] is None
    assert body["receiver"] is None


@pytest.mark.parametrize("status", [ReceiptStatus.REJECTED, ReceiptStatus.OK_WITH_ERRORS])
def test_status_2_or_3_needs_at_least_one_error(status: ReceiptStatus) -> None:
    """Code list 8258: "at least one Error when the status is 2 or 3"."""
    with pytest.raises(ValidationError):
        receipt(status)


@pytest.mark.parametrize("code", ["e21", "E2", "E210", "Z21", "", "21", "E2X"])
def test_error_codes_follow_the_8221_shape(code: str) -> None:
    with pytest.raises(ValidationError):
        ReceiptError(code=code)


def test_refused_one_holds_one_error() -> None:
    refused = Refused.one("E36", "the patient's kommune is missing")
    assert len(refused.errors) == 1
    assert refused.errors[0].code == "E36"
    assert refused.errors[0].detail == "the patient's kommune is missing"
    assert str(refused) == "E36: the patient's kommune is missing"


def test_refused_message_lists_every_error() -> None:
    refused = Refused(ReceiptError(code="E30"), ReceiptError(code="E32", detail="name missing"))
    text = str(refused)
    assert "E30" in text
    assert "E32: name missing" in text
    assert ReceiptError(code="E30").text in text  # no detail: the code list's text


# --- population register ---------------------------------------------------------------------


def test_kommune_from_the_population_register_on_the_day_sent(
    directory: Directory, tmp_path: Any
) -> None:
    n = with_patient(notice(12), kommune_nr=None)
    path = tmp_path / "folkeregister.json"
    moves = [{"kommune": "5001", "from": "2020-01-01"}, {"kommune": "1506", "from": "2099-01-01"}]
    path.write_text(json.dumps({"persons": {n.patient.person_id: moves}}), encoding="utf-8")
    register = load_file_register(path)
    decision = route(n, directory, REGISTER, TODAY, register)
    assert isinstance(decision, Routed)
    assert decision.unit.kommune_nr == "5001"  # sent before the move of 2099
    assert decision.mapped is not None
    assert "population register" in decision.mapped
    # a person the register does not know: E36, and the detail never holds the id
    other = with_patient(notice(13), kommune_nr=None)
    with pytest.raises(Refused) as info:
        route(other, directory, REGISTER, TODAY, register)
    assert [e.code for e in info.value.errors] == ["E36"]
    assert other.patient.person_id not in str(info.value)


def test_unreadable_population_register_names_no_entry(tmp_path: Any) -> None:
    path = tmp_path / "folkeregister.json"
    path.write_text('{"persons": {"15838512086": [{"kommune": "15x6", "from": "2020-01-01"}]}}')
    with pytest.raises(PopulationRegisterError) as info:
        load_file_register(path)
    assert "15838512086" not in str(info.value)
