"""Consent from the XML side (issue 4: "from the XML side (MsgHead ...)"): a kommune or hospital
system that speaks KITH XML files a consent, a refusal or a withdrawal as MsgHead IP_SAMTYKKE,
over the real broker and store, and it acts as a FHIR Consent does: a held notice is released,
a withdrawal tells the unit that has the plan, a bad statement is refused and kept."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid

import httpx
import orjson
import pytest

from gateway.demo.samples import ke_of, make_notice, make_transfer
from gateway.domain.consent import ConsentPurpose, ConsentRecord
from gateway.domain.model import ConsentGiver, Patient
from mappings.fhir.notice import notice_to_bundle
from mappings.plo.consent import consent_to_msghead
from mappings.plo.msghead import Party, to_bytes
from tests.integration.test_pipeline import post, wait_status
from tests.integration.test_plan_transfer import send
from tests.integration.test_plo_ingest import GATEWAY, XML, apprec

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def statement(
    patient: Patient,
    purposes: tuple[ConsentPurpose, ...],
    consent_id: str,
    *,
    withdrawn: bool = False,
    refused: bool = False,
) -> bytes:
    record = ConsentRecord(
        id=consent_id,
        purposes=purposes,
        given_by=ConsentGiver.PERSON,
        given_on=dt.date(2026, 11, 1),
        refused=refused,
        withdrawn_at=NOW if withdrawn else None,
        recorded_at=NOW,
    )
    root = consent_to_msghead(
        record,
        patient,
        msg_id=str(uuid.uuid4()),
        sender=Party(ke_of("1506")),
        receiver=GATEWAY,
        generated_at=NOW,
    )
    return to_bytes(root)


async def test_a_held_notice_is_released_by_a_consent_sent_as_xml(
    client: httpx.AsyncClient,
) -> None:
    notice = make_notice(random.Random(111), "1506", with_consent=False)
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    message_id = r.json()["id"]
    await wait_status(client, message_id, {"HELD_CONSENT"})

    body = statement(notice.patient, (ConsentPurpose.NEED_NOTICE,), "xml-111")
    r = await client.post("/plo", content=body, headers=XML)
    assert r.status_code == 201, r.text
    assert apprec(r) == ("1", [])
    assert r.headers["x-messages-moved"] == "1"
    await wait_status(client, message_id, {"DELIVERED"})

    # filed like any consent: the registry lists it for the person
    found = await client.post(
        "/fhir/Consent/_search",
        data={"patient": f"urn:oid:2.16.578.1.12.4.1.4.1|{notice.patient.person_id}"},
    )
    assert [e["resource"]["id"] for e in found.json()["entry"]] == ["xml-111"]


async def test_a_refusal_sent_as_xml_stops_the_held_notice(client: httpx.AsyncClient) -> None:
    notice = make_notice(random.Random(112), "1506", with_consent=False)
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    message_id = r.json()["id"]
    await wait_status(client, message_id, {"HELD_CONSENT"})
    body = statement(notice.patient, (ConsentPurpose.NEED_NOTICE,), "xml-112", refused=True)
    r = await client.post("/plo", content=body, headers=XML)
    assert r.status_code == 201, r.text
    view = await wait_status(client, message_id, {"REJECTED"})
    assert "refused" in view["reason"]


async def test_a_withdrawal_sent_as_xml_tells_the_kommune_that_has_the_plan(
    client: httpx.AsyncClient,
) -> None:
    t = make_transfer(random.Random(113), "1505", "1506")
    transfer_consent = statement(t.plan.patient, (ConsentPurpose.TRANSFER,), "xml-113")
    r = await client.post("/plo", content=transfer_consent, headers=XML)
    assert r.status_code == 201, r.text
    message_id = await send(client, t)
    await wait_status(client, message_id, {"DELIVERED"})

    withdrawal = statement(t.plan.patient, (ConsentPurpose.TRANSFER,), "xml-113", withdrawn=True)
    r = await client.post("/plo", content=withdrawal, headers=XML)
    assert r.status_code == 201, r.text
    for _ in range(200):
        parties = (await client.get(f"/messages/{message_id}")).json()["parties"]
        if parties:
            break
        await asyncio.sleep(0.05)
    assert [(p["kind"], p["recipient_her_id"]) for p in parties] == [("plan-status", 99_001_506)]


async def test_a_statement_without_purpose_is_refused_and_kept(
    client: httpx.AsyncClient,
) -> None:
    notice = make_notice(random.Random(114), "1506")
    body = statement(notice.patient, (ConsentPurpose.PLAN,), "xml-114")
    broken = body.replace(b"<Formaal>plan</Formaal>", b"")
    assert broken != body
    r = await client.post("/plo", content=broken, headers=XML)
    assert r.status_code == 400, r.text
    status, errors = apprec(r)
    assert status == "2"  # 8258: avvist
    assert errors
    assert errors[0][0].startswith("T")
    kept = (await client.get(f"/messages/{r.headers['x-message-id']}")).json()
    assert kept["status"] == "REJECTED"
