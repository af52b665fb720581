"""Kafka: topic names, producer, consumers and the outbox relay.

Records carry only a command (message id + generation), never person data: the store holds
the message, so a record lost with the memory-only dev broker is re-driven from the store.
Consumers commit an offset only after the handler has stored its effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from gateway.config import Settings
from gateway.delivery_policy import tier_name
from gateway.store import repository as repo
from gateway.store.database import Database

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Topics:
    ingress: str
    deliver: str
    receipts: str
    dlq: str
    retry: tuple[str, ...]

    @classmethod
    def named(cls, prefix: str, retry_tiers: Sequence[float] = (60.0, 600.0, 3600.0)) -> Topics:
        """One retry topic per tier, named for its delay (``ipgw.retry.10m``)."""
        return cls(
            ingress=f"{prefix}.ingress",
            deliver=f"{prefix}.deliver",
            receipts=f"{prefix}.receipts",
            dlq=f"{prefix}.dlq",
            retry=tuple(f"{prefix}.retry.{tier_name(t)}" for t in retry_tiers),
        )

    def all(self) -> list[str]:
        return [self.ingress, self.deliver, self.receipts, self.dlq, *self.retry]


@dataclass(frozen=True)
class Command:
    """What a stage record says: work on this message, at this generation and delivery try.

    ``due`` (epoch seconds) is when a delayed retry may run; a retry tier holds the record
    until then.
    """

    message_id: str
    generation: int = 0
    attempt: int = 0
    due: float | None = None

    def encode(self) -> bytes:
        data: dict[str, object] = {"id": self.message_id, "generation": self.generation}
        if self.attempt:
            data["attempt"] = self.attempt
        if self.due is not None:
            data["due"] = self.due
        return orjson.dumps(data)

    @classmethod
    def decode(cls, value: bytes) -> Command:
        data = orjson.loads(value)
        due = data.get("due")
        return cls(
            str(data["id"]),
            int(data.get("generation", 0)),
            int(data.get("attempt", 0)),
            float(due) if due is not None else None,
        )

    @property
    def ref(self) -> str:
        """The dedupe key: one effect per message, generation and try."""
        base = f"{self.message_id}:{self.generation}"
        return f"{base}:{self.attempt}" if self.attempt else base


def command_record(
    topic: str, key: str, command: Command, correlation_id: str
) -> repo.OutboxRecord:
    return repo.OutboxRecord(
        topic=topic,
        key=key.encode(),
        value=command.encode(),
        headers=[("message-id", command.message_id), ("correlation-id", correlation_id)],
    )


async def ensure_topics(settings: Settings, bootstrap: str, topics: Topics) -> None:
    """Create the topics if missing (the dev broker forgets them on every restart)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics.all() if t not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(t, settings.kafka_partitions, settings.kafka_replication_factor)
                    for t in missing
                ]
            )
    finally:
        await admin.close()


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    # No idempotence or transactions: the bundled broker lacks them; dedupe is ours.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=2,
        max_batch_size=262_144,
        max_request_size=MAX_MESSAGE_BYTES,
        enable_idempotence=False,
    )


class OutboxRelay:
    """Publishes committed outbox rows, then deletes them.

    A crash between publish and delete publishes a row twice; consumers dedupe. Woken right
    after each commit that adds rows, and polls besides (other instances write rows too).
    """

    def __init__(self, db: Database, producer: AIOKafkaProducer, *, batch: int = 500) -> None:
        self.db = db
        self.producer = producer
        self.batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, poll_seconds: float = 0.5) -> None:
        while True:
            try:
                published = await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # broker or store unavailable: try again shortly
                log.warning("outbox relay: %s; retrying", type(e).__name__)
                await asyncio.sleep(1.0)
                continue
            if published < self.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), poll_seconds)
                self._wake.clear()

    async def publish_pending(self) -> int:
        rows = await self.db.read(repo.pending_outbox, self.batch)
        if not rows:
            return 0
        futures = [
            await self.producer.send(
                r.topic,
                value=r.value,
                key=r.key,
                headers=[(k, v.encode()) for k, v in r.headers],
            )
            for _, r in rows
        ]
        await asyncio.gather(*futures)
        await self.db.write(repo.delete_outbox, [row_id for row_id, _ in rows])
        return len(rows)


#: A stage handler takes a batch of commands and stores the effect of each. It deals with a
#: failing message itself (that message stays in flight); raising means "none was stored".
Handler = Callable[[list[Command]], Awaitable[None]]


class TopicConsumer:
    """A consumer of one topic that commits by hand: every partition itself (``assign``) or
    its share in the group (``subscribe``). Stage consumers and retry tiers build on it."""

    def __init__(
        self,
        name: str,
        topic: str,
        settings: Settings,
        bootstrap: str,
        *,
        group: str,
        max_batch: int,
    ) -> None:
        self.name = name
        self.topic = topic
        self.settings = settings
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=max(1000, settings.kafka_session_timeout_ms // 4),
            max_poll_records=max_batch,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            fetch_max_bytes=MAX_MESSAGE_BYTES * 2,
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        )

    async def start(self) -> None:
        await self.consumer.start()
        if self.settings.group_mode == "assign":
            await self.consumer.topics()  # fetches the cluster's metadata
            partitions = self.consumer.partitions_for_topic(self.topic) or {0}
            self.consumer.assign([TopicPartition(self.topic, p) for p in sorted(partitions)])
        else:
            self.consumer.subscribe([self.topic])

    async def stop(self) -> None:
        await self.consumer.stop()

    async def rewind(self) -> None:
        """Back to the start of every partition (the broker's topics were created anew)."""
        await self.consumer.seek_to_beginning()

    async def run(self) -> None:
        raise NotImplementedError


class StageConsumer(TopicConsumer):
    """Consumes one topic and runs a stage handler on each fetched batch of commands.

    Batches keep the store's transactions few (one read and one write per batch rather than
    per message). Offsets are committed only after the handler returned. A batch that keeps
    failing is retried one command at a time; a command that still fails is logged and
    skipped: its message stays in flight in the store and the recovery sweep re-drives it.
    """

    def __init__(
        self,
        name: str,
        topic: str,
        handler: Handler,
        settings: Settings,
        bootstrap: str,
        *,
        group: str,
        attempts: int = 4,
        max_batch: int = 200,
    ) -> None:
        super().__init__(name, topic, settings, bootstrap, group=group, max_batch=max_batch)
        self.handler = handler
        self.attempts = attempts

    async def run(self) -> None:
        while True:
            try:
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # Broker gone or rebalancing: the uncommitted batch comes again (deduped).
                log.warning("%s: %s; polling again shortly", self.name, type(e).__name__)
                await asyncio.sleep(1.0)

    async def _poll_once(self) -> None:
        batch = await self.consumer.getmany(timeout_ms=500)
        if not batch:
            return
        commands = [c for records in batch.values() for c in self._decode(records)]
        if commands:
            await self._handle(commands)
        await self.consumer.commit({tp: recs[-1].offset + 1 for tp, recs in batch.items()})

    def _decode(self, records: list[ConsumerRecord[bytes, bytes]]) -> list[Command]:
        out = []
        for record in records:
            try:
                out.append(Command.decode(record.value))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.error("%s: unreadable record at offset %s skipped", self.name, record.offset)
        return out

    async def _handle(self, commands: list[Command]) -> None:
        if await self._attempt(commands, self.attempts):
            return
        for command in commands:  # find the one that fails; let the others through
            if not await self._attempt([command], 2):
                log.error(
                    "%s: message %s keeps failing; left for the recovery sweep",
                    self.name,
                    command.message_id,
                )

    async def _attempt(self, commands: list[Command], attempts: int) -> bool:
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(attempts),
                wait=wait_random_exponential(multiplier=0.05, max=2.0),
                retry=retry_if_exception_type(Exception),
                reraise=True,
            ):
                with attempt:
                    await self.handler(commands)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("%s: batch of %d failed (%s)", self.name, len(commands), type(e).__name__)
            return False
        return True


class RetryTier(TopicConsumer):
    """Consumes one delayed-retry topic: holds each record until its command is due, then
    hands it to ``forward`` (the delivery stage) and commits.

    Every record of a tier waits the same delay, so within a partition they come due in
    order: the tier holds a partition at its first record that is not due (seeking back to
    it) and goes on with the other partitions. A record forwarded but not committed when the
    process dies is forwarded again; the delivery stage skips a try that already happened.
    """

    def __init__(
        self,
        topic: str,
        forward: Handler,
        settings: Settings,
        bootstrap: str,
        *,
        group: str,
        max_hold_seconds: float = 1.0,
    ) -> None:
        super().__init__(topic, topic, settings, bootstrap, group=group, max_batch=500)
        self.forward = forward
        self.max_hold = max_hold_seconds

    async def run(self) -> None:
        while True:
            try:
                wait = await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("%s: %s; polling again shortly", self.name, type(e).__name__)
                wait = 1.0
            if wait > 0:
                await asyncio.sleep(wait)

    async def _poll_once(self) -> float:
        """Forward what is due; the time to sleep before the next poll (0: poll at once)."""
        batch = await self.consumer.getmany(timeout_ms=500)
        holds: list[float] = []
        for tp, records in batch.items():
            due: list[Command] = []
            last: int | None = None
            for record in records:
                try:
                    command = Command.decode(record.value)
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    log.error(
                        "%s: unreadable record at offset %s skipped", self.name, record.offset
                    )
                    last = record.offset
                    continue
                left = (command.due or 0.0) - time.time()
                if left > 0:
                    self.consumer.seek(tp, record.offset)
                    holds.append(min(left, self.max_hold))
                    break
                due.append(command)
                last = record.offset
            if due:
                await self.forward(due)
            if last is not None:
                await self.consumer.commit({tp: last + 1})
        return min(holds, default=0.0)
