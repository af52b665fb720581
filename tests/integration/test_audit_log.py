"""The audit log (issue 8): every content view, operator action, consent decision and
authorisation failure is on it, chained by hash and append-only; ``ipgw audit verify`` finds
an edited or deleted entry and names it."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import subprocess
import sys

import httpx
import orjson
import pytest

from gateway.config import Settings
from gateway.demo.samples import make_notice
from mappings.fhir.notice import notice_to_bundle
from tests.integration.test_pipeline import post, wait_status

pytestmark = pytest.mark.integration

PRIVILEGED = {"X-Operator": "kari", "X-Operator-Role": "privileged"}


async def some_entries(client: httpx.AsyncClient) -> str:
    """A consent decision (the notice's own), a content view, a refused token: three kinds."""
    notice = make_notice(random.Random(801), "1506")
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    message_id = str(r.json()["id"])
    await wait_status(client, message_id, {"DELIVERED"})
    seen = await client.post(
        f"/messages/{message_id}/content", json={"reason": "case 12"}, headers=PRIVILEGED
    )
    assert seen.status_code == 200
    refused = await client.get("/ops/overview", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401
    return message_id


async def verify(settings: Settings) -> tuple[int, str]:
    """``ipgw audit verify`` as an operator runs it, against the test gateway's store."""
    env = {**os.environ, "IPGW_DATA_DIR": str(settings.data_dir)}
    command = [sys.executable, "-m", "gateway", "audit", "verify"]
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout + done.stderr


async def test_actions_are_on_the_log_and_the_chain_verifies(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    message_id = await some_entries(client)
    entries = (await client.get("/ops/audit")).json()
    actions = {(e["action"], e["target"]) for e in entries}
    assert ("view-content", message_id) in actions
    assert ("refused", "GET /ops/overview") in actions
    assert any(a == "consent-filed" and t.startswith("pseudonym:") for a, t in actions)
    refusal = next(e for e in entries if e["action"] == "refused")
    assert (refusal["actor"], refusal["reason"]) == ("anonymous", "token-malformed")

    code, out = await verify(settings)
    assert code == 0, out
    assert f"intact: {len(entries)} entries" in out


def db_path(settings: Settings) -> str:
    return str(settings.data_dir / "ipgw.db")


async def test_the_log_refuses_updates_and_deletes(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await some_entries(client)
    with sqlite3.connect(db_path(settings)) as db:
        for sql in ("UPDATE audit_log SET reason = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(sql)


async def test_an_edited_entry_is_found_and_named(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await some_entries(client)
    with sqlite3.connect(db_path(settings)) as db:
        # someone who can drop the trigger changes who looked at the content
        db.execute("DROP TRIGGER audit_log_no_update")
        [(edited,)] = db.execute(
            "SELECT id FROM audit_log WHERE action = 'view-content'"
        ).fetchall()
        db.execute("UPDATE audit_log SET actor = 'operator:nobody' WHERE id = ?", (edited,))
    code, out = await verify(settings)
    assert code == 1
    assert f"BROKEN entry {edited}: was edited" in out


async def test_a_deleted_entry_is_found_by_the_broken_link(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await some_entries(client)
    with sqlite3.connect(db_path(settings)) as db:
        db.execute("DROP TRIGGER audit_log_no_delete")
        ids = [i for (i,) in db.execute("SELECT id FROM audit_log ORDER BY id")]
        assert len(ids) >= 3
        db.execute("DELETE FROM audit_log WHERE id = ?", (ids[1],))
    code, out = await verify(settings)
    assert code == 1
    assert f"BROKEN entry {ids[2]}: does not link to the entry before it" in out
    assert out.count("BROKEN entry") == 1
