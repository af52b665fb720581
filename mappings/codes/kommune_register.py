"""The national kommune register: today's kommuner, and what an old kommunenummer became.

Hospital systems keep the kommunenummer they recorded, and they lag behind the reforms (2018
Trøndelag, the 2020 kommune- and regionreform, the 2024 county splits). A notice that carries an
old number must still reach the kommune the person belongs to today. Most old numbers lead to
exactly one kommune (a renumbering or a merger); a split leads to several, and then only a person
can choose, so the answer says so and names the candidates instead of guessing.

The facts live in ``data/kommuner.json`` (SSB KLASS 131 and its change tables; the file names its
source and the date it is valid from). It is read once, checked, and indexed here.

Reasons hold kommune numbers and names only: a string that is not a 4-digit number is never
echoed, because a caller may pass the wrong field (a fødselsnummer) by mistake.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "ChangeKind",
    "Kommune",
    "KommuneChange",
    "KommuneRegister",
    "KommuneRegisterError",
    "Resolution",
    "ResolutionStatus",
    "kommune_register",
]

_NR = re.compile(r"[0-9]{4}")
_DATA_PACKAGE = "mappings.codes"
_DATA_FILE = "data/kommuner.json"


class KommuneRegisterError(ValueError):
    """The data file contradicts itself; better to fail at start than route by a broken table."""


class ChangeKind(StrEnum):
    """How SSB's change rows read once grouped: the kind decides what an old number leads to."""

    RENUMBERED = "renumbered"  # one number to one new number (a name change may come with it)
    MERGED = "merged"  # several numbers into one
    SPLIT = "split"  # one number into several: the number alone cannot say which
    RENAMED = "renamed"  # same number, new name: nothing to follow
    BOUNDARY = "boundary"  # area moved while every number continues: nothing to follow


class ResolutionStatus(StrEnum):
    CURRENT = "current"  # the number is valid on the date asked
    REPLACED = "replaced"  # it leads to exactly one kommune valid on that date
    AMBIGUOUS = "ambiguous"  # a split: several candidates, an operator must choose
    UNKNOWN = "unknown"  # not a kommunenummer (on that date)


@dataclass(frozen=True, slots=True)
class Kommune:
    nr: str
    name: str

    def __str__(self) -> str:
        return f"{self.nr} {self.name}"


@dataclass(frozen=True, slots=True)
class KommuneChange:
    """One change as SSB dated it. ``parts`` maps a target number to the older numbers whose
    whole area it took, where a source says so: it lets a split that undid a merger send a
    number from before the merger to one kommune."""

    date: dt.date
    kind: ChangeKind
    old: tuple[Kommune, ...]
    new: tuple[Kommune, ...]
    note: str = ""
    parts: tuple[tuple[str, frozenset[str]], ...] = ()

    @property
    def old_nrs(self) -> frozenset[str]:
        return frozenset(k.nr for k in self.old)

    @property
    def new_nrs(self) -> frozenset[str]:
        return frozenset(k.nr for k in self.new)


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a kommunenummer means on a date, with a reason a person can act on."""

    nr: str  # the number asked about; "" when what was asked is not a 4-digit number
    on: dt.date
    status: ResolutionStatus
    candidates: tuple[Kommune, ...]  # valid on ``on``; one for CURRENT/REPLACED, several if split
    reason: str
    via: tuple[KommuneChange, ...] = field(default=())  # the changes followed, oldest first

    @property
    def kommune(self) -> Kommune | None:
        """The one kommune to route to, or None when a person has to decide."""
        if self.status in (ResolutionStatus.CURRENT, ResolutionStatus.REPLACED):
            return self.candidates[0]
        return None


class KommuneRegister:
    """Kommuner valid on any date since ``changes_since``, and where a number went after that."""

    def __init__(
        self,
        kommuner: Iterable[Kommune],
        changes: Iterable[KommuneChange],
        *,
        valid_from: dt.date,
        changes_since: dt.date,
        compiled: dt.date | None = None,
        source: Mapping[str, object] | None = None,
    ) -> None:
        self.valid_from = valid_from
        self.changes_since = changes_since
        self.compiled = compiled
        self.source: Mapping[str, object] = dict(source or {})
        self.changes: tuple[KommuneChange, ...] = tuple(sorted(changes, key=lambda c: c.date))
        listed = tuple(kommuner)
        self._start: dict[str, dt.date] = {}  # first day a number is valid (absent: before)
        self._end: dict[str, dt.date] = {}  # first day a number is no longer valid
        self._exits: dict[str, list[KommuneChange]] = {}  # the changes that ended a number
        self._names: dict[str, list[tuple[dt.date | None, str]]] = {}
        self._index(listed)

    # -- building -------------------------------------------------------------------------------

    def _index(self, listed: tuple[Kommune, ...]) -> None:
        for change in self.changes:
            _check_shape(change)
            for old in change.old:
                self._name_seen(old.nr, None, old.name, change)
            if change.kind in (ChangeKind.RENAMED, ChangeKind.BOUNDARY):
                if change.kind is ChangeKind.RENAMED:
                    self._names[change.new[0].nr].append((change.date, change.new[0].name))
                continue
            for old in change.old:
                if old.nr in change.new_nrs:
                    continue  # a merger that keeps one of the numbers: it continues
                ended = self._end.setdefault(old.nr, change.date)
                if ended != change.date:
                    raise KommuneRegisterError(f"{old} ends twice ({ended} and {change.date})")
                self._exits.setdefault(old.nr, []).append(change)
            for new in change.new:
                history = self._names.get(new.nr)
                if new.nr in change.old_nrs:  # a merger that keeps the number (and maybe renames)
                    if history and history[-1][1] != new.name:
                        history.append((change.date, new.name))
                    continue
                if history is not None and (
                    self._start.get(new.nr) != change.date or history[-1][1] != new.name
                ):  # another change of the same day may name the same target, never differently
                    raise KommuneRegisterError(f"{new} is introduced on {change.date} but existed")
                self._start[new.nr] = change.date
                self._names.setdefault(new.nr, [(change.date, new.name)])
        for nr, start in self._start.items():
            if nr in self._end and self._end[nr] <= start:
                raise KommuneRegisterError(f"{nr} ends on {self._end[nr]} before it starts")
        for kommune in listed:
            if not _NR.fullmatch(kommune.nr):
                raise KommuneRegisterError(
                    f"not a 4-digit kommunenummer in the register: {kommune}"
                )
            self._names.setdefault(kommune.nr, [(None, kommune.name)])
            if self._name_on(kommune.nr, self.valid_from) != kommune.name:
                raise KommuneRegisterError(f"{kommune}: the changes give it another name")
        numbers = [k.nr for k in listed]
        if len(set(numbers)) != len(numbers):
            raise KommuneRegisterError("a kommunenummer is listed twice")
        if set(numbers) != self.valid_on(self.valid_from):
            raise KommuneRegisterError(
                f"the kommuner listed are not those the changes leave valid on {self.valid_from}"
            )
        for change in self.changes:  # every target must be a kommune on the day it took effect
            for new in change.new:
                if not self._valid(new.nr, change.date):
                    raise KommuneRegisterError(f"{change.date}: target {new} is not valid then")

    def _name_seen(self, nr: str, on: dt.date | None, name: str, change: KommuneChange) -> None:
        history = self._names.setdefault(nr, [(on, name)])
        if history[-1][1] != name:
            raise KommuneRegisterError(
                f"{change.date} {change.kind}: {nr} is named {name!r}, "
                f"earlier changes call it {history[-1][1]!r}"
            )

    # -- questions --------------------------------------------------------------------------------

    def known(self, nr: str) -> bool:
        """Whether the number was a kommunenummer at any time since ``changes_since``."""
        return nr in self._names

    def valid_on(self, on: dt.date) -> frozenset[str]:
        return frozenset(nr for nr in self._names if self._valid(nr, on))

    def kommuner(self, on: dt.date | None = None) -> tuple[Kommune, ...]:
        """Every kommune valid on the date (default today), by number."""
        day = on or dt.date.today()
        return tuple(Kommune(nr, self._name_on(nr, day)) for nr in sorted(self.valid_on(day)))

    def current(self, nr: str, on: dt.date | None = None) -> Kommune | None:
        """The kommune with this number if the number is valid on the date (default today)."""
        day = on or dt.date.today()
        if nr in self._names and self._valid(nr, day):
            return Kommune(nr, self._name_on(nr, day))
        return None

    def resolve(self, nr: str, on: dt.date | None = None) -> Resolution:
        """What the number means on ``on`` (default today): itself, the one kommune it became,
        the candidates of a split, or nothing; ``reason`` says which in words.

        The register knows no change before ``changes_since``: a date before it is answered as
        if nothing had changed between then and ``changes_since``."""
        day = on or dt.date.today()
        if not isinstance(nr, str) or not _NR.fullmatch(nr):
            return Resolution(
                "", day, ResolutionStatus.UNKNOWN, (), "not a kommunenummer: 4 digits expected"
            )
        if nr not in self._names:
            return Resolution(
                nr,
                day,
                ResolutionStatus.UNKNOWN,
                (),
                f"{nr} is not a kommunenummer and has not been one since {self.changes_since} "
                "(SSB KLASS 131, Standard for kommuneinndeling)",
            )
        start = self._start.get(nr)
        if start is not None and start > day:
            return Resolution(
                nr,
                day,
                ResolutionStatus.UNKNOWN,
                (),
                f"{nr} {self._name_on(nr, start)} came into use on {start}: "
                f"it was not a kommunenummer on {day}",
            )
        if self._valid(nr, day):
            here = Kommune(nr, self._name_on(nr, day))
            return Resolution(
                nr, day, ResolutionStatus.CURRENT, (here,), f"{here} is a current kommune"
            )
        via: list[KommuneChange] = []
        found = sorted(self._follow(nr, day, frozenset(), via))
        old = Kommune(nr, self._name_on(nr, self._end[nr] - dt.timedelta(days=1)))
        candidates = tuple(Kommune(n, self._name_on(n, day)) for n in found)
        path = tuple(sorted(dict.fromkeys(via), key=lambda c: c.date))
        history = "; ".join(f"{c.kind} {c.date}" for c in path)
        if len(candidates) == 1:
            return Resolution(
                nr,
                day,
                ResolutionStatus.REPLACED,
                candidates,
                f"{old} is now {candidates[0]} ({history})",
                path,
            )
        splits = "".join(
            f"{', '.join(map(str, c.old))} was split on {c.date}; "
            for c in path
            if c.kind is ChangeKind.SPLIT
        )
        return Resolution(
            nr,
            day,
            ResolutionStatus.AMBIGUOUS,
            candidates,
            f"{old} is now one of {', '.join(map(str, candidates))}: {splits}"
            "the number alone cannot say which part the person lives in",
            path,
        )

    def name_on(self, nr: str, on: dt.date) -> str | None:
        """The name SSB gave the number on that date (the first known name before that)."""
        return self._name_on(nr, on) if nr in self._names else None

    # -- internals --------------------------------------------------------------------------------

    def _valid(self, nr: str, on: dt.date) -> bool:
        start, end = self._start.get(nr), self._end.get(nr)
        return (start is None or start <= on) and (end is None or on < end)

    def _name_on(self, nr: str, on: dt.date) -> str:
        history = self._names[nr]
        name = history[0][1]
        for since, candidate in history:
            if since is None or since <= on:
                name = candidate
        return name

    def _follow(
        self, nr: str, on: dt.date, lineage: frozenset[str], via: list[KommuneChange]
    ) -> set[str]:
        """Numbers valid on ``on`` that ``nr`` leads to. Terminates: every step goes to a number
        that starts on the day the previous one ended, so dates strictly increase."""
        if self._valid(nr, on):
            return {nr}
        lineage = lineage | {nr}
        found: set[str] = set()
        for change in self._exits[nr]:
            via.append(change)
            targets = change.new_nrs
            if change.parts:
                narrowed = {t for t, olds in change.parts if olds & lineage}
                targets = frozenset(narrowed) or targets
            for target in sorted(targets):
                found |= self._follow(target, on, lineage, via)
        return found

    # -- loading ----------------------------------------------------------------------------------

    @classmethod
    def from_json(cls, text: str | bytes) -> KommuneRegister:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise KommuneRegisterError(f"the register is not JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: object) -> KommuneRegister:
        root = _mapping(data, "the register")
        kommuner = [_kommune(k) for k in _list(root.get("kommuner"), "kommuner")]
        changes = [_change(c) for c in _list(root.get("changes"), "changes")]
        compiled = root.get("compiled")
        source = root.get("source")
        return cls(
            kommuner,
            changes,
            valid_from=_date(root.get("valid_from"), "valid_from"),
            changes_since=_date(root.get("changes_since"), "changes_since"),
            compiled=None if compiled is None else _date(compiled, "compiled"),
            source=_mapping(source, "source") if source is not None else None,
        )


@functools.cache
def kommune_register() -> KommuneRegister:
    """The register shipped with the package, read and checked once per process."""
    text = importlib.resources.files(_DATA_PACKAGE).joinpath(_DATA_FILE).read_text("utf-8")
    return KommuneRegister.from_json(text)


# -- parsing and shape checks (the file is data: say exactly what is wrong with it) -----------


def _check_shape(change: KommuneChange) -> None:
    n_old, n_new = len(change.old), len(change.new)
    old_nrs, new_nrs = change.old_nrs, change.new_nrs
    ok = {
        ChangeKind.RENUMBERED: n_old == 1 and n_new == 1 and not old_nrs & new_nrs,
        ChangeKind.RENAMED: n_old == 1
        and n_new == 1
        and old_nrs == new_nrs
        and change.old[0].name != change.new[0].name,
        ChangeKind.MERGED: n_old >= 2 and n_new == 1,
        ChangeKind.SPLIT: n_old == 1 and n_new >= 2 and not old_nrs & new_nrs,
        ChangeKind.BOUNDARY: n_old >= 1,
    }[change.kind]
    for kommune in (*change.old, *change.new):
        if not _NR.fullmatch(kommune.nr):
            ok = False
    for target, olds in change.parts:
        if change.kind is not ChangeKind.SPLIT or target not in new_nrs:
            ok = False
        if any(not _NR.fullmatch(o) for o in olds):
            ok = False
    if not ok or len(old_nrs) != n_old or len(new_nrs) != n_new:
        raise KommuneRegisterError(
            f"{change.date} {change.kind}: {', '.join(map(str, change.old))} -> "
            f"{', '.join(map(str, change.new))} does not have the shape of a {change.kind}"
        )


def _mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise KommuneRegisterError(f"{what} must be an object")
    return value


def _list(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise KommuneRegisterError(f"{what} must be a list")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise KommuneRegisterError(f"{what} must be a string")
    return value


def _date(value: object, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(_str(value, what))
    except ValueError:
        raise KommuneRegisterError(f"{what} must be a date (YYYY-MM-DD)") from None


def _kommune(value: object) -> Kommune:
    item = _mapping(value, "a kommune")
    return Kommune(_str(item.get("nr"), "kommune nr"), _str(item.get("name"), "kommune name"))


def _change(value: object) -> KommuneChange:
    item = _mapping(value, "a change")
    when = _date(item.get("date"), "change date")
    try:
        kind = ChangeKind(_str(item.get("kind"), "change kind"))
    except ValueError:
        raise KommuneRegisterError(f"{when}: unknown change kind") from None
    parts = _mapping(item.get("parts", {}), "change parts")
    return KommuneChange(
        date=when,
        kind=kind,
        old=tuple(_kommune(k) for k in _list(item.get("from"), "change from")),
        new=tuple(_kommune(k) for k in _list(item.get("to"), "change to")),
        note=_str(item.get("note", ""), "change note"),
        parts=tuple(
            (target, frozenset(_str(o, "part") for o in _list(olds, "parts")))
            for target, olds in sorted(parts.items())
        ),
    )
