"""The delivery policy: which failures are tried again, and how often and how long.

One table (:data:`RETRY`) decides retry or not for every failure an adapter can report, so
the rule an operator reads in the README is the rule the code follows. Pure: no I/O.

The way of a failing message: a few quick tries in process (tenacity, exponential backoff
with jitter), then one delayed retry topic per tier (e.g. 1 min, 10 min, 1 h), then DEAD and
the dead-letter topic, where an operator can retry it. A failure the recipient meant (a 4xx,
a rejecting AppRec, a fatal OperationOutcome) is not retried: the sender is told, with its code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Cause(StrEnum):
    """What went wrong with one try, as an adapter saw it."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    #: HTTP 5xx, or 408 / 425 / 429 (the server asks to come back later)
    SERVER_ERROR = "server-error"
    #: the recipient says "not now" in its own terms (OperationOutcome transient/throttled)
    RECIPIENT_BUSY = "recipient-busy"
    #: the endpoint is failing over and over: its circuit is open, no call was made
    CIRCUIT_OPEN = "circuit-open"
    #: the answer could not be read (not the protocol we speak): nobody knows if it arrived
    UNREADABLE_ANSWER = "unreadable-answer"
    #: the adapter itself failed unexpectedly (a bug): bounded retries, then DEAD
    ADAPTER_ERROR = "adapter-error"
    #: HTTP 4xx other than the ones above: our request is wrong for this recipient
    CLIENT_ERROR = "client-error"
    #: 401/403 even with a fresh token: the gateway is not allowed in (a configuration fault)
    NOT_AUTHORISED = "not-authorised"
    #: the recipient refused the content (rejecting AppRec, fatal OperationOutcome)
    REFUSED = "refused"
    #: the adapter's settings for this KE are missing or wrong
    MISCONFIGURED = "misconfigured"


#: The one table: does another try of the same message have a chance?
RETRY: dict[Cause, bool] = {
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

#: HTTP statuses that ask the client to come back later
_COME_BACK = frozenset({408, 425, 429})


def retryable(cause: Cause) -> bool:
    return RETRY[cause]


def http_cause(status: int) -> Cause | None:
    """The cause an HTTP status stands for; None for success."""
    if status < 400:
        return None
    if status >= 500 or status in _COME_BACK:
        return Cause.SERVER_ERROR
    if status in (401, 403):
        return Cause.NOT_AUTHORISED
    return Cause.CLIENT_ERROR


@dataclass(frozen=True)
class Policy:
    #: quick tries in process before a message goes to the first delay tier
    quick_tries: int = 3
    #: the longest pause between quick tries (seconds; exponential with jitter up to this)
    quick_max_wait: float = 2.0
    #: the delay of each retry tier, in order; after the last, DEAD
    tiers: Sequence[float] = (60.0, 600.0, 3600.0)
    #: delivered but not acknowledged after this long: resent with the same id
    ack_timeout: float = 3600.0
    #: how many times an unacknowledged message is resent before it is DEAD
    ack_resends: int = 3

    def next_delay(self, failures: int) -> float | None:
        """The wait before the next try after ``failures`` failed tries; None: give up."""
        if failures < 1 or failures > len(self.tiers):
            return None
        return self.tiers[failures - 1]

    def due(self, failures: int, now: dt.datetime) -> dt.datetime | None:
        delay = self.next_delay(failures)
        return None if delay is None else now + dt.timedelta(seconds=delay)


def tier_name(seconds: float) -> str:
    """A retry topic's suffix for its delay: ``60s`` -> ``1m``, ``3600`` -> ``1h``."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{int(seconds * 1000)}ms"
