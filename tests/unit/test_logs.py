"""The log format (gateway/logs.py): one JSON object per line with the message and correlation
ids from the context, and nothing of them outside it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gateway.logs import CORRELATION_ID, _Context, about_message, configure


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    configure("INFO")
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:] = saved
    root.setLevel(level)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_about_a_message_carries_its_id_as_the_correlation_id(
    lines: io.StringIO,
) -> None:
    log = logging.getLogger("gateway.test")
    with about_message("m-1"):
        log.info("delivered to %s", "1506")
    log.info("outside")
    inside, outside = records(lines)
    assert inside["message"] == "delivered to 1506"
    assert (inside["message_id"], inside["correlation_id"]) == ("m-1", "m-1")
    assert (inside["level"], inside["logger"]) == ("INFO", "gateway.test")
    assert "time" in inside
    assert (outside["message_id"], outside["correlation_id"]) == (None, None)


def test_a_requests_correlation_id_wins_over_the_message_id(lines: io.StringIO) -> None:
    token = CORRELATION_ID.set("req-7")
    try:
        with about_message("m-2"):
            logging.getLogger("gateway.test").warning("x")
    finally:
        CORRELATION_ID.reset(token)
    [line] = records(lines)
    assert (line["message_id"], line["correlation_id"]) == ("m-2", "req-7")


def test_the_filter_keeps_ids_given_on_the_record() -> None:
    record = logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None)
    record.message_id = "given"
    with about_message("context"):
        assert _Context().filter(record)
    assert record.message_id == "given"
    assert record.correlation_id == "context"
