"""The directory: kommune -> koordinerende enhet (KE) and the adapter that delivers to it, and
the health trusts (helseforetak) that take part in plans, each with its own adapter."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.domain.model import CoordinatingUnit, HealthTrust, Organisation, ReceivingUnit


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
class HealthTrustEntry:
    unit: HealthTrust
    #: adapter-specific settings from ``[helseforetak.settings]``
    settings: Mapping[str, Any] = field(default_factory=dict)
    active: bool = True


#: where a routed message goes: a kommune's KE or a health trust
RecipientEntry = DirectoryEntry | HealthTrustEntry


@dataclass(frozen=True)
class Directory:
    entries: Mapping[str, DirectoryEntry]
    fictitious_her_ids: bool = False
    #: health trusts by HER-id
    health_trusts: Mapping[int, HealthTrustEntry] = field(default_factory=dict)

    def unit_for(self, kommune_nr: str) -> CoordinatingUnit | None:
        entry = self.entries.get(kommune_nr)
        return entry.unit if entry else None

    def active_entry(self, kommune_nr: str) -> DirectoryEntry | None:
        """The entry messages may be routed and delivered to now."""
        entry = self.entries.get(kommune_nr)
        return entry if entry is not None and entry.active else None

    def recipient_entry(self, kommune_nr: str | None, her_id: int | None) -> RecipientEntry | None:
        """The active entry a routed message goes to: its kommune's KE, or for a message to a
        party of a plan (no kommune) the health trust with its HER-id."""
        if kommune_nr is not None:
            return self.active_entry(kommune_nr)
        entry = self.health_trusts.get(her_id) if her_id is not None else None
        return entry if entry is not None and entry.active else None

    def entry_by_her_id(self, her_id: int) -> RecipientEntry | None:
        """The active KE or health trust with this HER-id (the directory keeps them unique)."""
        trust = self.health_trusts.get(her_id)
        if trust is not None:
            return trust if trust.active else None
        for entry in self.entries.values():
            if entry.unit.her_id == her_id:
                return entry if entry.active else None
        return None

    def recipient_unit(self, kommune_nr: str | None, her_id: int | None) -> ReceivingUnit | None:
        """The unit a message was routed to, active or not (who answered it)."""
        if kommune_nr is not None:
            return self.unit_for(kommune_nr)
        entry = self.health_trusts.get(her_id) if her_id is not None else None
        return entry.unit if entry else None

    def health_trust_of(self, organisation: Organisation) -> HealthTrust | None:
        """The health trust an organisation in a plan belongs to: by HER-id, else orgnr."""
        if organisation.her_id is not None and organisation.her_id in self.health_trusts:
            return self.health_trusts[organisation.her_id].unit
        if organisation.orgnr is not None:
            for entry in self.health_trusts.values():
                if entry.unit.orgnr == organisation.orgnr:
                    return entry.unit
        return None

    def kommuner_of(self, orgnrs: frozenset[str]) -> frozenset[str]:
        """The kommuner whose KE belongs to one of these organisations (whose inbox a client
        with their token may read)."""
        return frozenset(
            nr
            for nr, e in self.entries.items()
            if e.unit.orgnr is not None and e.unit.orgnr in orgnrs
        )

    def orgnr_of_her_id(self, her_id: int) -> str | None:
        """The organisasjonsnummer the directory knows for a KE's or health trust's HER-id,
        active or not."""
        trust = self.health_trusts.get(her_id)
        if trust is not None:
            return trust.unit.orgnr
        for entry in self.entries.values():
            if entry.unit.her_id == her_id:
                return entry.unit.orgnr
        return None

    def adapter_names(self) -> set[str]:
        units: list[ReceivingUnit] = [e.unit for e in self.entries.values()]
        units += [e.unit for e in self.health_trusts.values()]
        return {u.adapter for u in units}


_KOMMUNE_KEYS = frozenset({"nr", "name", "region", "ke"})
_KE_KEYS = frozenset({"name", "her_id", "orgnr", "adapter", "active", "settings"})
_TRUST_KEYS = frozenset({"name", "orgnr", "her_id", "adapter", "active", "settings"})


def _invalid(path: Path, where: str, e: ValidationError) -> DirectoryError:
    """Names the fields at fault, never their values (pydantic's text would quote them)."""
    fields = ", ".join(".".join(map(str, err["loc"])) for err in e.errors())
    return DirectoryError(f"{path}: {where} is invalid ({fields})")


def _known_keys(path: Path, where: str, table: dict[str, Any], known: frozenset[str]) -> None:
    """A misspelt key (``activ = false``) would silently leave a unit routed: refuse it."""
    unknown = sorted(set(table) - known)
    if unknown:
        raise DirectoryError(
            f"{path}: {where}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )


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
    orgnrs: set[str] = set()
    for i, item in enumerate(items):
        _known_keys(path, f"kommune entry #{i + 1}", item, _KOMMUNE_KEYS)
        ke = item.get("ke", {})
        if isinstance(ke, dict):
            _known_keys(path, f"kommune entry #{i + 1} [kommune.ke]", ke, _KE_KEYS)
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
                orgnr=ke.get("orgnr"),
            )
        except ValidationError as e:
            raise _invalid(path, f"kommune entry #{i + 1}", e) from None
        if unit.kommune_nr in entries:
            raise DirectoryError(f"{path}: kommune {unit.kommune_nr} is listed twice")
        if unit.her_id in her_ids:
            raise DirectoryError(
                f"{path}: HER-id {unit.her_id} is used by both {her_ids[unit.her_id]} "
                f"and {unit.kommune_nr}: a message could reach the wrong KE"
            )
        her_ids[unit.her_id] = unit.kommune_nr
        if unit.orgnr is not None and unit.orgnr in orgnrs:
            # one organisation's token would open two kommuner's inboxes
            raise DirectoryError(f"{path}: orgnr {unit.orgnr} is listed twice")
        if unit.orgnr is not None:
            orgnrs.add(unit.orgnr)
        entries[unit.kommune_nr] = DirectoryEntry(unit, dict(settings), active)
    if not entries:
        raise DirectoryError(f"{path}: lists no kommune")
    trusts = _health_trusts(path, data.get("helseforetak", []), her_ids, orgnrs)
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise DirectoryError(f"{path}: [meta] must be a table")
    return Directory(
        entries,
        fictitious_her_ids=bool(meta.get("fictitious_her_ids", False)),
        health_trusts=trusts,
    )


def _health_trusts(
    path: Path, items: Any, her_ids: dict[int, str], orgnrs: set[str]
) -> dict[int, HealthTrustEntry]:
    """The ``[[helseforetak]]`` entries; their HER-ids and orgnrs may not be any KE's (nor
    each other's)."""
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DirectoryError(f"{path}: health trusts must be [[helseforetak]] tables")
    trusts: dict[int, HealthTrustEntry] = {}
    for i, item in enumerate(items):
        _known_keys(path, f"helseforetak entry #{i + 1}", item, _TRUST_KEYS)
        settings = item.get("settings", {})
        active = item.get("active", True)
        if not isinstance(settings, dict) or not isinstance(active, bool):
            raise DirectoryError(
                f"{path}: helseforetak entry #{i + 1}: [helseforetak.settings] must be a "
                "table and active true or false"
            )
        try:
            unit = HealthTrust(
                name=item.get("name", ""),
                her_id=item.get("her_id", 0),
                adapter=item.get("adapter", ""),
                orgnr=item.get("orgnr"),
            )
        except ValidationError as e:
            raise _invalid(path, f"helseforetak entry #{i + 1}", e) from None
        if unit.adapter == "ke_inbox":
            raise DirectoryError(
                f"{path}: helseforetak entry #{i + 1}: ke_inbox is a kommune's inbox; a health "
                "trust needs a platform adapter"
            )
        if unit.her_id in her_ids:
            raise DirectoryError(
                f"{path}: HER-id {unit.her_id} is used by both {her_ids[unit.her_id]} "
                f"and {unit.name}: a message could reach the wrong unit"
            )
        if unit.orgnr is not None and unit.orgnr in orgnrs:
            raise DirectoryError(f"{path}: orgnr {unit.orgnr} is listed twice")
        her_ids[unit.her_id] = unit.name
        if unit.orgnr is not None:
            orgnrs.add(unit.orgnr)
        trusts[unit.her_id] = HealthTrustEntry(unit, dict(settings), active)
    return trusts
