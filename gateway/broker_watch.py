"""Notices when the broker has lost its topics (a memory-only broker restarted, or a cluster
rebuilt) and puts things right: topics created again, every consumer rewound to the start of
the new, empty topics, and every message in flight queued again from the store.

Records published between the restart and this check may land nowhere; they are re-driven
from the store like everything else in flight (consumers dedupe), so nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient

from gateway.config import Settings
from gateway.pipeline import recovery
from gateway.runtime import Runtime
from gateway.transport import TopicConsumer, ensure_topics

log = logging.getLogger(__name__)


async def watch(
    rt: Runtime,
    settings: Settings,
    bootstrap: str,
    consumers: Sequence[TopicConsumer],
    *,
    interval: float = 1.0,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
    started = False
    try:
        while True:
            await asyncio.sleep(interval)
            try:
                if not started:
                    await admin.start()
                    started = True
                missing = set(rt.topics.all()) - set(await admin.list_topics())
                if not missing:
                    continue
                log.warning(
                    "the broker lost %d of the gateway's topics (restarted?): creating them "
                    "again and re-driving messages in flight from the store",
                    len(missing),
                )
                await ensure_topics(settings, bootstrap, rt.topics)
                for consumer in consumers:
                    await consumer.rewind()
                n = await recovery.requeue(rt)
                log.info("broker watch: re-queued %d messages in flight", n)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.debug("broker watch: %s", type(e).__name__)
    finally:
        if started:
            await admin.close()
