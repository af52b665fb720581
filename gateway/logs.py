"""Logging set-up. Log lines carry message ids and codes, never person ids, names or text.

In production every line is one JSON object (python-json-logger) with the fields a log
pipeline indexes: ``time``, ``level``, ``logger``, ``message``, ``message_id`` and
``correlation_id``. The two ids come from context variables, set where a message is worked on
(:func:`about_message`) and for each HTTP request (the ``X-Correlation-Id`` header, or a new
id); a line outside both has them null. A message's correlation id is its own id, which is also
the ``correlation-id`` header of its broker records, so one id follows it through every stage.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from pythonjsonlogger.json import JsonFormatter

MESSAGE_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("message_id", default=None)
CORRELATION_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)


@contextmanager
def about_message(message_id: str) -> Iterator[None]:
    """Lines logged inside are about this message (its id is also its correlation id, unless
    the HTTP request it came with named one)."""
    m = MESSAGE_ID.set(message_id)
    c = CORRELATION_ID.set(CORRELATION_ID.get() or message_id)
    try:
        yield
    finally:
        CORRELATION_ID.reset(c)
        MESSAGE_ID.reset(m)


class _Context(logging.Filter):
    """Puts the context's message and correlation ids on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "message_id", None) is None:
            record.message_id = MESSAGE_ID.get()
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = CORRELATION_ID.get()
        return True


class _NoQueryStrings(logging.Filter):
    """Access-log lines without query strings: a search names a person there
    (``GET /fhir/Consent?patient=...``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def configure(level: str = "INFO", *, json: bool = True) -> None:
    """``json``: one JSON object per line (the default); else readable text (the demo)."""
    handler = logging.StreamHandler()
    handler.addFilter(_Context())
    if json:
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}{message_id}{correlation_id}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("uvicorn.access").addFilter(_NoQueryStrings())
    # aiokafka reports every reconnect of the memory-only dev broker at WARNING/ERROR
    logging.getLogger("aiokafka").setLevel(max(logging.getLevelName(level.upper()), logging.ERROR))
