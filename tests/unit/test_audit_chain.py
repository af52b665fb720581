"""The audit log's hash chain (issue 8): an edited, deleted or inserted entry is found, and
named by id, wherever it is in the log."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from gateway.store.audit_chain import GENESIS, Entry, entry_hash, verify

texts = st.text(max_size=30)
fields = st.tuples(
    st.datetimes(
        min_value=dt.datetime(2020, 1, 1),
        max_value=dt.datetime(2040, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    texts,
    texts,
    st.none() | texts,
    st.none() | texts,
)


def chain(items: list[tuple[dt.datetime, str, str, str | None, str | None]]) -> list[Entry]:
    out, prev = [], GENESIS
    for i, (at, actor, action, target, reason) in enumerate(items, start=1):
        h = entry_hash(prev, at, actor, action, target, reason)
        out.append(Entry(i, at, actor, action, target, reason, prev, h))
        prev = h
    return out


@given(st.lists(fields, max_size=20))
def test_an_untouched_chain_is_intact(items: list) -> None:  # type: ignore[type-arg]
    entries = chain(items)
    verdict = verify(entries)
    assert verdict.intact
    assert verdict.entries == len(entries)
    assert verdict.head == (entries[-1].hash if entries else GENESIS)


@given(st.lists(fields, min_size=1, max_size=20), st.data())
def test_an_edited_entry_is_named(items: list, data: st.DataObject) -> None:  # type: ignore[type-arg]
    entries = chain(items)
    i = data.draw(st.integers(0, len(entries) - 1))
    field = data.draw(st.sampled_from(["actor", "action", "target", "reason", "at"]))
    old = getattr(entries[i], field)
    new = old + dt.timedelta(microseconds=1) if field == "at" else f"{old or ''}x"
    entries[i] = dataclasses.replace(entries[i], **{field: new})
    verdict = verify(entries)
    assert not verdict.intact
    assert verdict.breaks[0].entry_id == entries[i].id
    assert "edited" in verdict.breaks[0].what


@given(st.lists(fields, min_size=2, max_size=20), st.data())
def test_a_deleted_entry_is_named_by_the_one_after_it(items: list, data: st.DataObject) -> None:  # type: ignore[type-arg]
    entries = chain(items)
    i = data.draw(st.integers(0, len(entries) - 2))
    after = entries[i + 1].id
    del entries[i]
    verdict = verify(entries)
    assert [b.entry_id for b in verdict.breaks] == [after]
    assert "deleted" in verdict.breaks[0].what


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link() -> None:
    entries = chain([(dt.datetime(2026, 11, 23, tzinfo=dt.UTC), "a", "view-content", "m", "r")] * 3)
    e = entries[1]
    forged = entry_hash(e.prev_hash or "", e.at, "someone-else", e.action, e.target, e.reason)
    entries[1] = dataclasses.replace(e, actor="someone-else", hash=forged)
    assert [b.entry_id for b in verify(entries).breaks] == [3]


def test_the_hash_does_not_depend_on_the_time_zone_it_is_given_in() -> None:
    at = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
    oslo = at.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert entry_hash(GENESIS, at, "a", "b", None, None) == entry_hash(
        GENESIS, oslo, "a", "b", None, None
    )
    assert entry_hash(GENESIS, at, "a", "b", None, None) != entry_hash(
        GENESIS, at, "a", "b", "", None
    )
