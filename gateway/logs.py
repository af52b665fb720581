"""Logging set-up. Log lines carry message ids and codes, never person ids, names or text."""

from __future__ import annotations

import logging


def configure(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiokafka reports every reconnect of the memory-only dev broker at WARNING/ERROR
    logging.getLogger("aiokafka").setLevel(max(logging.getLevelName(level.upper()), logging.ERROR))
