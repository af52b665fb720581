"""The directory follows its file: edited on disk, in force within seconds, no restart.

A file that does not load (a duplicate kommune or HER-id, an adapter that does not exist, a
TOML error) leaves the directory in force as it was, and says why in the log and in the
answer to ``POST /ops/directory/reload``: a half-edited file never routes a message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from gateway.delivery import UnknownAdapter
from gateway.directory import DirectoryError, load_directory
from gateway.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reloaded:
    changed: bool
    kommuner: int
    error: str | None = None


def reload(rt: Runtime) -> Reloaded:
    """Load the directory file again; replace the one in force only when it loads whole."""
    path = rt.settings.directory_file
    try:
        directory = load_directory(path)
        rt.adapters.check(directory.adapter_names())
    except (DirectoryError, UnknownAdapter) as e:
        log.error("directory: %s is not taken: %s", path, e)
        return Reloaded(False, len(rt.directory.entries), str(e))
    changed = directory != rt.directory
    if changed:
        rt.directory = directory
        log.info("directory: reloaded %s (%d kommuner)", path, len(directory.entries))
    return Reloaded(changed, len(directory.entries))


async def watch(rt: Runtime, *, interval: float) -> None:
    """Reload whenever the file's modification time changes, until cancelled."""
    path = rt.settings.directory_file
    seen = _mtime(path)
    while True:
        await asyncio.sleep(interval)
        now = _mtime(path)
        if now != seen:
            seen = now
            reload(rt)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
