"""The audit log's hash chain (issue 8): each entry carries the hash of the one before it and
its own hash over its content and that link, so an entry edited or deleted in the database
breaks the chain where it happened, and ``ipgw audit verify`` points at it.

What the chain cannot show by itself: entries cut off the end (the last entries deleted
together). The newest hash is therefore logged at every start and by ``ipgw audit verify``,
so a later check can be held against a hash kept elsewhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

#: the link of the first entry
GENESIS = "0" * 64


def entry_hash(
    prev_hash: str,
    at: dt.datetime,
    actor: str,
    action: str,
    target: str | None,
    reason: str | None,
) -> str:
    """SHA-256 over the entry's fields and the previous hash, in one fixed JSON form."""
    instant = at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    canonical = orjson.dumps([prev_hash, instant, actor, action, target, reason])
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class Entry:
    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str | None
    reason: str | None
    prev_hash: str | None
    hash: str | None


@dataclass(frozen=True)
class Break:
    """Where the chain is broken and how (no entry's content: only its id)."""

    entry_id: int
    what: str

    def __str__(self) -> str:
        return f"entry {self.entry_id}: {self.what}"


@dataclass(frozen=True)
class Verdict:
    entries: int
    #: the hash of the newest entry: hold it against one kept elsewhere to see a cut tail
    head: str
    breaks: tuple[Break, ...]

    @property
    def intact(self) -> bool:
        return not self.breaks


def verify(entries: Iterable[Entry]) -> Verdict:
    """Walk the log in id order: every entry must link to the one before it and hash to what
    it says. Goes on after a break, so one check shows every place."""
    breaks: list[Break] = []
    prev = GENESIS
    count = 0
    for e in entries:
        count += 1
        if e.prev_hash != prev:
            breaks.append(
                Break(
                    e.id,
                    "does not link to the entry before it: an entry before it was "
                    "deleted, inserted or edited",
                )
            )
        expected = entry_hash(e.prev_hash or "", e.at, e.actor, e.action, e.target, e.reason)
        if e.hash != expected:
            breaks.append(Break(e.id, "was edited: its content does not match its hash"))
        prev = e.hash or ""
    return Verdict(count, prev, tuple(breaks))
