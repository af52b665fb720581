"""What the operator console reads and does (issue 7), over the real broker and store: the
overview, search by sender reference, the person masked, the audited looks at person data
(search by person, content for the privileged role only), releasing a held message, and the
console's page itself."""

from __future__ import annotations

import random

import httpx
import orjson
import pytest

from gateway.demo.samples import make_notice
from gateway.domain.identifiers import birth_date, parse_person_id
from gateway.domain.model import NeedNotice
from mappings.fhir.notice import notice_to_bundle
from tests.integration.test_consent import consent, post_consent
from tests.integration.test_pipeline import post, wait_status

pytestmark = pytest.mark.integration

OPERATOR = {"X-Operator": "ops1", "X-Operator-Role": "operator"}
PRIVILEGED = {"X-Operator": "lead1", "X-Operator-Role": "privileged"}


async def sent(
    client: httpx.AsyncClient, seed: int, *, with_consent: bool = True
) -> tuple[NeedNotice, str]:
    notice = make_notice(random.Random(seed), "1506", with_consent=with_consent)
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    assert r.status_code == 202, r.text
    return notice, str(r.json()["id"])


async def test_the_overview_counts_what_the_store_holds(client: httpx.AsyncClient) -> None:
    _, message_id = await sent(client, 131)
    await wait_status(client, message_id, {"DELIVERED"})
    o = (await client.get("/ops/overview")).json()
    assert o["statuses"] == {"DELIVERED": 1}
    assert o["last_hour"]["DELIVERED"] == 1
    assert o["last_day"]["RECEIVED"] == 1
    [inbox] = o["recipients"]
    assert (inbox["recipient"], inbox["open_inbox"]) == ("1506", 1)
    assert inbox["oldest_unacknowledged_seconds"] >= 0
    assert [(a["adapter"], a["tries_last_hour"], a["failed_last_hour"]) for a in o["adapters"]] == [
        ("ke_inbox", 1, 0)
    ]
    assert (o["store"], o["broker"]) == ("ok", "ok")
    stages = {g["stage"]: g for g in o["stages"]}
    assert stages["deliver"]["last_hour"] == {"DELIVERED": 1}
    assert stages["ingest"]["last_hour"] == {"RECEIVED": 1}
    assert sum(sum(g["last_hour"].values()) for g in o["stages"]) == sum(o["last_hour"].values())
    # the pipeline's and delivery's queues are the consumers' lags; consent has no queue
    assert isinstance(stages["validate"]["queued"], int)
    assert isinstance(stages["deliver"]["queued"], int)
    assert stages["consent"]["queued"] is None


async def test_search_by_the_senders_own_id(client: httpx.AsyncClient) -> None:
    notice, message_id = await sent(client, 132)
    await sent(client, 133)
    found = (
        await client.get("/ops/messages", params={"sender_ref": notice.sender_message_id})
    ).json()
    assert [m["id"] for m in found["items"]] == [message_id]


async def test_the_person_is_masked_to_the_birth_date(client: httpx.AsyncClient) -> None:
    notice, message_id = await sent(client, 134)
    await wait_status(client, message_id, {"DELIVERED"})
    r = await client.get(f"/messages/{message_id}/person")
    expected = birth_date(parse_person_id(notice.patient.person_id, allow_synthetic=True))
    assert r.json() == {"born": expected.isoformat()}
    assert notice.patient.person_id not in r.text


async def test_a_search_by_person_is_audited_without_the_person_id(
    client: httpx.AsyncClient,
) -> None:
    notice, message_id = await sent(client, 135)
    body = {"person_id": notice.patient.person_id, "reason": "ticket 4711"}
    r = await client.post("/ops/messages/by-person", json=body, headers=OPERATOR)
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json()["items"]] == [message_id]
    audit = (await client.get("/ops/audit")).json()
    # (the notice's own consent is on the log too, filed by the hospital's client)
    assert [
        (a["actor"], a["action"], a["reason"]) for a in audit if a["actor"].startswith("operator:")
    ] == [("operator:ops1", "search-person", "ticket 4711")]
    assert notice.patient.person_id not in orjson.dumps(audit).decode()
    # a look at a person's messages is an operator's act: a viewer's token may not
    viewer = {"X-Operator-Role": "viewer"}
    r = await client.post("/ops/messages/by-person", json=body, headers=viewer)
    assert r.status_code == 403
    assert r.json()["type"].endswith("/scope-missing")


async def test_content_only_for_the_privileged_role_and_every_look_audited(
    client: httpx.AsyncClient,
) -> None:
    notice, message_id = await sent(client, 136)
    await wait_status(client, message_id, {"DELIVERED"})
    why = {"reason": "the KE asks what was sent"}
    denied = await client.post(f"/messages/{message_id}/content", json=why, headers=OPERATOR)
    assert denied.status_code == 403
    assert notice.need not in denied.text
    shown = await client.post(f"/messages/{message_id}/content", json=why, headers=PRIVILEGED)
    assert shown.status_code == 200, shown.text
    assert shown.json()["content"]["need"] == notice.need
    actions = [
        (a["actor"], a["action"], a["target"])
        for a in (await client.get("/ops/audit")).json()
        if a["actor"].startswith("operator:")
    ]
    assert actions == [
        ("operator:lead1", "view-content", message_id),
        ("operator:ops1", "content-denied", message_id),
    ]


async def test_release_decides_a_held_message_anew(client: httpx.AsyncClient) -> None:
    notice, message_id = await sent(client, 137, with_consent=False)
    await wait_status(client, message_id, {"HELD_CONSENT"})
    still = await client.post(f"/messages/{message_id}/release", headers=OPERATOR)
    assert still.json()["status"] == "HELD_CONSENT"
    viewer = {"X-Operator": "v1", "X-Operator-Role": "viewer"}
    assert (await client.post(f"/messages/{message_id}/release", headers=viewer)).status_code == 403
    r = await post_consent(client, consent(notice, "console-137"))
    assert r.status_code == 201, r.text
    await wait_status(client, message_id, {"DELIVERED"})
    gone = await client.post(f"/messages/{message_id}/release", headers=OPERATOR)
    assert gone.status_code == 409


async def test_the_console_page_is_served(client: httpx.AsyncClient) -> None:
    page = await client.get("/console/")
    assert page.status_code == 200
    assert "console.js" in page.text
    script = await client.get("/console/console.js")
    assert script.status_code == 200
    assert ".innerHTML" not in script.text  # values go in as text, never as markup


async def test_the_operator_routes_a_split_kommunes_notice_to_one_of_its_candidates(
    client: httpx.AsyncClient,
) -> None:
    notice = make_notice(random.Random(138), "1507")  # Ålesund 2020-2023, split in 2024
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    message_id = r.json()["id"]
    await wait_status(client, message_id, {"HELD_ROUTING"})
    path = f"/messages/{message_id}/route"
    wrong = await client.post(path, json={"kommune": "1506"}, headers=OPERATOR)
    assert wrong.status_code == 409
    assert wrong.json()["detail"] == "1508, 1580"
    viewer = {"X-Operator": "v1", "X-Operator-Role": "viewer"}
    assert (await client.post(path, json={"kommune": "1508"}, headers=viewer)).status_code == 403
    ok = await client.post(path, json={"kommune": "1508"}, headers=OPERATOR)
    assert ok.status_code == 200, ok.text
    view = await wait_status(client, message_id, {"DELIVERED"})
    assert view["recipient_kommune"] == "1508"
    assert any(e["actor"] == "operator:ops1" and "1508" in e["detail"] for e in view["events"])
    assert [i["id"] for i in (await client.get("/ke/1508/inbox")).json()["items"]] == [message_id]
    again = await client.post(path, json={"kommune": "1508"}, headers=OPERATOR)
    assert again.status_code == 409
