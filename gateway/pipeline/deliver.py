"""The delivery stage: hand each routed message to its KE's adapter and decide what an
outcome leads to (delivered, acknowledged, the next retry tier, rejected, DEAD).

A record on the deliver topic (or a due one from a retry tier) only starts the work: each
delivery runs as its own task in the lane of its endpoint (one KE's platform), so a slow or
failing platform holds up only its own lane, never the others (no head-of-line blocking),
and the consumer commits at once. The store stays the record: a try lost with the process is
re-driven by recovery at start, and a command names the try it is for, so a stale or
repeated command cannot deliver twice.

Per endpoint: at most ``endpoint_concurrency`` deliveries at a time and a circuit breaker
(purgatory) that stops calling a platform that keeps failing; per try: a few quick tries in
process (tenacity); per message: the retry tiers, then DEAD (gateway/delivery_policy.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, replace

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from sqlalchemy import Connection
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from gateway import metrics
from gateway.delivery import Delivered, Delivery, DeliveryAdapter, DeliveryFailed
from gateway.delivery_policy import Cause, Policy, tier_name
from gateway.directory import RecipientEntry
from gateway.domain.content import Content, load_content
from gateway.domain.receipt import ReceiptError
from gateway.domain.status import MessageStatus, Stage
from gateway.logs import about_message
from gateway.pipeline import acknowledge, receipts
from gateway.runtime import Runtime
from gateway.store import repository as repo
from gateway.transport import Command, command_record

log = logging.getLogger(__name__)

CONSUMER = "deliver"
ACTOR = "gateway"
_READY = frozenset({MessageStatus.ROUTED, MessageStatus.RETRYING})


@dataclass(frozen=True)
class NoRecipient:
    detail: str


@dataclass(frozen=True)
class Outcome:
    command: Command
    message: repo.MessageRow
    notice: Content
    adapter: str
    result: Delivered | DeliveryFailed | NoRecipient
    duration_ms: int = 0


def endpoint_of(entry: RecipientEntry) -> str:
    """What one lane and one circuit stand for: the platform a KE's adapter reaches."""
    base = entry.settings.get("base_url")
    return f"{entry.unit.adapter}|{base}" if base else f"{entry.unit.adapter}|{entry.unit.her_id}"


def _quick_retry(e: BaseException) -> bool:
    """Worth a quick try in process: a retryable failure, unless the circuit is open (then
    the message waits for its retry tier instead of hammering a platform that is down)."""
    return isinstance(e, DeliveryFailed) and e.retryable and e.cause is not Cause.CIRCUIT_OPEN


class Deliverer:
    """Runs deliveries in per-endpoint lanes; its :meth:`handle` is the stage handler."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        s = rt.settings
        self.policy = s.delivery_policy
        self.concurrency = s.endpoint_concurrency
        self.breakers = AsyncCircuitBreakerFactory(
            default_threshold=s.circuit_failures,
            default_ttl=s.circuit_open_seconds,
            # a refusal is an answer: the platform is up
            exclude=[(DeliveryFailed, lambda e: not e.retryable)],
        )
        self._lanes: dict[str, asyncio.Semaphore] = {}
        self._working: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, commands: list[Command]) -> None:
        rows = await self.rt.db.read(repo.get_messages, [c.message_id for c in commands])
        for c in commands:
            m = rows.get(c.message_id)
            if (
                m is None
                or m.status not in _READY
                or m.generation != c.generation
                or m.attempts != c.attempt
                or c.ref in self._working
            ):
                continue  # done, moved on, or already under way here
            self._working.add(c.ref)
            task = asyncio.create_task(self._run(c, m), name=f"deliver-{m.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)

    async def _run(self, command: Command, message: repo.MessageRow) -> None:
        with about_message(message.id):
            await self._deliver(command, message)

    async def _deliver(self, command: Command, message: repo.MessageRow) -> None:
        try:
            outcome = await self._try(command, message)
            if outcome is not None:
                await self.rt.db.write_grouped(_record, self.rt, self.policy, outcome)
                self.rt.committed()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            # stays in flight in the store; the recovery sweep re-drives it
            log.error("deliver: message %s not recorded (%s)", message.id, type(e).__name__)
        finally:
            self._working.discard(command.ref)

    async def _try(self, command: Command, message: repo.MessageRow) -> Outcome | None:
        if message.canonical is None:
            log.error("deliver: message %s has no canonical form", message.id)
            return None
        notice = load_content(message.kind, message.canonical)
        entry = self.rt.directory.recipient_entry(
            message.recipient_kommune, message.recipient_her_id
        )
        if entry is None:
            # the directory changed since routing: no one to deliver to (DEAD, retryable)
            detail = (
                f"kommune {message.recipient_kommune} has no active koordinerende enhet"
                if message.recipient_kommune
                else f"HER-id {message.recipient_her_id} is no active unit in the directory"
            )
            return Outcome(command, message, notice, "-", NoRecipient(detail))
        name = entry.unit.adapter
        delivery = Delivery(
            message.id, message.generation, notice, entry.unit, entry.settings, command.attempt
        )
        endpoint = endpoint_of(entry)
        lane = self._lanes.setdefault(endpoint, asyncio.Semaphore(self.concurrency))
        async with lane:
            started = time.monotonic()
            result: Delivered | DeliveryFailed
            try:
                result = await self._quick_tries(self.rt.adapters.get(name), endpoint, delivery)
            except DeliveryFailed as f:
                result = f
            except Exception as e:
                result = DeliveryFailed(Cause.ADAPTER_ERROR, f"{name} raised {type(e).__name__}")
            seconds = time.monotonic() - started
            duration = int(seconds * 1000)
        failed = isinstance(result, DeliveryFailed)
        metrics.delivery_tried(
            name,
            delivered=not failed,
            cause=result.cause if isinstance(result, DeliveryFailed) else None,
            kommune=message.recipient_kommune,
            seconds=seconds,
        )
        if isinstance(result, DeliveryFailed):
            log.warning("deliver: message %s to %s failed: %s", message.id, name, result.cause)
        return Outcome(command, message, notice, name, result, duration)

    async def _quick_tries(
        self, adapter: DeliveryAdapter, endpoint: str, delivery: Delivery
    ) -> Delivered:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.policy.quick_tries),
            wait=wait_random_exponential(multiplier=0.1, max=self.policy.quick_max_wait),
            retry=retry_if_exception(_quick_retry),
            reraise=True,
        ):
            with attempt:
                breaker = await self.breakers.get_breaker(endpoint)
                try:
                    async with breaker:
                        return await adapter.deliver(delivery)
                except OpenedState:
                    raise DeliveryFailed(
                        Cause.CIRCUIT_OPEN, "the platform failed repeatedly: its circuit is open"
                    ) from None
        raise AssertionError("unreachable")  # tenacity reraises the last failure


def _record(conn: Connection, rt: Runtime, policy: Policy, o: Outcome) -> None:
    """Store one try's outcome with its consequence, once (the try's dedupe mark)."""
    if not repo.claim(conn, CONSUMER, o.command.ref):
        return
    m, result = o.message, o.result
    try:
        if isinstance(result, NoRecipient):
            error = ReceiptError(code="E21", detail=result.detail)
            receipts.dead(conn, rt, m, Stage.DELIVER, (error,), notice=o.notice)
            return
        attempt = repo.AttemptRecord(
            message_id=m.id,
            generation=m.generation,
            attempt=o.command.attempt,
            adapter=o.adapter,
            outcome="delivered",
            duration_ms=o.duration_ms,
        )
        if isinstance(result, Delivered):
            repo.add_attempt(
                conn, replace(attempt, detail=result.detail, remote_ref=result.remote_ref)
            )
            delivered = repo.set_status(
                conn,
                m,
                MessageStatus.DELIVERED,
                Stage.DELIVER,
                f"{result.detail} (via {o.adapter})",
                ACTOR,
                attempts=m.attempts + 1,
                failures=0,
                next_attempt_at=None,
                reason=None,
            )
            ack = result.acknowledgement
            if ack is not None:
                acknowledge.record(
                    conn,
                    rt,
                    delivered,
                    ack.errors,
                    actor=f"adapter:{o.adapter}",
                    detail=ack.detail
                    or f"acknowledged in the answer to the delivery ({o.adapter})",
                )
            return
        failed = replace(
            attempt,
            outcome="failed" if result.retryable else "refused",
            cause=result.cause.value,
            code=result.code,
            detail=result.detail,
        )
        repo.add_attempt(conn, failed)
        if not result.retryable:
            error = ReceiptError(code=result.code, detail=f"{o.adapter}: {result.detail}")
            receipts.reject(conn, rt, m, Stage.DELIVER, (error,), notice=o.notice)
            return
        _retry_or_dead(conn, rt, policy, o, result)
    except repo.StaleStatus:
        pass  # answered (acknowledged) before we recorded the try: the answer recorded it


def _retry_or_dead(
    conn: Connection, rt: Runtime, policy: Policy, o: Outcome, failure: DeliveryFailed
) -> None:
    m = o.message
    failures = m.failures + 1
    due = policy.due(failures, repo.now())
    if due is None:
        error = ReceiptError(
            code="X99",
            detail=f"not delivered: {failure.cause} on every try ({failures} rounds of "
            f"{policy.quick_tries} tries); the operator can retry it",
        )
        receipts.dead(
            conn,
            rt,
            m,
            Stage.DELIVER,
            (error,),
            notice=o.notice,
            attempts=m.attempts + 1,
            failures=failures,
        )
        return
    tier = failures - 1
    delay = policy.tiers[tier]
    detail = (
        f"{failure.cause} ({failure.detail}); next try in {tier_name(delay)} "
        f"(retry tier {failures} of {len(policy.tiers)})"
    )
    fields = {
        "attempts": m.attempts + 1,
        "failures": failures,
        "next_attempt_at": due,
        "reason": f"{failure.cause}: {failure.detail}",
    }
    if m.status is MessageStatus.RETRYING:  # on to the next tier
        repo.update_in_status(conn, m, Stage.DELIVER, detail, ACTOR, **fields)
    else:
        repo.set_status(conn, m, MessageStatus.RETRYING, Stage.DELIVER, detail, ACTOR, **fields)
    repo.add_outbox(conn, retry_record(rt, m, tier, m.attempts + 1, due))


def retry_record(
    rt: Runtime, m: repo.MessageRow, tier: int, attempt: int, due: dt.datetime
) -> repo.OutboxRecord:
    """The record that brings a message back to the delivery stage once ``due``."""
    return command_record(
        rt.topics.retry[min(tier, len(rt.topics.retry) - 1)],
        m.recipient_kommune or m.id,
        Command(m.id, m.generation, attempt, due.timestamp()),
        m.id,
    )
