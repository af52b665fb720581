"""The delivery policy: the one retry table, HTTP statuses, tiers; and the stage command."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.delivery import DeliveryFailed
from gateway.delivery_policy import RETRY, Cause, Policy, http_cause, retryable, tier_name
from gateway.transport import Command, Topics

#: what the issue asks: timeouts, 5xx and connection errors retry; 4xx and a rejecting
#: AppRec do not
EXPECTED = {
    Cause.TIMEOUT: True,
    Cause.CONNECTION: True,
    Cause.SERVER_ERROR: True,
    Cause.RECIPIENT_BUSY: True,
    Cause.CIRCUIT_OPEN: True,
    Cause.UNREADABLE_ANSWER: True,
    Cause.ADAPTER_ERROR: True,
    Cause.CLIENT_ERROR: False,
    Cause.NOT_AUTHORISED: False,
    Cause.REFUSED: False,
    Cause.MISCONFIGURED: False,
}


def test_the_table_covers_every_cause_as_the_issue_asks() -> None:
    assert RETRY == EXPECTED
    for cause, expected in EXPECTED.items():
        assert DeliveryFailed(cause, "x").retryable is expected


@pytest.mark.parametrize(
    ("status", "cause"),
    [
        (200, None),
        (202, None),
        (302, None),
        (400, Cause.CLIENT_ERROR),
        (404, Cause.CLIENT_ERROR),
        (409, Cause.CLIENT_ERROR),
        (422, Cause.CLIENT_ERROR),
        (401, Cause.NOT_AUTHORISED),
        (403, Cause.NOT_AUTHORISED),
        (408, Cause.SERVER_ERROR),
        (425, Cause.SERVER_ERROR),
        (429, Cause.SERVER_ERROR),
        (500, Cause.SERVER_ERROR),
        (502, Cause.SERVER_ERROR),
        (503, Cause.SERVER_ERROR),
        (504, Cause.SERVER_ERROR),
    ],
)
def test_http_statuses(status: int, cause: Cause | None) -> None:
    assert http_cause(status) is cause


@given(st.integers(min_value=500, max_value=599))
def test_every_5xx_retries(status: int) -> None:
    cause = http_cause(status)
    assert cause is not None
    assert retryable(cause)


@given(st.integers(min_value=400, max_value=499).filter(lambda s: s not in (408, 425, 429)))
def test_other_4xx_do_not_retry(status: int) -> None:
    cause = http_cause(status)
    assert cause is not None
    assert not retryable(cause)


def test_tiers_in_order_then_give_up() -> None:
    policy = Policy(tiers=(60.0, 600.0, 3600.0))
    now = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
    assert policy.next_delay(0) is None
    assert [policy.next_delay(n) for n in (1, 2, 3)] == [60.0, 600.0, 3600.0]
    assert policy.next_delay(4) is None
    assert policy.due(2, now) == now + dt.timedelta(minutes=10)
    assert policy.due(4, now) is None


@pytest.mark.parametrize(
    ("seconds", "name"),
    [(60, "1m"), (600, "10m"), (3600, "1h"), (7200, "2h"), (90, "90s"), (5, "5s"), (0.5, "500ms")],
)
def test_tier_names(seconds: float, name: str) -> None:
    assert tier_name(seconds) == name


def test_retry_topics_follow_the_tiers() -> None:
    topics = Topics.named("ipgw", [60, 600, 3600])
    assert topics.retry == ("ipgw.retry.1m", "ipgw.retry.10m", "ipgw.retry.1h")
    assert set(topics.retry) <= set(topics.all())


@given(
    st.uuids().map(str),
    st.integers(min_value=0, max_value=2**31 - 1),
    st.integers(min_value=0, max_value=2**31 - 1),
    st.none() | st.floats(min_value=0, max_value=4e9, allow_nan=False),
)
def test_commands_round_trip(
    message_id: str, generation: int, attempt: int, due: float | None
) -> None:
    command = Command(message_id, generation, attempt, due)
    assert Command.decode(command.encode()) == command


def test_each_try_has_its_own_dedupe_key_and_the_first_keeps_the_old_one() -> None:
    assert Command("m", 2).ref == "m:2"
    assert Command("m", 2, 0).ref == Command("m", 2).ref
    refs = {Command("m", 2, a).ref for a in range(5)}
    assert len(refs) == 5
    assert Command.decode(b'{"id": "m", "generation": 1}') == Command("m", 1, 0, None)
