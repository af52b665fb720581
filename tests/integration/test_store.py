"""The store against a real SQLite file: migrations, status guard, dedupe, group commit."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.exc import IntegrityError

from gateway.domain.consent import ConsentPurpose, ConsentRecord
from gateway.domain.model import ConsentGiver
from gateway.domain.status import IllegalTransition, MessageStatus, Stage
from gateway.store import repository as repo
from gateway.store.database import Database
from gateway.store.tables import metadata

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    await database.migrate()
    yield database
    await database.close()


def _new(conn: Connection, ref: str | None = None) -> str:
    return repo.insert_message(
        conn,
        kind="need-notice",
        status=MessageStatus.RECEIVED,
        content_type="application/fhir+json",
        raw=b"{}",
        actor="test",
        detail="received",
        sender_endpoint="urn:test" if ref else None,
        sender_message_id=ref,
    )


async def test_migrations_are_idempotent_and_create_every_table(db: Database) -> None:
    await db.migrate()
    tables = await db.read(lambda conn: set(inspect(conn).get_table_names()))
    assert {"messages", "message_events", "outbox", "handled", "inbox", "receipts"} <= tables
    assert "alembic_version" in tables
    mode = await db.read(lambda conn: conn.exec_driver_sql("PRAGMA journal_mode").scalar())
    assert mode == "wal"


async def test_status_changes_follow_the_machine_and_are_recorded(db: Database) -> None:
    message_id = await db.write(_new)

    def walk(conn: Connection) -> None:
        m = repo.get_message(conn, message_id)
        assert m is not None
        m = repo.set_status(conn, m, MessageStatus.VALIDATED, Stage.VALIDATE, "ok", "t")
        with pytest.raises(IllegalTransition):
            repo.set_status(conn, m, MessageStatus.ACKNOWLEDGED, Stage.ACKNOWLEDGE, "no", "t")

    await db.write(walk)
    events = await db.read(repo.events_of, message_id)
    assert [e["status"] for e in events] == ["RECEIVED", "VALIDATED"]


async def test_a_stale_reader_cannot_move_a_message_twice(db: Database) -> None:
    message_id = await db.write(_new)
    stale = await db.read(repo.get_message, message_id)
    assert stale is not None

    def move(conn: Connection) -> None:
        repo.set_status(conn, stale, MessageStatus.VALIDATED, Stage.VALIDATE, "first", "t")

    await db.write(move)
    with pytest.raises(repo.StaleStatus):
        await db.write(move)
    events = await db.read(repo.events_of, message_id)
    assert [e["detail"] for e in events if e["status"] == "VALIDATED"] == ["first"]


async def test_claim_and_inbox_are_idempotent(db: Database) -> None:
    message_id = await db.write(_new)
    assert await db.write(repo.claim, "deliver", f"{message_id}:0") is True
    assert await db.write(repo.claim, "deliver", f"{message_id}:0") is False
    assert await db.write(repo.claim, "deliver", f"{message_id}:1") is True
    assert await db.write(repo.put_in_inbox, message_id, "1506") is True
    assert await db.write(repo.put_in_inbox, message_id, "1506") is False
    rows = await db.read(repo.open_inbox, "1506", 10)
    assert [m.id for m, _ in rows] == [message_id]


async def test_group_commit_isolates_a_failing_write(db: Database) -> None:
    """Concurrent grouped writes: the one that raises is rolled back alone."""

    def boom(conn: Connection) -> str:
        _new(conn, "dup-ref")  # written, then undone by the savepoint
        raise ValueError("refused")

    results = await asyncio.gather(
        *(db.write_grouped(_new, f"ref-{i}") for i in range(20)),
        db.write_grouped(boom),
        return_exceptions=True,
    )
    assert isinstance(results[-1], ValueError)
    ids = results[:-1]
    assert all(isinstance(i, str) for i in ids)
    stored = await db.read(repo.get_messages, ids)
    assert set(stored) == set(ids)
    assert await db.read(repo.find_by_sender_ref, "urn:test", "dup-ref") is None


async def test_the_same_sender_reference_is_stored_once(db: Database) -> None:
    await db.write(_new, "once")
    with pytest.raises(IntegrityError):
        await db.write(_new, "once")


async def test_outbox_keeps_order_until_deleted(db: Database) -> None:
    records = [repo.OutboxRecord("t", b"k", f"v{i}".encode(), [("h", "x")]) for i in range(5)]

    def add(conn: Connection) -> None:
        for r in records:
            repo.add_outbox(conn, r)

    await db.write(add)
    pending = await db.read(repo.pending_outbox, 10)
    assert [r.value for _, r in pending] == [r.value for r in records]
    assert pending[0][1].headers == [("h", "x")]
    await db.write(repo.delete_outbox, [i for i, _ in pending[:3]])
    assert await db.read(repo.outbox_depth) == 2


async def test_migrations_match_the_table_definitions(db: Database) -> None:
    """What alembic builds is what tables.py declares (a forgotten migration fails here)."""

    def diff(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    assert await db.read(diff) == []


async def test_consents_are_filed_by_pseudonym_and_replaced_by_id(db: Database) -> None:
    at = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    given = ConsentRecord(
        id="c1",
        purposes=(ConsentPurpose.PLAN,),
        given_by=ConsentGiver.PERSON,
        given_on=dt.date(2026, 11, 1),
        recorded_at=at,
    )
    withdrawn = given.model_copy(update={"withdrawn_at": at, "recorded_at": at})

    def file(conn: Connection) -> list[bool]:
        return [
            repo.save_consent(conn, "p-1", given, "test"),
            repo.save_consent(conn, "p-1", given, "test"),  # the same again: no change
            repo.save_consent(conn, "p-2", given, "test"),  # another person, same id
            repo.save_consent(conn, "p-1", withdrawn, "test"),
        ]

    assert await db.write(file) == [True, False, True, True]
    assert await db.read(repo.consents_for, "p-1") == [withdrawn]
    assert await db.read(repo.consents_for, "p-2") == [given]
    assert await db.read(repo.consents_for, "p-3") == []
