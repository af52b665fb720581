"""Consent enforcement over the real broker and store: hold, release, expiry, withdrawal,
refusal, and the standalone Consent endpoints."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import httpx
import orjson
import pytest

from gateway.demo.samples import make_notice
from gateway.domain.model import NeedNotice, NoticeKind
from gateway.pipeline import consents
from gateway.runtime import Runtime
from mappings.fhir import systems as sy
from mappings.fhir.notice import notice_to_bundle
from tests.integration.test_pipeline import post, wait_status
from tests.standards import FNR_SYSTEM as FNR

pytestmark = pytest.mark.integration

FHIR = {"content-type": "application/fhir+json"}
PURPOSES = "https://ipgw.example/fhir/CodeSystem/consent-purpose"


def consent(
    notice: NeedNotice, consent_id: str, *, status: str = "active", **extra: Any
) -> dict[str, Any]:
    """A standalone Consent as a kommune or hospital system would post it."""
    body: dict[str, Any] = {
        "resourceType": "Consent",
        "id": consent_id,
        "status": status,
        "scope": {"coding": [{"system": sy.CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"identifier": {"system": FNR, "value": notice.patient.person_id}},
        "dateTime": "2026-11-20",
        "policyRule": {"coding": [{"system": sy.ACT_CODE_SYSTEM, "code": "OPTIN"}]},
        "provision": {"purpose": [{"system": PURPOSES, "code": "need-notice"}]},
    }
    return body | extra


async def post_consent(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/fhir/Consent", content=orjson.dumps(body), headers=FHIR)


async def held_notice(
    client: httpx.AsyncClient, seed: int, kommune: str = "1506"
) -> tuple[NeedNotice, str]:
    notice = make_notice(random.Random(seed), kommune, with_consent=False)
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    message_id = r.json()["id"]
    view = await wait_status(client, message_id, {"HELD_CONSENT"})
    assert "no consent" in view["reason"]
    return notice, message_id


async def test_held_notice_is_released_when_consent_arrives(client: httpx.AsyncClient) -> None:
    notice, message_id = await held_notice(client, 1)
    assert (await client.get("/ke/1506/inbox")).json()["items"] == []
    r = await post_consent(client, consent(notice, "samtykke-1"))
    assert r.status_code == 201, r.text
    assert r.headers["x-messages-moved"] == "1"
    assert r.json()["patient"]["identifier"]["value"] == notice.patient.person_id
    view = await wait_status(client, message_id, {"DELIVERED"})
    assert any("allow" in (e["detail"] or "") for e in view["events"])
    # the consent is on record, found by the person (form search keeps the id out of URLs)
    found = await client.post(
        "/fhir/Consent/_search", data={"patient": f"{FNR}|{notice.patient.person_id}"}
    )
    assert found.json()["total"] == 1
    assert found.json()["entry"][0]["resource"]["id"] == "samtykke-1"


async def test_consent_for_another_person_releases_nothing(client: httpx.AsyncClient) -> None:
    _, message_id = await held_notice(client, 2)
    other = make_notice(random.Random(99), "1506")
    r = await post_consent(client, consent(other, "samtykke-x"))
    assert r.headers["x-messages-moved"] == "0"
    view = (await client.get(f"/messages/{message_id}")).json()
    assert view["status"] == "HELD_CONSENT"


async def test_held_too_long_is_rejected_with_a_receipt(
    gateway: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, rt = gateway
    _, message_id = await held_notice(client, 3)
    assert await consents.expire_holds(rt) == []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=14, minutes=1)
    rt.clock = lambda: later
    assert await consents.expire_holds(rt) == [message_id]
    view = await wait_status(client, message_id, {"REJECTED"})
    assert "14 days" in view["reason"]
    receipt = (await client.get(f"/receipts/{message_id}")).json()
    assert receipt["status"]["V"] == "2"
    assert "consent" in receipt["error"][0]["OT"]


async def test_withdrawal_stops_a_message_not_yet_delivered(client: httpx.AsyncClient) -> None:
    notice, message_id = await held_notice(client, 4, kommune="1507")  # a split: waits for routing
    await post_consent(client, consent(notice, "samtykke-4"))
    await wait_status(client, message_id, {"HELD_ROUTING"})
    r = await post_consent(client, consent(notice, "samtykke-4", status="inactive"))
    assert r.json()["status"] == "inactive"
    view = await wait_status(client, message_id, {"REJECTED"})
    assert "withdrawn" in view["reason"]
    assert (await client.get(f"/receipts/{message_id}")).json()["error"][0]["V"] == "X99"


async def test_a_refusal_stops_the_notice(client: httpx.AsyncClient) -> None:
    notice = make_notice(random.Random(5), "1506", with_consent=False)
    await post_consent(client, consent(notice, "nei-5", status="rejected"))
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    view = await wait_status(client, r.json()["id"], {"REJECTED"})
    assert "refused" in view["reason"]
    assert (await client.get("/ke/1506/inbox")).json()["items"] == []


async def test_next_of_kin_consent_needs_the_reason(client: httpx.AsyncClient) -> None:
    notice, message_id = await held_notice(client, 6)
    contained = [
        {
            "resourceType": "RelatedPerson",
            "id": "nok",
            "patient": {"identifier": {"system": FNR, "value": notice.patient.person_id}},
            "relationship": [{"coding": [{"system": sy.ROLE_CODE_SYSTEM, "code": "NOK"}]}],
        }
    ]
    body = consent(notice, "nok-6", contained=contained, performer=[{"reference": "#nok"}])
    await post_consent(client, body)
    view = (await client.get(f"/messages/{message_id}")).json()
    assert view["status"] == "HELD_CONSENT"
    assert any("lacks capacity" in (e["detail"] or "") for e in view["events"])
    body["extension"] = [{"url": sy.LACKS_CAPACITY_EXTENSION, "valueString": "demens"}]
    r = await post_consent(client, body)
    assert r.headers["x-messages-moved"] == "1"
    await wait_status(client, message_id, {"DELIVERED"})


@pytest.mark.parametrize(
    ("change", "code"),
    [
        pytest.param({"patient": {"identifier": {"system": FNR, "value": "12345678901"}}}, "E31"),
        pytest.param({"patient": {"reference": "Patient/1"}}, "E30"),
        pytest.param({"provision": {}}, "T02"),
        pytest.param({"status": "draft"}, "T02"),
        pytest.param({"dateTime": 20261120}, "T02"),
    ],
)
async def test_bad_consents_are_refused_and_kept(
    client: httpx.AsyncClient, change: dict[str, Any], code: str
) -> None:
    body = consent(make_notice(random.Random(7), "1506"), "c-7") | change
    r = await post_consent(client, body)
    assert r.status_code == 400
    assert r.json()["issue"][0]["diagnostics"].startswith(code)
    view = (await client.get(f"/messages/{r.headers['x-message-id']}")).json()
    assert (view["status"], view["kind"]) == ("REJECTED", "consent")


async def test_search_errors_never_repeat_the_id(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Consent", params={"patient": f"{FNR}|12345678901"})
    assert r.status_code == 400
    assert "12345678901" not in r.text


async def test_a_family_has_one_coordinator(client: httpx.AsyncClient) -> None:
    """A second notice asking the same kommune for a (barne)koordinator for the same child is
    delivered with the flag set; one to another kommune, or for another child, is not."""
    first = make_notice(random.Random(8), "1506")
    first = first.model_copy(update={"requested": (NoticeKind.BARNEKOORDINATOR,)})
    r = await post(client, orjson.dumps(notice_to_bundle(first)))
    first_id = r.json()["id"]
    await wait_status(client, first_id, {"DELIVERED"})
    assert (await client.post(f"/ke/1506/inbox/{first_id}/ack")).status_code == 200

    again = first.model_copy(update={"sender_message_id": "again-1"})
    r = await post(client, orjson.dumps(notice_to_bundle(again)))
    view = await wait_status(client, r.json()["id"], {"DELIVERED"})
    assert any("already has a coordinator" in (e["detail"] or "") for e in view["events"])
    fetched = (await client.get(f"/ke/1506/inbox/{r.json()['id']}")).json()
    extensions = [
        e
        for entry in fetched["entry"]
        if entry["resource"]["resourceType"] == "CarePlan"
        for e in entry["resource"]["extension"]
    ]
    assert {"url": sy.EXISTING_COORDINATOR_EXTENSION, "valueBoolean": True} in extensions

    elsewhere = again.model_copy(
        update={
            "sender_message_id": "again-2",
            "patient": again.patient.model_copy(update={"kommune_nr": "1508"}),
        }
    )
    r = await post(client, orjson.dumps(notice_to_bundle(elsewhere)))
    view = await wait_status(client, r.json()["id"], {"DELIVERED"})
    assert not any("already has a coordinator" in (e["detail"] or "") for e in view["events"])
