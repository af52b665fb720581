"""Prometheus metrics (``GET /metrics``): what the dashboards and alert rules in deploy/ read.

Labels name stages, statuses, kinds, adapters, kommune numbers and units' HER-ids (the
addresses of organisations), never a person. Two sorts:

- **counters and histograms** counted where things happen: status changes (in
  ``repo.set_status``, inside the transaction: a change rolled back afterwards is still
  counted, which happens only when a message's own savepoint fails), delivery tries and their
  duration, the time from receipt to each outcome;
- **gauges** read at each scrape from the store and the broker: messages per status, open
  inbox depth and the oldest unacknowledged message per recipient, outbox depth and age,
  consumer lag per stage and retry tier.

The registry is the module's own (not prometheus-client's global one), so several gateways in
one test process count into one place without clashing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()

#: seconds from a message's receipt to an outcome: from sub-second to the retry tiers' hours
_OUTCOME_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400)

STATUS_CHANGES = Counter(
    "ipgw_status_changes",
    "Messages moved to a status, by the stage that moved them and the message kind",
    ["stage", "status", "kind"],
    registry=REGISTRY,
)
TIME_TO_OUTCOME = Histogram(
    "ipgw_time_to_outcome_seconds",
    "Seconds from receipt to DELIVERED, ACKNOWLEDGED, REJECTED or DEAD, by recipient kommune",
    ["status", "kind", "kommune"],
    buckets=_OUTCOME_BUCKETS,
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "ipgw_deliveries",
    "Delivery tries, by adapter, outcome (delivered, failed) and cause of a failure",
    ["adapter", "outcome", "cause", "kommune"],
    registry=REGISTRY,
)
DELIVERY_SECONDS = Histogram(
    "ipgw_delivery_duration_seconds",
    "Seconds one delivery try took (quick retries in process included)",
    ["adapter"],
    registry=REGISTRY,
)
MESSAGES = Gauge(
    "ipgw_messages",
    "Messages in the store now, by status and kind",
    ["status", "kind"],
    registry=REGISTRY,
)
INBOX_DEPTH = Gauge(
    "ipgw_inbox_depth",
    "Messages waiting in a kommune's pull inbox",
    ["kommune"],
    registry=REGISTRY,
)
OLDEST_UNACKNOWLEDGED = Gauge(
    "ipgw_oldest_unacknowledged_seconds",
    "Age of the oldest delivered, not yet acknowledged message per recipient (a kommune "
    "number, or her:<HER-id> for a unit without one)",
    ["recipient"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "ipgw_outbox_depth", "Outbox rows not yet published to the broker", registry=REGISTRY
)
OUTBOX_AGE = Gauge(
    "ipgw_outbox_oldest_seconds",
    "Age of the oldest unpublished outbox row (0 when empty): the outbox lag",
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "ipgw_consumer_lag",
    "Records on a topic not yet committed by its consumer (for a retry tier: its depth)",
    ["consumer"],
    registry=REGISTRY,
)
BROKER_UP = Gauge(
    "ipgw_broker_up", "1 when the broker answered the last scrape, else 0", registry=REGISTRY
)

_OUTCOMES = frozenset({"DELIVERED", "ACKNOWLEDGED", "REJECTED", "DEAD"})


def status_changed(
    stage: str,
    status: str,
    kind: str,
    *,
    received_at: dt.datetime,
    at: dt.datetime,
    kommune: str | None,
) -> None:
    STATUS_CHANGES.labels(stage, status, kind).inc()
    if status in _OUTCOMES:
        seconds = max((at - received_at).total_seconds(), 0.0)
        TIME_TO_OUTCOME.labels(status, kind, kommune or "-").observe(seconds)


def delivery_tried(
    adapter: str, *, delivered: bool, cause: str | None, kommune: str | None, seconds: float
) -> None:
    outcome = "delivered" if delivered else "failed"
    DELIVERIES.labels(adapter, outcome, cause or "-", kommune or "-").inc()
    DELIVERY_SECONDS.labels(adapter).observe(seconds)


@dataclass(frozen=True)
class Snapshot:
    """What the gauges show, read from the store (and the broker) for one scrape."""

    messages: Mapping[tuple[str, str], int] = field(default_factory=dict)
    inbox_depth: Mapping[str, int] = field(default_factory=dict)
    oldest_unacknowledged: Mapping[str, float] = field(default_factory=dict)
    outbox_depth: int = 0
    outbox_age: float = 0.0
    consumer_lag: Mapping[str, int] = field(default_factory=dict)
    broker_up: bool = True


def _set(gauge: Gauge, values: Iterable[tuple[tuple[str, ...] | str, float]]) -> None:
    # labels that no longer occur (an inbox emptied) must go, not show their last value
    gauge.clear()
    for labels, value in values:
        gauge.labels(*((labels,) if isinstance(labels, str) else labels)).set(value)


def render(snapshot: Snapshot) -> bytes:
    """The exposition text, with the gauges set from ``snapshot``."""
    _set(MESSAGES, snapshot.messages.items())
    _set(INBOX_DEPTH, snapshot.inbox_depth.items())
    _set(OLDEST_UNACKNOWLEDGED, snapshot.oldest_unacknowledged.items())
    OUTBOX_DEPTH.set(snapshot.outbox_depth)
    OUTBOX_AGE.set(snapshot.outbox_age)
    _set(CONSUMER_LAG, snapshot.consumer_lag.items())
    BROKER_UP.set(1 if snapshot.broker_up else 0)
    return generate_latest(REGISTRY)
