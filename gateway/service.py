"""The gateway service: starts its parts in order and stops them in reverse."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer

from gateway import broker_watch, directory_watch
from gateway.broker import EmbeddedBroker
from gateway.config import Settings
from gateway.pipeline import ack_tracking, consents, process, recovery
from gateway.pipeline.deliver import Deliverer
from gateway.runtime import Runtime, build_runtime
from gateway.transport import (
    OutboxRelay,
    RetryTier,
    StageConsumer,
    TopicConsumer,
    ensure_topics,
    make_producer,
)

log = logging.getLogger(__name__)


@dataclass
class Gateway:
    """Starts broker (if embedded), store, topics, relay, stage consumers and recovery."""

    settings: Settings
    runtime: Runtime | None = None
    broker: EmbeddedBroker | None = None
    producer: AIOKafkaProducer | None = None
    consumers: list[TopicConsumer] = field(default_factory=list)
    deliverer: Deliverer | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> Runtime:
        s = self.settings
        rt = self.runtime = build_runtime(s)
        if rt.directory.fictitious_her_ids:
            log.warning("the directory's HER-ids are fictitious: not for real traffic")
        await rt.db.migrate()

        bootstrap = s.kafka_bootstrap
        if not bootstrap:
            s.data_dir.mkdir(parents=True, exist_ok=True)
            self.broker = EmbeddedBroker(log_file=s.data_dir / "broker.log")
            bootstrap = await self.broker.start()
        await ensure_topics(s, bootstrap, rt.topics)

        self.producer = make_producer(bootstrap)
        await self.producer.start()
        rt.relay = OutboxRelay(rt.db, self.producer)
        group = f"{s.topic_prefix}-gateway"
        deliverer = self.deliverer = Deliverer(rt)
        self.consumers = [
            StageConsumer(
                "pipeline", rt.topics.ingress, process.handler(rt), s, bootstrap, group=group
            ),
            StageConsumer(
                "deliver", rt.topics.deliver, deliverer.handle, s, bootstrap, group=group
            ),
            *(
                RetryTier(topic, deliverer.handle, s, bootstrap, group=group)
                for topic in rt.topics.retry
            ),
        ]
        for c in self.consumers:
            await c.start()
        producer = self.producer

        async def broker_check() -> bool:
            await producer.client.fetch_all_metadata()
            return True

        rt.broker_check = broker_check
        consumers = self.consumers

        async def consumer_lags() -> dict[str, int]:
            lags = {}
            for c in consumers:
                assigned = list(c.consumer.assignment())
                ends = await c.consumer.end_offsets(assigned) if assigned else {}
                lag = 0
                for tp in assigned:
                    committed = await c.consumer.committed(tp)
                    lag += max(ends.get(tp, 0) - (committed or 0), 0)
                lags[c.name] = lag
            return lags

        rt.consumer_lags = consumer_lags

        self.tasks = [
            asyncio.create_task(rt.relay.run(), name="outbox-relay"),
            *(asyncio.create_task(c.run(), name=f"consumer-{c.name}") for c in self.consumers),
            asyncio.create_task(
                recovery.run(
                    rt, interval=s.recovery_interval_seconds, stale_after=s.stale_after_seconds
                ),
                name="recovery",
            ),
            asyncio.create_task(
                consents.run(rt, interval=s.consent_check_interval_seconds), name="consent-holds"
            ),
            asyncio.create_task(
                directory_watch.watch(rt, interval=s.directory_reload_seconds), name="directory"
            ),
            asyncio.create_task(
                ack_tracking.run(rt, interval=s.ack_check_interval_seconds), name="ack-tracking"
            ),
            asyncio.create_task(
                broker_watch.watch(rt, s, bootstrap, self.consumers), name="broker-watch"
            ),
        ]
        log.info("gateway started (broker %s, store %s)", bootstrap, rt.db.url.get_backend_name())
        return rt

    async def stop(self) -> None:
        """Stop the tasks, then the broker clients, then the store. Every step is bounded and
        a slow one is logged by name: a stop that hangs says where."""
        for t in self.tasks:
            t.cancel()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=5)
            for t in pending:
                log.warning("stop: task %s did not end within 5 s; going on", t.get_name())
        self.tasks = []
        if self.deliverer:
            await _bounded(self.deliverer.aclose(), "deliveries under way", 10)
        # leaving the consumer groups and flushing the producer talk to the broker: bounded,
        # so a broker that does not answer cannot hold the stop (the store keeps the state)
        await asyncio.gather(*(_bounded(c.stop(), f"consumer {c.name}") for c in self.consumers))
        if self.producer:
            await _bounded(self.producer.stop(), "producer")
        if self.broker:
            self.broker.stop()
        if self.runtime:
            await _bounded(self.runtime.adapters.aclose(), "adapters")
            self.runtime.broker_check = None
            self.runtime.consumer_lags = None
            await _bounded(self.runtime.db.close(), "store", 10)
        log.info("gateway stopped")


async def _bounded(step: Coroutine[Any, Any, Any], what: str, seconds: float = 5.0) -> None:
    started = time.monotonic()
    try:
        await asyncio.wait_for(step, seconds)
        took = time.monotonic() - started
        if took > 1:
            log.warning("stop: %s took %.1f s", what, took)
    except TimeoutError:
        log.warning("stop: %s did not stop within %ss; going on", what, seconds)
    except Exception as e:
        log.warning("stop: %s failed to stop (%s)", what, type(e).__name__)
