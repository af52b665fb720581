"""The directory: kommune -> koordinerende enhet (KE) and the adapter that delivers to it."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.domain.model import CoordinatingUnit


class DirectoryError(ValueError):
    """The directory file is unreadable or inconsistent; the gateway refuses to start with it."""


@dataclass(frozen=True)
class DirectoryEntry:
    unit: CoordinatingUnit
    #: adapter-specific settings from ``[kommune.ke.settings]``
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: ``active = false`` takes a KE out of routing without deleting it (messages for it go
    #: DEAD with E21 and can be retried once it is active again)
    active: bool = True


@dataclass(frozen=True)
class Directory:
    entries: Mapping[str, DirectoryEntry]
    fictitious_her_ids: bool = False

    def unit_for(self, kommune_nr: str) -> CoordinatingUnit | None:
        entry = self.entries.get(kommune_nr)
        return entry.unit if entry else None

    def active_entry(self, kommune_nr: str) -> DirectoryEntry | None:
        """The entry messages may be routed and delivered to now."""
        entry = self.entries.get(kommune_nr)
        return entry if entry is not None and entry.active else None

    def adapter_names(self) -> set[str]:
        return {e.unit.adapter for e in self.entries.values()}


def load_directory(path: Path) -> Directory:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise DirectoryError(f"cannot read directory {path}: {e}") from e

    items = data.get("kommune", [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DirectoryError(f"{path}: kommuner must be [[kommune]] tables")
    entries: dict[str, DirectoryEntry] = {}
    her_ids: dict[int, str] = {}
    for i, item in enumerate(items):
        ke = item.get("ke", {})
        settings = ke.get("settings", {}) if isinstance(ke, dict) else None
        active = ke.get("active", True) if isinstance(ke, dict) else None
        if not isinstance(active, bool):
            raise DirectoryError(f"{path}: kommune entry #{i + 1}: active must be true or false")
        if not isinstance(ke, dict) or not isinstance(settings, dict):
            raise DirectoryError(
                f"{path}: kommune entry #{i + 1} needs a [kommune.ke] table "
                "(and [kommune.ke.settings], if any, must be a table)"
            )
        try:
            unit = CoordinatingUnit(
                kommune_nr=item.get("nr", ""),
                kommune_name=item.get("name", ""),
                name=ke.get("name", ""),
                her_id=ke.get("her_id", 0),
                adapter=ke.get("adapter", ""),
            )
        except ValidationError as e:
            fields = ", ".join(".".join(map(str, err["loc"])) for err in e.errors())
            raise DirectoryError(f"{path}: kommune entry #{i + 1} is invalid ({fields})") from None
        if unit.kommune_nr in entries:
            raise DirectoryError(f"{path}: kommune {unit.kommune_nr} is listed twice")
        if unit.her_id in her_ids:
            raise DirectoryError(
                f"{path}: HER-id {unit.her_id} is used by both {her_ids[unit.her_id]} "
                f"and {unit.kommune_nr}: a message could reach the wrong KE"
            )
        her_ids[unit.her_id] = unit.kommune_nr
        entries[unit.kommune_nr] = DirectoryEntry(unit, dict(settings), active)
    if not entries:
        raise DirectoryError(f"{path}: lists no kommune")
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise DirectoryError(f"{path}: [meta] must be a table")
    return Directory(entries, fictitious_her_ids=bool(meta.get("fictitious_her_ids", False)))
