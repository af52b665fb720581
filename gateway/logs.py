"""Logging set-up. Log lines carry message ids and codes, never person ids, names or text."""

from __future__ import annotations

import logging


class _NoQueryStrings(logging.Filter):
    """Access-log lines without query strings: a search names a person there
    (``GET /fhir/Consent?patient=...``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def configure(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("uvicorn.access").addFilter(_NoQueryStrings())
    # aiokafka reports every reconnect of the memory-only dev broker at WARNING/ERROR
    logging.getLogger("aiokafka").setLevel(max(logging.getLevelName(level.upper()), logging.ERROR))
