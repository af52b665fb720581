"""GET /metrics over the real broker and store (issue 7, observability): the gauges follow the
store, the counters count what happened, the broker's consumer lag is there, and no label or
value names a person."""

from __future__ import annotations

import random

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.demo.samples import make_notice
from mappings.fhir.notice import notice_to_bundle
from tests.integration.test_pipeline import post, wait_status

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> tuple[str, Samples]:
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return r.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def matching(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


async def test_metrics_follow_a_notice_from_receipt_to_acknowledgement(
    client: httpx.AsyncClient,
) -> None:
    _, before = await scrape(client)
    notice = make_notice(random.Random(121), "1506")
    r = await post(client, orjson.dumps(notice_to_bundle(notice)))
    message_id = r.json()["id"]
    await wait_status(client, message_id, {"DELIVERED"})

    text, during = await scrape(client)
    assert value(during, "ipgw_messages", status="DELIVERED", kind="need-notice") == 1
    assert value(during, "ipgw_inbox_depth", kommune="1506") == 1
    assert value(during, "ipgw_oldest_unacknowledged_seconds", recipient="1506") >= 0
    assert ("ipgw_oldest_unacknowledged_seconds", frozenset({("recipient", "1506")})) in during
    delivered = {"adapter": "ke_inbox", "outcome": "delivered", "cause": "-", "kommune": "1506"}
    assert (
        value(during, "ipgw_deliveries_total", **delivered)
        - value(before, "ipgw_deliveries_total", **delivered)
        == 1
    )
    routed = {"stage": "route", "status": "ROUTED", "kind": "need-notice"}
    assert value(during, "ipgw_status_changes_total", **routed) > value(
        before, "ipgw_status_changes_total", **routed
    )
    assert value(during, "ipgw_broker_up") == 1
    lags = {dict(labels)["consumer"] for labels in matching(during, "ipgw_consumer_lag")}
    assert {"pipeline", "deliver"} <= lags
    assert value(during, "ipgw_outbox_depth") >= 0

    # no person in any label or value
    assert notice.patient.person_id not in text
    assert notice.patient.name.family not in text

    assert (await client.post(f"/ke/1506/inbox/{message_id}/ack")).status_code == 200
    await wait_status(client, message_id, {"ACKNOWLEDGED"})
    _, after = await scrape(client)
    # the emptied inbox is gone from the gauges, not left at its last value
    assert ("ipgw_inbox_depth", frozenset({("kommune", "1506")})) not in after
    assert value(after, "ipgw_messages", status="ACKNOWLEDGED", kind="need-notice") == 1
    acked = {"status": "ACKNOWLEDGED", "kind": "need-notice", "kommune": "1506"}
    assert (
        value(after, "ipgw_time_to_outcome_seconds_count", **acked)
        - value(before, "ipgw_time_to_outcome_seconds_count", **acked)
        == 1
    )


async def test_each_response_names_its_correlation_id(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Correlation-Id": "ops-42.a"})
    assert given.headers["x-correlation-id"] == "ops-42.a"
    # anything but a plain token is not echoed: a new id instead
    odd = await client.get("/healthz", headers={"X-Correlation-Id": "<b>Kari Nordmann</b>"})
    assert odd.headers["x-correlation-id"] != "<b>Kari Nordmann</b>"
    assert len(odd.headers["x-correlation-id"]) == 36
    fresh = await client.get("/healthz")
    assert fresh.headers["x-correlation-id"] != odd.headers["x-correlation-id"]
