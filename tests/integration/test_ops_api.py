"""The operator API over the real app, broker and store: lists of DEAD and held messages,
retrying many, and discarding with a reason, every action recorded with who did it."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Connection, update

from gateway.config import DEFAULT_DIRECTORY, Settings
from gateway.demo.samples import make_notice
from gateway.domain.model import NeedNotice
from gateway.runtime import Runtime
from gateway.store.tables import messages
from mappings.fhir.notice import notice_to_bundle
from tests.integration.test_consent import consent, held_notice, post_consent
from tests.integration.test_pipeline import post, wait_status
from tests.integration.test_routing import OSLO

pytestmark = pytest.mark.integration

OPERATOR = {"X-Operator": "ola.n@drift"}
ACTOR = "operator:ola.n@drift"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test's own copy of the directory, so a test may fix it (add Oslo's KE)."""
    copy = tmp_path / "directory.toml"
    shutil.copy(DEFAULT_DIRECTORY, copy)
    return settings.model_copy(update={"directory_file": copy})


async def dead_notice(client: httpx.AsyncClient, seed: int) -> tuple[NeedNotice, str]:
    """A notice for Oslo, which the shipped directory has no KE for: DEAD with E21."""
    notice = make_notice(random.Random(seed), "0301")
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    message_id: str = r.json()["id"]
    view = await wait_status(client, message_id, {"DEAD"})
    assert view["reason"].startswith("E21")
    return notice, message_id


async def delivered_notice(client: httpx.AsyncClient, seed: int) -> tuple[NeedNotice, str]:
    notice = make_notice(random.Random(seed), "1506")
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    message_id: str = r.json()["id"]
    await wait_status(client, message_id, {"DELIVERED"})
    return notice, message_id


async def fix_directory(client: httpx.AsyncClient, settings: Settings) -> None:
    settings.directory_file.write_text(
        settings.directory_file.read_text("utf-8") + OSLO, encoding="utf-8"
    )
    reload = (await client.post("/ops/directory/reload")).json()
    assert reload == {"changed": True, "kommuner": reload["kommuner"], "error": None}


async def listed(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    r = await client.get("/ops/messages", params=params)
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


async def all_pages(client: httpx.AsyncClient, **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await listed(client, **params, **({"cursor": cursor} if cursor else {}))
        pages.append(ids(page))
        cursor = page["next"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "pagination does not end"


def events_by(view: dict[str, Any], actor: str) -> list[dict[str, Any]]:
    return [e for e in view["events"] if e["actor"] == actor]


# --------------------------------------------------------------------------- the list


async def test_list_filters_pages_and_shows_no_person_data(client: httpx.AsyncClient) -> None:
    notices: list[NeedNotice] = []
    dead: list[str] = []
    held: list[str] = []
    for seed in (11, 12, 13):
        notice, message_id = await dead_notice(client, seed)
        notices.append(notice)
        dead.append(message_id)
    for seed in (14, 15):
        notice, message_id = await held_notice(client, seed)
        notices.append(notice)
        held.append(message_id)
    notice, delivered = await delivered_notice(client, 16)
    notices.append(notice)
    bad = await post_consent(client, consent(notice, "c-x") | {"status": "draft"})
    assert bad.status_code == 400
    refused_consent = bad.headers["x-message-id"]

    # status, newest change first; repeatable
    page = await listed(client, status="DEAD")
    assert ids(page) == dead[::-1]
    assert page["next"] is None
    assert {i["status"] for i in page["items"]} == {"DEAD"}
    assert all(i["reason"].startswith("E21") for i in page["items"])
    assert ids(await listed(client, status="HELD_CONSENT")) == held[::-1]
    both = await listed(client, status=["DEAD", "HELD_CONSENT"])
    assert ids(both) == (dead + held)[::-1]
    stamps = [i["updated_at"] for i in both["items"]]
    assert stamps == sorted(stamps, reverse=True)
    assert ids(await listed(client, status="RETRYING")) == []
    # everything when no status is given
    assert set(ids(await listed(client))) == {*dead, *held, delivered, refused_consent}

    # kommune and adapter are the recipient's: set once a message is routed
    assert ids(await listed(client, kommune="1506")) == [delivered]
    assert ids(await listed(client, kommune="1506", status="DEAD")) == []
    assert ids(await listed(client, adapter="ke_inbox")) == [delivered]
    assert ids(await listed(client, adapter="fhir_rest")) == []
    first = (await listed(client, kommune="1506"))["items"][0]
    assert (first["recipient_kommune"], first["recipient_adapter"]) == ("1506", "ke_inbox")

    # kind
    assert ids(await listed(client, kind="consent")) == [refused_consent]
    assert set(ids(await listed(client, kind="need-notice"))) == {*dead, *held, delivered}

    # since (inclusive) and until (exclusive) on updated_at
    middle = page["items"][1]["updated_at"]  # the second newest DEAD message
    assert ids(await listed(client, status="DEAD", since=middle)) == [dead[2], dead[1]]
    assert ids(await listed(client, status="DEAD", until=middle)) == [dead[0]]
    later = dt.datetime.fromisoformat(middle).astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert ids(await listed(client, status="DEAD", since=later.isoformat())) == [
        dead[2],
        dead[1],
    ]  # the same instant written with another offset

    # keyset pagination: every row once, in the order of the whole list
    assert await all_pages(client, status="DEAD", limit=1) == [[m] for m in dead[::-1]]
    pages = await all_pages(client, status=["DEAD", "HELD_CONSENT"], limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [m for p in pages for m in p] == ids(both)
    pages = await all_pages(client, limit=4)
    assert [len(p) for p in pages] == [4, 3]
    assert len({m for p in pages for m in p}) == 7

    # metadata only: no person id, name, pseudonym or content
    text = (await client.get("/ops/messages", params={"limit": 500})).text
    for n in notices:
        assert n.patient.person_id not in text
        assert n.patient.name.family not in text
    assert set(both["items"][0]) == {
        "id",
        "kind",
        "status",
        "recipient_kommune",
        "recipient_adapter",
        "reason",
        "received_at",
        "updated_at",
    }


async def test_pages_split_rows_changed_at_the_same_instant(
    gateway: tuple[httpx.AsyncClient, Runtime],
) -> None:
    """The cursor holds the id too: rows with one updated_at are neither lost nor repeated
    where a page ends among them."""
    client, rt = gateway
    dead = [(await dead_notice(client, seed))[1] for seed in (81, 82, 83, 84)]
    same = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)

    def stamp(conn: Connection) -> None:
        conn.execute(update(messages).where(messages.c.id.in_(dead[1:])).values(updated_at=same))

    await rt.db.write(stamp)
    expected = [dead[0], *sorted(dead[1:], reverse=True)]  # newest first, then id descending
    assert ids(await listed(client, status="DEAD")) == expected
    for limit in (1, 2):
        pages = await all_pages(client, status="DEAD", limit=limit)
        assert [m for p in pages for m in p] == expected
    pages = await all_pages(client, status=["DEAD", "HELD_CONSENT"], limit=1)
    assert [m for p in pages for m in p] == expected


@pytest.mark.parametrize(
    ("params", "status", "slug"),
    [
        pytest.param({"status": "LOST"}, 422, "invalid-request", id="unknown-status"),
        pytest.param({"limit": 501}, 422, "invalid-request", id="limit-too-high"),
        pytest.param({"limit": 0}, 422, "invalid-request", id="limit-zero"),
        pytest.param({"kommune": "301"}, 422, "invalid-request", id="kommune-not-4-digits"),
        pytest.param({"kind": "letter"}, 422, "invalid-request", id="unknown-kind"),
        pytest.param({"since": "2026-01-01T10:00:00"}, 422, "invalid-request", id="no-offset"),
        pytest.param({"cursor": "bm9wZQ"}, 400, "bad-cursor", id="cursor-not-ours"),
        pytest.param({"cursor": "%%%"}, 400, "bad-cursor", id="cursor-not-base64"),
    ],
)
async def test_list_refuses_bad_parameters(
    client: httpx.AsyncClient, params: dict[str, Any], status: int, slug: str
) -> None:
    r = await client.get("/ops/messages", params=params)
    assert r.status_code == status, r.text
    assert r.json()["type"].endswith("/" + slug)


# --------------------------------------------------------------------------- retry


async def test_single_retry_needs_an_operator_and_records_them(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    _, message_id = await dead_notice(client, 21)
    # who acts is the token's: none, a malformed one, or a viewer's may not retry
    for headers, status, code in (
        ({"Authorization": ""}, 401, "token-missing"),
        ({"Authorization": "Bearer not.a.token"}, 401, "token-malformed"),
        ({"Authorization": "Basic b3BzOm9wcw=="}, 401, "token-missing"),
        ({"X-Operator-Role": "viewer"}, 403, "scope-missing"),
    ):
        r = await client.post(f"/messages/{message_id}/retry", headers=headers)
        assert r.status_code == status, headers
        assert r.json()["type"].endswith(f"/{code}")
    assert (await client.get(f"/messages/{message_id}")).json()["status"] == "DEAD"
    await fix_directory(client, settings)
    r = await client.post(f"/messages/{message_id}/retry", headers=OPERATOR)
    assert r.json() == {"id": message_id, "status": "ROUTED"}
    view = await wait_status(client, message_id, {"DELIVERED"})
    mine = events_by(view, ACTOR)
    assert mine[0]["stage"] == "operator"
    assert mine[0]["detail"] == "retry requested"
    assert "ROUTED" in [e["status"] for e in mine]


async def test_bulk_retry_by_ids(client: httpx.AsyncClient, settings: Settings) -> None:
    dead = [(await dead_notice(client, seed))[1] for seed in (31, 32)]
    _, held = await held_notice(client, 33)
    _, delivered = await delivered_notice(client, 34)

    viewer = {"X-Operator-Role": "viewer"}
    assert (
        await client.post("/ops/messages/retry", json={"ids": dead}, headers=viewer)
    ).status_code == 403  # looking is not acting

    # before the directory is fixed a retry leaves them DEAD, but it is on their timelines
    r = await client.post("/ops/messages/retry", json={"ids": dead}, headers=OPERATOR)
    assert r.json() == {"results": [{"id": m, "status": "DEAD", "error": None} for m in dead]}
    view = (await client.get(f"/messages/{dead[0]}")).json()
    assert [e["detail"] for e in events_by(view, ACTOR)][:1] == ["retry requested (bulk)"]

    await fix_directory(client, settings)
    asked = [dead[0], held, "no-such-message", dead[1], delivered, dead[0]]
    r = await client.post("/ops/messages/retry", json={"ids": asked}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    assert r.json()["results"] == [
        {"id": dead[0], "status": "ROUTED", "error": None},
        {"id": held, "status": "HELD_CONSENT", "error": "not-dead"},
        {"id": "no-such-message", "status": None, "error": "unknown-message"},
        {"id": dead[1], "status": "ROUTED", "error": None},
        {"id": delivered, "status": "DELIVERED", "error": "not-dead"},
    ]  # each id once
    for m in dead:
        view = await wait_status(client, m, {"DELIVERED"})
        assert [e["detail"] for e in events_by(view, ACTOR) if e["stage"] == "operator"] == [
            "retry requested (bulk)",
            "retry requested (bulk)",
        ]
    # the messages that were not DEAD are as they were, with nothing on their timelines
    for m, status in ((held, "HELD_CONSENT"), (delivered, "DELIVERED")):
        view = (await client.get(f"/messages/{m}")).json()
        assert view["status"] == status
        assert events_by(view, ACTOR) == []


async def test_bulk_retry_by_filter(client: httpx.AsyncClient, settings: Settings) -> None:
    dead = [(await dead_notice(client, seed))[1] for seed in (41, 42, 43)]
    _, held = await held_notice(client, 44)
    await fix_directory(client, settings)

    # max bounds the reach: the newest first
    r = await client.post(
        "/ops/messages/retry", json={"filter": {"status": ["DEAD"]}, "max": 1}, headers=OPERATOR
    )
    assert r.json()["results"] == [{"id": dead[2], "status": "ROUTED", "error": None}]
    # a filter without status takes DEAD messages only
    r = await client.post("/ops/messages/retry", json={"filter": {}, "max": 10}, headers=OPERATOR)
    assert r.json()["results"] == [
        {"id": dead[1], "status": "ROUTED", "error": None},
        {"id": dead[0], "status": "ROUTED", "error": None},
    ]
    for m in dead:
        await wait_status(client, m, {"DELIVERED"})
    # held messages named by the filter are answered, and left as they are
    r = await client.post(
        "/ops/messages/retry",
        json={"filter": {"status": ["HELD_CONSENT"], "kind": "need-notice"}, "max": 10},
        headers=OPERATOR,
    )
    assert r.json()["results"] == [{"id": held, "status": "HELD_CONSENT", "error": "not-dead"}]
    # the other filters narrow as in the list
    r = await client.post(
        "/ops/messages/retry",
        json={"filter": {"status": ["DELIVERED"], "kommune": "1506"}, "max": 10},
        headers=OPERATOR,
    )
    assert r.json()["results"] == []
    assert ids(await listed(client, status="DEAD")) == []


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        pytest.param({}, "ids-or-filter", id="neither"),
        pytest.param({"ids": ["a"], "filter": {}, "max": 1}, "ids-or-filter", id="both"),
        pytest.param({"filter": {"status": ["DEAD"]}}, "max-required", id="filter-without-max"),
        pytest.param({"filter": {}, "max": 501}, "invalid-request", id="max-too-high"),
        pytest.param({"ids": [str(i) for i in range(501)]}, "invalid-request", id="too-many"),
        pytest.param({"ids": []}, "invalid-request", id="no-ids"),
        pytest.param({"filter": {"since": "2026-01-01T10:00"}, "max": 5}, "invalid-request"),
    ],
)
async def test_bulk_retry_refuses_bad_bodies(
    client: httpx.AsyncClient, body: dict[str, Any], slug: str
) -> None:
    r = await client.post("/ops/messages/retry", json=body, headers=OPERATOR)
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith("/" + slug)


# --------------------------------------------------------------------------- discard


async def test_discard_a_held_message(client: httpx.AsyncClient) -> None:
    _, message_id = await held_notice(client, 51)
    url = f"/messages/{message_id}/discard"
    reason = "sent twice by the ward, confirmed on the phone"

    r = await client.post(url, json={"reason": reason}, headers={"X-Operator-Role": "viewer"})
    assert r.status_code == 403
    assert r.json()["type"].endswith("/scope-missing")
    for body in (None, {}, {"reason": None}, {"reason": "  no  "}, {"reason": "x" * 501}):
        r = await client.post(url, json=body, headers=OPERATOR)
        assert r.status_code == 422, body
        assert r.json()["type"].endswith("/reason-required")
    assert (await client.get(f"/messages/{message_id}")).json()["status"] == "HELD_CONSENT"

    r = await client.post(url, json={"reason": f"  {reason}\n"}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": message_id, "status": "REJECTED"}

    view = (await client.get(f"/messages/{message_id}")).json()
    assert view["status"] == "REJECTED"
    assert view["reason"] == "X99 discarded by the gateway's operator"
    mine = events_by(view, ACTOR)
    assert [(e["stage"], e["status"], e["detail"]) for e in mine] == [
        ("operator", None, f"discarded: {reason}"),
        ("operator", "REJECTED", "X99 discarded by the gateway's operator"),
    ]
    # the sender is told, without the operator's words
    receipt = await client.get(f"/receipts/{message_id}")
    assert receipt.status_code == 200
    assert receipt.json()["status"]["V"] == "2"
    assert [(e["V"], e["OT"]) for e in receipt.json()["error"]] == [
        ("X99", "discarded by the gateway's operator")
    ]
    assert reason not in receipt.text
    xml = await client.get(f"/receipts/{message_id}", headers={"accept": "application/xml"})
    assert "discarded by the gateway" in xml.text
    assert reason not in xml.text

    # once given up, it stays given up
    again = await client.post(url, json={"reason": reason}, headers=OPERATOR)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/not-discardable")
    assert (
        await client.post("/messages/nope/discard", json={"reason": reason}, headers=OPERATOR)
    ).status_code == 404


async def test_discard_dead_and_held_for_routing(client: httpx.AsyncClient) -> None:
    _, dead = await dead_notice(client, 61)
    notice = make_notice(random.Random(62), "1507")  # a split kommune: waits for an operator
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    routing = r.json()["id"]
    await wait_status(client, routing, {"HELD_ROUTING"})

    for message_id in (dead, routing):
        r = await client.post(
            f"/messages/{message_id}/discard",
            json={"reason": "the KE will not take it"},
            headers=OPERATOR,
        )
        assert r.json() == {"id": message_id, "status": "REJECTED"}
        view = (await client.get(f"/messages/{message_id}")).json()
        assert ("discarded: the KE will not take it", ACTOR) in [
            (e["detail"], e["actor"]) for e in view["events"]
        ]
        receipt = (await client.get(f"/receipts/{message_id}")).json()
        assert receipt["status"]["V"] == "2"
        # a DEAD message's sender already had a rejecting receipt, which stands
        code = "E21" if message_id == dead else "X99"
        assert [e["V"] for e in receipt["error"]] == [code]
    assert ids(await listed(client, status=["DEAD", "HELD_ROUTING"])) == []
    assert set(ids(await listed(client, status="REJECTED"))) == {dead, routing}


async def test_delivered_and_acknowledged_messages_are_not_discarded(
    client: httpx.AsyncClient,
) -> None:
    _, message_id = await delivered_notice(client, 71)
    url = f"/messages/{message_id}/discard"
    body = {"reason": "operator changed their mind"}
    r = await client.post(url, json=body, headers=OPERATOR)
    assert r.status_code == 409
    assert r.json()["type"].endswith("/not-discardable")
    assert "DELIVERED" in r.json()["detail"]
    await client.post(f"/ke/1506/inbox/{message_id}/ack")
    await wait_status(client, message_id, {"ACKNOWLEDGED"})
    r = await client.post(url, json=body, headers=OPERATOR)
    assert r.status_code == 409
    view = (await client.get(f"/messages/{message_id}")).json()
    assert view["status"] == "ACKNOWLEDGED"
    assert events_by(view, ACTOR) == []
    assert (await client.get(f"/receipts/{message_id}")).json()["status"]["V"] == "1"
