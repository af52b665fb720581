"""Person data at rest (issue 8): sealed in the store, found nowhere in the database files;
an altered value fails loudly for its own message only; keys rotate without downtime; a store
that held data in clear is sealed by its migration."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from sqlalchemy import Connection

from gateway.api.app import create_app
from gateway.config import Settings
from gateway.demo.samples import make_notice, make_transfer, synthetic_person_id
from gateway.domain.identifiers import PersonIdKind
from gateway.domain.model import NeedNotice, Organisation, Patient, PersonName
from gateway.domain.status import MessageStatus
from gateway.runtime import Runtime
from gateway.sealing import SealBroken, parse_key_lines, prefix_for
from gateway.store import repository as repo
from gateway.store.database import MIGRATIONS, Database
from gateway.store.rotation import key_status, rotate
from gateway.store.sealed import UNREADABLE_NOTE, keyring_of
from gateway.store.tables import messages
from mappings.fhir.notice import bundle_to_notice, notice_to_bundle
from mappings.fhir.plan import transfer_to_bundle
from mappings.plo.msghead import Party, to_bytes
from mappings.plo.notice import notice_to_msghead
from tests import tokens
from tests.integration.test_consent import consent, post_consent
from tests.integration.test_pipeline import post, wait_status
from tests.integration.test_plan_transfer import transfer_consent
from tests.standards import FNR_SYSTEM as FNR

pytestmark = pytest.mark.integration

FHIR = {"content-type": "application/fhir+json"}
XML = {"content-type": "application/xml"}
GATEWAY = Party(Organisation(name="ip-gateway", her_id=99999999))

K1 = "k1:" + base64.b64encode(bytes(range(32))).decode()
K2 = "k2:" + base64.b64encode(bytes(range(100, 132))).decode()

#: names no sample, code table or directory holds: found in a file, they came from the traffic
NAMES = [
    ("Gyrid Åshild", "Kvernbergsvåg"),
    ("Torbjørg", "Hjelmelandsdalen"),
    ("Signe-Marit", "Østerbøvollen"),
    ("Ragnvald", "Skjerdingstad"),
    ("Håvardine", "Fjellbirkeland"),
]


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """A whole gateway, as tests/conftest.py's ``gateway`` fixture starts one, but one this
    test may stop and start again on the same store."""
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        rt: Runtime = app.state.runtime
        assert rt.dev_issuer is not None
        auth = tokens.TestTokens(rt.dev_issuer, lambda: rt.directory, client_id="tests")
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", auth=auth) as c:
            yield c, rt


def person(seed: int, kommune_nr: str) -> Patient:
    rng = random.Random(seed)
    given, family = NAMES[seed % len(NAMES)]
    return Patient(
        person_id=synthetic_person_id(rng),
        id_kind=PersonIdKind.FNR,
        name=PersonName(given=given, family=family),
        kommune_nr=kommune_nr,
    )


def notice_for(seed: int, who: Patient, *, with_consent: bool = True) -> NeedNotice:
    notice = make_notice(random.Random(seed), who.kommune_nr or "1506", with_consent=with_consent)
    return notice.model_copy(update={"patient": who})


def db_path(settings: Settings) -> Path:
    return Path(settings.resolved_database_url.removeprefix("sqlite:///"))


def files_of(settings: Settings) -> dict[str, bytes]:
    """The database file and its write-ahead log and rollback journal, as they are on disk."""
    main = db_path(settings)
    return {
        p.name: p.read_bytes()
        for p in (main, Path(f"{main}-wal"), Path(f"{main}-journal"))
        if p.exists()
    }


def needles(people: list[Patient], ids: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Each person id and name as it could sit in a file: UTF-8, UTF-16 either way, Latin-1
    (KITH XML may be ISO-8859-1), JSON-escaped; ids also as ``ddmmyy nnnnn``; and the ASCII
    run of each name, which any encoding of the rest leaves whole. Nothing shorter than five
    bytes (it could turn up in ciphertext by chance), no bare digit run shorter than the id
    (a timestamp's microseconds could hold one)."""
    texts = [*ids, *(p.person_id for p in people)]
    texts += [f"{t[:6]} {t[6:]}" for t in texts]
    names = [
        n for p in people for n in (p.name.given, p.name.family, f"{p.name.given} {p.name.family}")
    ]
    out: dict[str, bytes] = {}
    for text in [*texts, *names]:
        forms = {
            "utf-8": text.encode(),
            "utf-16-le": text.encode("utf-16-le"),
            "utf-16-be": text.encode("utf-16-be"),
            "json": json.dumps(text).strip('"').encode(),
        }
        with suppress(UnicodeEncodeError):
            forms["latin-1"] = text.encode("latin-1")
        if text in names:
            runs = "".join(c if c.isascii() else " " for c in text).split()
            forms["ascii run"] = max(runs, key=len).encode()
        for how, form in forms.items():
            if len(form) >= 5:
                out[f"{text!r} as {how}"] = form
    return out


def leaks(files: dict[str, bytes], wanted: dict[str, bytes]) -> list[str]:
    return [
        f"{what} in {name}"
        for name, data in files.items()
        for what, form in wanted.items()
        if form in data
    ]


async def ipgw(env: dict[str, str], *args: str) -> tuple[int, str]:
    """``ipgw ...`` as an operator runs it in another shell: its own process and store."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


async def ack(client: httpx.AsyncClient, kommune: str, message_id: str, **body: Any) -> None:
    r = await client.post(f"/ke/{kommune}/inbox/{message_id}/ack", json=body or {})
    assert r.status_code == 200, r.text


async def traffic(client: httpx.AsyncClient, people: list[Patient]) -> dict[str, str]:
    """Notices (FHIR and XML), a held notice released by a consent, a KE's rejection that
    names the person, a refused person id and a plan transfer; message id -> what it is."""
    sent: dict[str, str] = {}
    # a FHIR notice, delivered and acknowledged (a receipt is stored)
    r = await post(client, orjson.dumps(notice_to_bundle(notice_for(1, people[0]))))
    first = r.json()["id"]
    await wait_status(client, first, {"DELIVERED"})
    await ack(client, "1506", first)
    sent[first] = "acknowledged"
    # an XML notice, rejected by the KE with a detail that names the person
    xml = to_bytes(
        notice_to_msghead(notice_for(2, people[1]), msg_id=str(uuid.uuid4()), receiver=GATEWAY)
    )
    r = await client.post("/plo", content=xml, headers=XML)
    assert r.status_code == 202, r.text
    second = r.headers["x-message-id"]
    await wait_status(client, second, {"DELIVERED"})
    name = f"{people[1].name.given} {people[1].name.family}"
    errors = [{"code": "E35", "detail": f"{name} ({people[1].person_id}) er ukjent hos oss"}]
    await ack(client, "1506", second, status="REJECTED", errors=errors)
    view = await wait_status(client, second, {"REJECTED"})
    # the KE's words reach the sender in the receipt (sealed); the status every operator sees
    # has the code and the code list's words
    assert name not in view["reason"]
    assert view["reason"].startswith("E35")
    receipt = (await client.get(f"/receipts/{second}")).json()
    assert name in receipt["error"][0]["OT"]
    sent[second] = "rejected by the KE"
    # held for consent, released by one posted on its own
    held = notice_for(3, people[2], with_consent=False)
    r = await post(client, orjson.dumps(notice_to_bundle(held)))
    third = r.json()["id"]
    await wait_status(client, third, {"HELD_CONSENT"})
    assert (await post_consent(client, consent(held, "samtykke-at-rest"))).status_code == 201
    await wait_status(client, third, {"DELIVERED"})
    sent[third] = "released by consent"
    # a wrong control digit: refused, the body kept
    bundle = notice_to_bundle(notice_for(4, people[3]))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["identifier"][0]["value"] = people[3].person_id[:-1] + str(
                (int(people[3].person_id[-1]) + 1) % 10
            )
    r = await post(client, orjson.dumps(bundle))
    fourth = r.json()["id"]
    await wait_status(client, fourth, {"REJECTED"})
    sent[fourth] = "refused person id"
    # a plan transfer with its consent
    transfer = make_transfer(random.Random(5), "1505", "1508", person=people[4])
    r = await post(client, orjson.dumps(transfer_to_bundle(transfer)))
    fifth = r.json()["id"]
    await wait_status(client, fifth, {"HELD_CONSENT"})
    r = await client.post(
        "/fhir/Consent", content=orjson.dumps(transfer_consent(transfer, "flytt-1")), headers=FHIR
    )
    assert r.status_code == 201, r.text
    await wait_status(client, fifth, {"DELIVERED"})
    sent[fifth] = "plan transfer"
    return sent


def wrong_digit(person_id: str) -> str:
    return person_id[:-1] + str((int(person_id[-1]) + 1) % 10)


# --------------------------------------------------------------------------- nothing in clear


async def test_no_person_id_or_name_in_the_database_files(settings: Settings) -> None:
    people = [person(i, "1506" if i < 4 else "1505") for i in range(5)]
    wanted = needles(people, (wrong_digit(people[3].person_id),))
    async with running(settings) as (client, rt):
        sent = await traffic(client, people)
        # the needles are right: the store has each person, readable with its keys
        raws = await rt.db.read(repo.get_raws, list(sent))
        for message_id, what in sent.items():
            index = list(sent).index(message_id)
            expected = (
                people[index].person_id
                if what != "refused person id"
                else wrong_digit(people[3].person_id)
            )
            assert expected.encode() in raws[message_id], what
        # while the gateway runs: the file and its write-ahead log
        running_files = files_of(settings)
        assert any(name.endswith("-wal") for name in running_files)
        assert leaks(running_files, wanted) == []
    stopped = files_of(settings)
    assert stopped  # the store is closed: the log was checkpointed into the file
    assert leaks(stopped, wanted) == []
    # every sealed value is under the one key; nothing was stored in clear
    db = Database(settings.resolved_database_url)
    try:
        status = await key_status(db)
    finally:
        await db.close()
    assert status["messages.raw"]["local1"] >= len(sent)
    assert all(set(counts) <= {"local1"} for counts in status.values()), status


# --------------------------------------------------------------------------- altered values


def tamper(path: Path, row_id: object, column: str = "canonical", table: str = "messages") -> None:
    """Flip one ciphertext byte of a stored value, as a disk fault or an attacker might."""
    with sqlite3.connect(path) as conn:
        (value,) = conn.execute(f"SELECT {column} FROM {table} WHERE id = ?", (row_id,)).fetchone()
        altered = bytearray(value)
        altered[-20] ^= 0x01
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (bytes(altered), row_id))


async def test_an_altered_value_fails_loudly_for_its_message_only(
    gateway: tuple[httpx.AsyncClient, Runtime], settings: Settings
) -> None:
    client, _ = gateway
    ids = []
    for seed in (21, 22):
        r = await post(
            client, orjson.dumps(notice_to_bundle(make_notice(random.Random(seed), "1506")))
        )
        ids.append(r.json()["id"])
        await wait_status(client, ids[-1], {"DELIVERED"})
    broken, sound = ids
    tamper(db_path(settings), broken)

    r = await client.get(f"/messages/{broken}")
    assert r.status_code == 500
    problem = r.json()
    assert problem["type"].endswith("/stored-data-unreadable")
    assert "messages.canonical" in problem["detail"]
    assert "'local1'" in problem["detail"]
    r = await client.get(f"/ke/1506/inbox/{broken}")
    assert r.status_code == 500
    # the rest goes on: the inbox lists the sound one, new notices flow, the store is ready
    inbox = (await client.get("/ke/1506/inbox")).json()
    assert [i["id"] for i in inbox["items"]] == [sound]
    assert (await client.get(f"/messages/{sound}")).status_code == 200
    r = await post(client, orjson.dumps(notice_to_bundle(make_notice(random.Random(23), "1508"))))
    await wait_status(client, r.json()["id"], {"DELIVERED"})
    assert (await client.get("/readyz")).status_code == 200


async def test_an_altered_reason_reads_as_such_and_keeps_lists_working(
    gateway: tuple[httpx.AsyncClient, Runtime], settings: Settings
) -> None:
    client, _ = gateway
    r = await post(
        client,
        orjson.dumps(notice_to_bundle(make_notice(random.Random(24), "1506", with_consent=False))),
    )
    message_id = r.json()["id"]
    await wait_status(client, message_id, {"HELD_CONSENT"})
    tamper(db_path(settings), message_id, "reason")
    view = (await client.get(f"/messages/{message_id}")).json()
    assert view["reason"].startswith(UNREADABLE_NOTE)
    assert "messages.reason" in view["reason"]
    assert view["status"] == "HELD_CONSENT"


# --------------------------------------------------------------------------- rotation


async def test_keys_rotate_without_downtime(settings: Settings) -> None:
    people = [person(i, "1506" if i < 4 else "1505") for i in range(5)]
    with_k1 = settings.model_copy(update={"data_keys": SecretStr(K1)})
    async with running(with_k1) as (client, _):
        old = await traffic(client, people)

    # k2 becomes current: what k1 sealed still opens, new writes are under k2
    both = settings.model_copy(update={"data_keys": SecretStr(f"{K2},{K1}")})
    async with running(both) as (client, rt):
        for message_id in old:
            assert (await client.get(f"/messages/{message_id}")).status_code == 200
        delivered = next(m for m, what in old.items() if what == "released by consent")
        bundle = (await client.get(f"/ke/1506/inbox/{delivered}")).json()
        assert bundle_to_notice(bundle, allow_synthetic_ids=True).patient == people[2]
        r = await post(client, orjson.dumps(notice_to_bundle(notice_for(31, person(31, "1506")))))
        new = r.json()["id"]
        await wait_status(client, new, {"DELIVERED"})
        before = await key_status(rt.db)
        assert before["messages.raw"]["k1"] == len(old)
        assert before["messages.raw"]["k2"] == 1
        # a store with k2 alone could not read the old messages yet
        only_k2 = Database(settings.resolved_database_url, parse_key_lines(K2, "test"))
        try:
            with pytest.raises(SealBroken, match="'k1', which is not configured"):
                await only_k2.read(repo.get_message, delivered)
        finally:
            await only_k2.close()

        # rotation beside the running gateway, as `ipgw keys rotate` in another shell
        env = {"IPGW_DATA_DIR": str(settings.data_dir), "IPGW_DATA_KEYS": f"{K2},{K1}"}
        code, out = await ipgw(env, "keys", "rotate", "--batch", "3", "--vacuum")
        assert code == 0, out
        assert f"messages.raw: {len(old)} re-sealed under k2" in out
        # the running gateway goes on reading and writing
        assert (await client.get(f"/messages/{delivered}")).status_code == 200
        await ack(client, "1506", new)
        await wait_status(client, new, {"ACKNOWLEDGED"})

        code, out = await ipgw(env, "keys", "status")
        assert code == 0, out
        assert "key k1: 0 (nothing left: may be removed from the configuration)" in out
        # a second run finds nothing to do
        code, out = await ipgw(env, "keys", "rotate")
        assert code == 0, out
        assert "messages.raw: 0 re-sealed" in out

    # k1 retired: a gateway with k2 alone reads everything
    only = settings.model_copy(update={"data_keys": SecretStr(K2)})
    async with running(only) as (client, rt):
        for message_id in [*old, new]:
            r = await client.get(f"/messages/{message_id}")
            assert r.status_code == 200, r.text
            assert UNREADABLE_NOTE not in r.text
            assert (await client.get(f"/receipts/{message_id}")).status_code in (200, 404)
        bundle = (await client.get(f"/ke/1506/inbox/{delivered}")).json()
        assert bundle_to_notice(bundle, allow_synthetic_ids=True).patient == people[2]
        found = await client.post(
            "/fhir/Consent/_search",
            data={"patient": f"{FNR}|{people[2].person_id}"},
        )
        assert found.status_code == 200, found.text
        assert found.json()["total"] == 1
        after = await key_status(rt.db)
        assert all(set(c) <= {"k2"} for c in after.values()), after
    # nothing k1 sealed is left on disk, not even in free pages or the log
    assert not [n for n, data in files_of(settings).items() if prefix_for("k1") in data]


async def test_rotation_is_restartable(tmp_path: Path) -> None:
    k1, k2 = parse_key_lines(K1, "t"), parse_key_lines(f"{K2},{K1}", "t")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    db = Database(url, k1)
    await db.migrate()
    ids = [await db.write(_message, f"body {i}") for i in range(7)]
    await db.close()

    db = Database(url, k2)

    def stop_after_first(column: str, done: Any) -> None:
        if done.resealed:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await rotate(db, batch=2, progress=stop_after_first)
    half = await key_status(db)
    assert 0 < half["messages.raw"]["k2"] < len(ids)
    done = await rotate(db, batch=2)
    assert done["messages.raw"].resealed == len(ids) - half["messages.raw"]["k2"]
    assert (await key_status(db))["messages.raw"] == {"k2": len(ids)}
    assert [await db.read(repo.get_raw, i) for i in ids] == [f"body {i}".encode() for i in range(7)]
    await db.close()


def _message(conn: Connection, body: str, reason: str | None = None) -> str:
    return repo.insert_message(
        conn,
        kind="need-notice",
        status=MessageStatus.RECEIVED,
        content_type="application/fhir+json",
        raw=body.encode(),
        actor="test",
        detail="received",
        reason=reason,
    )


# --------------------------------------------------------------------------- the store


async def test_one_altered_message_does_not_stop_a_list_of_others(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    await db.migrate()
    ids = [await db.write(_message, "{}") for _ in range(3)]
    await db.write(lambda conn: conn.execute(sa.update(messages).values(canonical='{"x": 1}')))
    for i in ids:
        await db.write(repo.add_outbox, repo.OutboxRecord("t", None, i.encode()))
    outbox_ids = [row_id for row_id, _ in await db.read(repo.pending_outbox, 10)]
    await db.close()
    tamper(tmp_path / "store.db", ids[1])
    tamper(tmp_path / "store.db", outbox_ids[0], "value", "outbox")
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        listed = await db.read(repo.in_flight, 10)
        assert sorted(m.id for m in listed) == sorted([ids[0], ids[2]])
        with pytest.raises(SealBroken):
            await db.read(repo.get_message, ids[1])
        # the relay goes on with the records that open
        pending = await db.read(repo.pending_outbox, 10)
        assert [(row_id, r.value) for row_id, r in pending] == [
            (outbox_ids[1], ids[1].encode()),
            (outbox_ids[2], ids[2].encode()),
        ]
    finally:
        await db.close()


def test_a_sealed_column_cannot_be_compared_in_sql() -> None:
    with pytest.raises(TypeError, match="cannot be compared"):
        _ = messages.c.canonical == "x"
    with pytest.raises(TypeError, match="cannot be compared"):
        _ = messages.c.raw.like(b"%x%")
    assert messages.c.canonical.is_(None) is not None


async def test_a_store_kept_in_clear_is_sealed_by_its_migration(tmp_path: Path) -> None:
    """A data dir from before 0008 (the demo's, say): its migration seals what is there and
    leaves no clear text in the file."""
    path = tmp_path / "store.db"
    keyring = parse_key_lines(K1, "t")
    db = Database(f"sqlite:///{path}", keyring)
    await db.migrate("0007")
    name, pid = "Kvernbergsvåg", "01418012345"
    clear = f'{{"patient": {{"person_id": "{pid}", "family": "{name}"}}}}'
    await db.write(_insert_clear, clear, name)
    await db.checkpoint()
    assert name.encode() in path.read_bytes()  # the control: in clear before
    await db.migrate()
    message = await db.read(repo.get_message, "m1")
    assert message is not None
    assert message.canonical == clear
    assert message.reason == f"E35 {name} er ukjent"
    assert await db.read(repo.get_raw, "m1") == clear.encode()
    assert [e["detail"] for e in await db.read(repo.events_of, "m1")] == [f"E35 {name} er ukjent"]
    receipt_body = await db.read(lambda c: c.execute(sa.text("SELECT body FROM receipts")).scalar())
    assert isinstance(receipt_body, bytes)
    assert (
        keyring.open(receipt_body, context=b"receipts.body") == b'{"who": "' + name.encode() + b'"}'
    )
    status = await key_status(db)
    assert all(set(c) <= {"k1"} for c in status.values()), status
    assert sum(sum(c.values()) for c in status.values()) == 6 + 2 * FILLERS
    await db.close()
    data = path.read_bytes() + (
        Path(f"{path}-wal").read_bytes() if Path(f"{path}-wal").exists() else b""
    )
    assert name.encode() not in data
    assert pid.encode() not in data

    # and back: the downgrade opens them again
    db = Database(f"sqlite:///{path}", keyring)
    await db.write(_downgrade, "0007")
    back = await db.read(
        lambda c: c.execute(sa.text("SELECT canonical, reason FROM messages WHERE id = 'm1'")).one()
    )
    assert tuple(back) == (clear, f"E35 {name} er ukjent")
    await db.close()


FILLERS = 150


def _insert_clear(conn: Connection, clear: str, name: str) -> None:
    """Rows as a store before 0008 held them, written around the sealed column types."""
    now = "2026-11-20 10:00:00.000000"
    conn.execute(
        sa.text(
            "INSERT INTO messages (id, kind, status, generation, content_type, raw, canonical,"
            " reason, received_at, updated_at) VALUES ('m1', 'need-notice', 'REJECTED', 0,"
            " 'application/fhir+json', :raw, :canonical, :reason, :now, :now)"
        ),
        {"raw": clear.encode(), "canonical": clear, "reason": f"E35 {name} er ukjent", "now": now},
    )
    for i in range(FILLERS):  # enough rows, of varied sizes, to leave free space in pages
        body = f"{name} " * (1 + i % 40)
        conn.execute(
            sa.text(
                "INSERT INTO messages (id, kind, status, generation, content_type, raw,"
                " canonical, received_at, updated_at) VALUES (:id, 'need-notice', 'RECEIVED', 0,"
                " 'application/fhir+json', :raw, :canonical, :now, :now)"
            ),
            {"id": f"m-{i:03d}", "raw": body.encode(), "canonical": body, "now": now},
        )
    conn.execute(
        sa.text(
            "INSERT INTO message_events (message_id, at, stage, status, detail, actor)"
            " VALUES ('m1', :now, 'ack', 'REJECTED', :detail, 'ke:1506')"
        ),
        {"now": now, "detail": f"E35 {name} er ukjent"},
    )
    conn.execute(
        sa.text(
            "INSERT INTO receipts (message_id, status, body, created_at)"
            " VALUES ('m1', '2', :body, :now)"
        ),
        {"now": now, "body": f'{{"who": "{name}"}}'},
    )
    conn.execute(
        sa.text(
            "INSERT INTO consents (consent_id, patient_pseudonym, record, source, recorded_at)"
            " VALUES ('c1', 'p1', :record, 'test', :now)"
        ),
        {"now": now, "record": f'{{"who": "{name}"}}'},
    )


def _downgrade(conn: Connection, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    cfg.attributes["keyring"] = keyring_of(conn.dialect)
    command.downgrade(cfg, revision)
