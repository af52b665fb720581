"""The message status machine (gateway/domain/status.py) against DESIGN.md "Message flow".

DESIGN.md gives the main line RECEIVED -> VALIDATED -> ROUTED -> DELIVERED -> ACKNOWLEDGED and
the side states in prose. The table below spells that prose out edge by edge; it is written
here, not read from the module, so a change to the module's table fails this test.

One side state is the project's own (issue 3, README "Statuses"): HELD_ROUTING, where an old
kommunenummer that a split made ambiguous waits for an operator to name the kommune.
"""

from __future__ import annotations

import itertools
from collections import deque

import pytest

from gateway.domain.status import (
    IN_FLIGHT,
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    MessageStatus,
    check_transition,
)

S = MessageStatus

ALL_STATUSES = {
    "RECEIVED",
    "VALIDATED",
    "HELD_CONSENT",
    "HELD_ROUTING",
    "ROUTED",
    "RETRYING",
    "DELIVERED",
    "ACKNOWLEDGED",
    "REJECTED",
    "DEAD",
}

ALLOWED: dict[str, set[str]] = {
    # validate: passes, or fails with a reason a person can act on
    "RECEIVED": {"VALIDATED", "REJECTED"},
    # consent check: held for consent, or routed; routing itself may refuse (E21, E36)
    # issue 4: no KE for the kommune (unknown or inactive) -> DEAD with E21, retryable
    "VALIDATED": {"ROUTED", "HELD_CONSENT", "HELD_ROUTING", "REJECTED", "DEAD"},
    # "waits for consent, released or rejected by rule"; released, routing may still hold it
    "HELD_CONSENT": {"ROUTED", "HELD_ROUTING", "REJECTED", "DEAD"},
    # the operator names the kommune (routed, or DEAD with E21 when it has no active KE), or
    # gives the message up
    "HELD_ROUTING": {"ROUTED", "REJECTED", "DEAD"},
    # delivery worker: delivered, retried with backoff, DLQ, or refused outright
    "ROUTED": {"DELIVERED", "RETRYING", "DEAD", "REJECTED"},
    # "failure after retries -> ipgw.retry.<tier> -> ... -> ipgw.dlq"
    "RETRYING": {"DELIVERED", "DEAD", "REJECTED"},
    # the recipient acknowledges (AppRec OK) or rejects (AppRec status 2); no answer in time
    # is resent and finally dead-lettered
    "DELIVERED": {"ACKNOWLEDGED", "REJECTED", "RETRYING", "DEAD"},
    "ACKNOWLEDGED": set(),
    # "terminal REJECTED (with a reason a person can act on)"
    "REJECTED": set(),
    # "DEAD (in the DLQ, operator can retry)": the operator re-drives it or gives it up
    # a retry decides consent and routing again: it may be held again
    # issue 5: an acknowledgement after the gateway gave up still stands
    "DEAD": {"ROUTED", "HELD_CONSENT", "HELD_ROUTING", "REJECTED", "ACKNOWLEDGED"},
}

ALL_PAIRS = list(itertools.product(sorted(ALL_STATUSES), repeat=2))
ALLOWED_PAIRS = [(a, b) for a, b in ALL_PAIRS if b in ALLOWED[a]]
FORBIDDEN_PAIRS = [(a, b) for a, b in ALL_PAIRS if b not in ALLOWED[a]]


def test_the_statuses_are_exactly_those_of_the_design() -> None:
    assert {s.value for s in MessageStatus} == ALL_STATUSES
    assert set(TRANSITIONS) == set(MessageStatus)


def test_pair_lists_cover_every_pair_once() -> None:
    assert len(ALL_PAIRS) == 100
    assert len(ALLOWED_PAIRS) + len(FORBIDDEN_PAIRS) == 100
    assert len(ALLOWED_PAIRS) == 30


def test_module_table_equals_the_design_table() -> None:
    actual = {s.value: {t.value for t in nxt} for s, nxt in TRANSITIONS.items()}
    assert actual == ALLOWED


@pytest.mark.parametrize(("current", "new"), ALLOWED_PAIRS)
def test_allowed_transition_passes(current: str, new: str) -> None:
    check_transition(S(current), S(new))  # raises on failure
    assert S(new) in TRANSITIONS[S(current)]


@pytest.mark.parametrize(("current", "new"), FORBIDDEN_PAIRS)
def test_forbidden_transition_raises(current: str, new: str) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(S(current), S(new))
    assert info.value.current is S(current)
    assert info.value.new is S(new)
    assert current in str(info.value)
    assert new in str(info.value)


@pytest.mark.parametrize("status", sorted(ALL_STATUSES))
def test_no_status_transitions_to_itself(status: str) -> None:
    """Acknowledged twice, delivered twice: an impossible history is refused."""
    with pytest.raises(IllegalTransition):
        check_transition(S(status), S(status))


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("RECEIVED", "DELIVERED"),  # delivered before routed
        ("VALIDATED", "DELIVERED"),
        ("RECEIVED", "ROUTED"),  # routed before validated
        ("HELD_CONSENT", "DELIVERED"),  # released without routing
        ("ACKNOWLEDGED", "ACKNOWLEDGED"),
        ("ACKNOWLEDGED", "REJECTED"),
        ("REJECTED", "ROUTED"),
        ("ROUTED", "ACKNOWLEDGED"),  # acknowledged before delivered
    ],
)
def test_named_impossible_histories_are_refused(current: str, new: str) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(S(current), S(new))


def test_terminal_states_have_no_exits() -> None:
    assert {s.value for s in TERMINAL} == {"ACKNOWLEDGED", "REJECTED"}
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
        for new in MessageStatus:
            with pytest.raises(IllegalTransition):
                check_transition(state, new)


def test_non_terminal_states_have_an_exit() -> None:
    for state in set(MessageStatus) - TERMINAL:
        assert TRANSITIONS[state], state


def reachable_from(start: MessageStatus) -> set[MessageStatus]:
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in TRANSITIONS[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def test_every_status_is_reachable_from_received() -> None:
    assert reachable_from(S.RECEIVED) == set(MessageStatus)


def test_acknowledged_is_reachable_along_the_main_line() -> None:
    path = [S.RECEIVED, S.VALIDATED, S.ROUTED, S.DELIVERED, S.ACKNOWLEDGED]
    for current, new in itertools.pairwise(path):
        check_transition(current, new)
    assert S.ACKNOWLEDGED in reachable_from(S.RECEIVED)


def test_acknowledged_is_reachable_after_consent_hold_and_retries() -> None:
    path = [
        S.RECEIVED,
        S.VALIDATED,
        S.HELD_CONSENT,
        S.ROUTED,
        S.RETRYING,
        S.DEAD,
        S.ROUTED,
        S.DELIVERED,
        S.ACKNOWLEDGED,
    ]
    for current, new in itertools.pairwise(path):
        check_transition(current, new)


@pytest.mark.parametrize("status", sorted(ALL_STATUSES))
def test_every_status_can_still_end(status: str) -> None:
    """No state (or cycle) is a trap: a terminal state is always reachable."""
    assert reachable_from(S(status)) & TERMINAL


def test_in_flight_statuses_are_non_terminal() -> None:
    assert IN_FLIGHT
    assert not (IN_FLIGHT & TERMINAL)
    for state in IN_FLIGHT:
        assert TRANSITIONS[state], state
    assert S.RECEIVED in IN_FLIGHT
    assert S.ACKNOWLEDGED not in IN_FLIGHT
    assert S.REJECTED not in IN_FLIGHT
