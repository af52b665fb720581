"""Operator search at scale (issue 7: "paginated and indexed so it stays fast at 1 million
stored messages"): fills a SQLite store built by the real migrations with N messages (and one
event and one delivery try each), then times the console's queries through the repository.

    .venv/bin/python bench/console_search.py                 # 1,000,000 messages
    .venv/bin/python bench/console_search.py -n 200000 --keep /tmp/ops.db

Prints, per query, the median and worst of 20 runs in ms, and the query plan's index. A
measurement, not a test. The rows are metadata only (no person data: the raw body is empty).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, text

from gateway.domain.status import MessageStatus
from gateway.store import repository as repo
from gateway.store.database import Database
from gateway.store.tables import delivery_attempts, message_events, messages

KOMMUNER = ["1505", "1506", "1508", "1511", "1515", "1520", "5001", "5035", "5037", "5038"]
ADAPTERS = ["ke_inbox", "fhir_rest", "nhn_msh", "sampro"]
#: the shape of a store that has run for a while: most answered, a tail waiting
STATUS_MIX = [
    (MessageStatus.ACKNOWLEDGED, 0.93),
    (MessageStatus.DELIVERED, 0.03),
    (MessageStatus.REJECTED, 0.02),
    (MessageStatus.DEAD, 0.01),
    (MessageStatus.HELD_CONSENT, 0.006),
    (MessageStatus.RETRYING, 0.004),
]
BATCH = 20_000


def fill(conn: Connection, start: int, count: int, rng: random.Random, now: dt.datetime) -> None:
    statuses = [s for s, _ in STATUS_MIX]
    weights = [w for _, w in STATUS_MIX]
    rows, events, tries = [], [], []
    for i in range(start, start + count):
        mid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        status = rng.choices(statuses, weights)[0]
        # spread over 90 days, the newest at the end
        at = now - dt.timedelta(seconds=(1_000_000 - i % 1_000_000) * 7.776)
        kommune = rng.choice(KOMMUNER)
        rows.append(
            {
                "id": mid,
                "kind": "need-notice",
                "status": status.value,
                "generation": 0,
                "sender_endpoint": "urn:oid:2.16.578.1.12.4.1.2:99100001",
                "sender_message_id": f"s-{i}",
                "sender_her_id": 99100011 + i % 3,
                "recipient_kommune": kommune,
                "recipient_her_id": 99_000_000 + int(kommune),
                "recipient_adapter": rng.choice(ADAPTERS),
                "patient_pseudonym": f"{i % 300_000:064x}",
                "content_type": "application/fhir+json",
                "raw": b"",
                "canonical": None,
                "reason": "E21 no koordinerende enhet" if status is MessageStatus.DEAD else None,
                "received_at": at,
                "updated_at": at + dt.timedelta(seconds=1),
            }
        )
        events.append(
            {
                "message_id": mid,
                "at": at,
                "stage": "ingest",
                "status": "RECEIVED",
                "detail": "received",
                "actor": "bench",
            }
        )
        tries.append(
            {
                "message_id": mid,
                "generation": 0,
                "attempt": 0,
                "at": at,
                "adapter": rows[-1]["recipient_adapter"],
                "outcome": "delivered",
                "duration_ms": 12,
            }
        )
    conn.execute(insert(messages), rows)
    conn.execute(insert(message_events), events)
    conn.execute(insert(delivery_attempts), tries)


def timed(conn: Connection, label: str, query: Callable[[Connection], Any], plan_sql: str) -> None:
    times = []
    for _ in range(20):
        started = time.perf_counter()
        query(conn)
        times.append((time.perf_counter() - started) * 1000)
    plan = " / ".join(r[-1] for r in conn.execute(text(f"EXPLAIN QUERY PLAN {plan_sql}")))
    median, worst = statistics.median(times), max(times)
    print(f"{label:<36} median {median:7.2f} ms  worst {worst:7.2f} ms  {plan[:80]}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="store file to create (default: a temp dir)")
    args = parser.parse_args()
    where = args.keep or Path(tempfile.mkdtemp()) / "ops.db"
    db = Database(f"sqlite:///{where}")
    await db.migrate()
    rng = random.Random(7)
    now = repo.now()
    started = time.perf_counter()
    for start in range(0, args.n, BATCH):
        await db.write(fill, start, min(BATCH, args.n - start), rng, now)
    print(f"filled {args.n:,} messages in {time.perf_counter() - started:.0f} s ({where})")
    await db.write(lambda conn: conn.exec_driver_sql("ANALYZE"))

    hour_ago = (now - dt.timedelta(hours=1)).isoformat()

    def run(conn: Connection) -> None:
        dead = repo.MessageFilter(statuses=(MessageStatus.DEAD,))
        held = repo.MessageFilter(statuses=(MessageStatus.HELD_CONSENT, MessageStatus.DEAD))
        kommune = repo.MessageFilter(statuses=(MessageStatus.DEAD,), kommune="1506")
        ref = repo.MessageFilter(sender_ref="s-123456")
        first = repo.list_messages(conn, dead, 51)
        deep = first
        for _ in range(20):  # up to 20 pages down
            more = repo.list_messages(conn, dead, 51, (deep[-1].updated_at, deep[-1].id))
            if len(more) < 51:
                break
            deep = more
        cursor = (deep[-1].updated_at, deep[-1].id)
        person = f"{4242:064x}"
        by_status = "SELECT id FROM messages WHERE status='DEAD' ORDER BY updated_at DESC"
        cases: list[tuple[str, Callable[[Connection], Any], str]] = [
            ("DEAD, first page of 50", lambda c: repo.list_messages(c, dead, 51), by_status),
            (
                "DEAD, a deep page (keyset)",
                lambda c: repo.list_messages(c, dead, 51, cursor),
                by_status.replace("ORDER", "AND updated_at < '2100' ORDER"),
            ),
            (
                "HELD_CONSENT + DEAD, first page",
                lambda c: repo.list_messages(c, held, 51),
                by_status,
            ),
            (
                "DEAD for kommune 1506",
                lambda c: repo.list_messages(c, kommune, 51),
                by_status.replace("ORDER", "AND recipient_kommune='1506' ORDER"),
            ),
            (
                "by the sender's own id",
                lambda c: repo.list_messages(c, ref, 51),
                "SELECT id FROM messages WHERE sender_message_id='s-123456'",
            ),
            (
                "by message id",
                lambda c: repo.get_message(c, first[0].id),
                f"SELECT id FROM messages WHERE id='{first[0].id}'",
            ),
            (
                "by person (pseudonym)",
                lambda c: repo.messages_of_person(c, person, tuple(MessageStatus)),
                f"SELECT id FROM messages WHERE patient_pseudonym='{person}'",
            ),
            (
                "overview: statuses now",
                repo.status_counts,
                "SELECT status, count(*) FROM messages GROUP BY status",
            ),
            (
                "metrics: messages per status and kind",
                repo.status_kind_counts,
                "SELECT status, kind, count(*) FROM messages GROUP BY status, kind",
            ),
            (
                "overview: changes in the last hour",
                lambda c: repo.changes_since(c, now - dt.timedelta(hours=1)),
                f"SELECT count(*) FROM message_events WHERE at >= '{hour_ago}'",
            ),
            (
                "overview: tries in the last hour",
                lambda c: repo.attempts_since(c, now - dt.timedelta(hours=1)),
                f"SELECT count(*) FROM delivery_attempts WHERE at >= '{hour_ago}'",
            ),
            (
                "overview: oldest unacknowledged",
                repo.oldest_unacknowledged,
                "SELECT recipient_kommune, recipient_her_id, min(updated_at) FROM messages "
                "WHERE status='DELIVERED' GROUP BY recipient_kommune, recipient_her_id",
            ),
        ]
        for label, query, plan_sql in cases:
            timed(conn, label, query, plan_sql)

    await db.read(run)
    await db.close()


if __name__ == "__main__":
    asyncio.run(main())
