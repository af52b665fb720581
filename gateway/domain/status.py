"""The message status machine of DESIGN.md.

Every status change in the gateway goes through :func:`check_transition`, so an impossible
history (delivered before routed, acknowledged twice) is refused where it would be written.
"""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    RECEIVED = "RECEIVED"
    VALIDATED = "VALIDATED"
    HELD_CONSENT = "HELD_CONSENT"
    #: the recipient needs an operator's choice (an old kommunenummer a split made ambiguous)
    HELD_ROUTING = "HELD_ROUTING"
    ROUTED = "ROUTED"
    RETRYING = "RETRYING"
    DELIVERED = "DELIVERED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    REJECTED = "REJECTED"
    DEAD = "DEAD"


class Stage(StrEnum):
    """Where in the flow an event happened; the operator's timeline groups by it."""

    INGEST = "ingest"
    VALIDATE = "validate"
    CONSENT = "consent"
    ROUTE = "route"
    DELIVER = "deliver"
    ACKNOWLEDGE = "acknowledge"
    RECEIPT = "receipt"
    RECOVERY = "recovery"
    OPERATOR = "operator"


S = MessageStatus

TRANSITIONS: dict[MessageStatus, frozenset[MessageStatus]] = {
    S.RECEIVED: frozenset({S.VALIDATED, S.REJECTED}),
    # No KE for the kommune (unknown or inactive in the directory): DEAD, retryable once the
    # directory is fixed.
    S.VALIDATED: frozenset({S.ROUTED, S.HELD_CONSENT, S.HELD_ROUTING, S.REJECTED, S.DEAD}),
    # Released when consent arrives (then routed), rejected when the hold period ends.
    S.HELD_CONSENT: frozenset({S.ROUTED, S.HELD_ROUTING, S.REJECTED, S.DEAD}),
    # The operator names the kommune (then routed, or DEAD when it has no active KE) or gives
    # the message up (rejected).
    S.HELD_ROUTING: frozenset({S.ROUTED, S.REJECTED, S.DEAD}),
    S.ROUTED: frozenset({S.DELIVERED, S.RETRYING, S.DEAD, S.REJECTED}),
    # Another failed try stays RETRYING (the next tier: recorded, not a transition); after
    # the last tier, DEAD.
    S.RETRYING: frozenset({S.DELIVERED, S.DEAD, S.REJECTED}),
    # A rejecting AppRec from the recipient ends in REJECTED; no acknowledgement in time is
    # resent (RETRYING) and finally DEAD.
    S.DELIVERED: frozenset({S.ACKNOWLEDGED, S.REJECTED, S.RETRYING, S.DEAD}),
    S.ACKNOWLEDGED: frozenset(),
    S.REJECTED: frozenset(),
    # The operator retries a dead message or gives it up (REJECTED); a retry decides consent
    # and routing anew, so it may be held again. An acknowledgement that comes after the
    # gateway gave up still stands (ACKNOWLEDGED, or REJECTED by the recipient).
    S.DEAD: frozenset({S.ROUTED, S.HELD_CONSENT, S.HELD_ROUTING, S.REJECTED, S.ACKNOWLEDGED}),
}

TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
#: Statuses whose message still has work to do inside the gateway (recovery re-drives them).
IN_FLIGHT = frozenset({S.RECEIVED, S.VALIDATED, S.ROUTED, S.RETRYING})


class IllegalTransition(Exception):
    def __init__(self, current: MessageStatus, new: MessageStatus) -> None:
        super().__init__(f"illegal status transition {current} -> {new}")
        self.current = current
        self.new = new


def check_transition(current: MessageStatus, new: MessageStatus) -> None:
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(current, new)
