"""Reliable consumption: retries with growing delay, dead letters, and projections whose
checkpoint is written in the same transaction as their rows.

Delivery from JetStream is at-least-once; these helpers turn it into an exactly-once
effect (projections) or an idempotent one (handlers that append with deterministic ids).
A message that cannot be processed is parked in the dead-letter stream with the reason,
never dropped and never allowed to block the others forever.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from lapor.services.eventstore import StoredEvent
from lapor.services.settings import Settings
from lapor.shared.envelope import Event, UnknownEvent, decode

log = structlog.get_logger(__name__)


class Permanent(Exception):
    """An error that retrying cannot fix: the message goes to the dead letters at once."""


PERMANENT_ERRORS: tuple[type[BaseException], ...] = (ValidationError, UnknownEvent, Permanent)


def consumer_config(
    durable: str,
    subject: str,
    settings: Settings,
    *,
    max_ack_pending: int | None = None,
    ack_policy: AckPolicy = AckPolicy.EXPLICIT,
) -> ConsumerConfig:
    """A durable pull consumer with explicit acks (or, with ``AckPolicy.ALL``, where an
    ack covers every message before it too), from the start of the log."""
    return ConsumerConfig(
        durable_name=durable,
        filter_subject=subject,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=ack_policy,
        ack_wait=30,
        # Retries are counted by the handlers (see settle); the server never gives up alone.
        max_deliver=-1,
        max_ack_pending=max_ack_pending or 1000,
    )


class DeadLetters:
    """The dead-letter stream: what a consumer parked, with the original and the reason."""

    def __init__(self, js: JetStreamContext, settings: Settings) -> None:
        self.js = js
        self.subjects = settings.subjects

    async def park(self, consumer: str, msg: Msg, reason: str) -> None:
        meta = msg.metadata
        await self.js.publish(
            self.subjects.dead_letter(consumer),
            msg.data,
            stream=self.subjects.dead_letter_stream,
            headers={
                "Nats-Msg-Id": f"{consumer}:{meta.stream}:{meta.sequence.stream}",
                "Lapor-Consumer": consumer,
                "Lapor-Original-Subject": msg.subject,
                "Lapor-Original-Stream": meta.stream,
                "Lapor-Original-Sequence": str(meta.sequence.stream),
                "Lapor-Deliveries": str(meta.num_delivered),
                "Lapor-Reason": reason[:2000],
            },
        )
        log.warning(
            "message dead-lettered", consumer=consumer, seq=meta.sequence.stream, reason=reason
        )


def retry_delay(settings: Settings, deliveries: int) -> float:
    """1 s, 2 s, 4 s ... capped at five minutes."""
    return min(settings.retry_base_delay_seconds * 2 ** max(deliveries - 1, 0), 300.0)


async def handle_reliably(
    msg: Msg,
    handler: Callable[[StoredEvent, Event], Awaitable[None]],
    *,
    consumer: str,
    dead_letters: DeadLetters,
    settings: Settings,
) -> None:
    """Run ``handler`` for one log message and settle it: ack on success, retry later on a
    passing failure, dead-letter on a permanent one or after ``max_deliver`` deliveries."""
    try:
        stored = StoredEvent.from_msg(msg)
        event = decode(stored.envelope)
        with structlog.contextvars.bound_contextvars(
            complaint_id=stored.envelope.complaint_id,
            correlation_id=str(stored.envelope.correlation_id),
            event_type=stored.envelope.type,
        ):
            await handler(stored, event)
    except Exception as e:
        await give_back(msg, e, consumer=consumer, dead_letters=dead_letters, settings=settings)
    else:
        await msg.ack()


Applied = tuple[StoredEvent, Event]
"""An event as a projection receives it: the stored message and its decoded event."""


async def give_back(
    msg: Msg, error: Exception, *, consumer: str, dead_letters: DeadLetters, settings: Settings
) -> None:
    """Settle a message its handler failed on: dead-letter it if the error is permanent or
    after ``max_deliver`` deliveries, else have it redelivered after a growing delay."""
    deliveries = msg.metadata.num_delivered
    if isinstance(error, PERMANENT_ERRORS):
        await dead_letters.park(consumer, msg, f"{type(error).__name__}: {error}")
        await msg.term()
    elif deliveries >= settings.max_deliver:
        await dead_letters.park(consumer, msg, f"gave up after {deliveries}: {error!r}")
        await msg.term()
    else:
        delay = retry_delay(settings, deliveries)
        log.warning("handler failed, will retry", consumer=consumer, error=repr(error), delay=delay)
        await msg.nak(delay=delay)


class Projection(Protocol):
    """A read model fed from the log. ``tables`` names its tables with their key columns,
    for replay to compare and swap.

    ``apply`` receives the events after the checkpoint in log order, a whole batch at a
    time, so that a projection can read the rows the batch touches with one statement,
    fold the events in memory and write each table with one statement: round trips to
    PostgreSQL, not Python, bound a projection that writes event by event. It must be
    idempotent per event (applying an event twice changes nothing the second time), and
    applying a log in batches of any size must give the same rows as one event at a time.
    """

    name: str
    tables: tuple[tuple[str, tuple[str, ...]], ...]

    async def apply(self, conn: asyncpg.Connection, batch: Sequence[Applied]) -> None: ...


class OutOfOrder(Exception):
    """A batch would skip a sequence: wait for the missing one instead of losing it."""


@dataclass(frozen=True)
class Received:
    """A log message as a projection receives it: decoded, or ``None`` if it was parked in
    the dead letters because it cannot be."""

    msg: Msg
    seq: int
    applied: Applied | None


async def receive(
    consumers: Sequence[str], msgs: list[Msg], dead_letters: DeadLetters
) -> list[Received]:
    """Decode a batch in log order; what cannot be decoded is parked for each consumer."""
    received = []
    for msg in sorted(msgs, key=lambda m: m.metadata.sequence.stream):
        try:
            stored = StoredEvent.from_msg(msg)
            applied: Applied | None = (stored, decode(stored.envelope))
        except PERMANENT_ERRORS as e:
            for consumer in consumers:
                await dead_letters.park(consumer, msg, f"{type(e).__name__}: {e}")
            applied = None
        received.append(Received(msg, msg.metadata.sequence.stream, applied))
    return received


async def project_batch(
    pool: asyncpg.Pool,
    projection: Projection,
    msgs: list[Msg],
    *,
    dead_letters: DeadLetters,
    settings: Settings,
) -> int:
    """Apply a batch of log messages and advance the checkpoint in one transaction, then
    ack the last (the follower's consumer acknowledges all before it with it: one message
    per batch instead of one per event); on failure nak them all for a later retry.
    Returns the number of events applied."""
    received = await receive([projection.name], msgs, dead_letters)
    try:
        applied = await project(pool, projection, received, dead_letters, settings)
    except Exception as e:
        deliveries = msgs[0].metadata.num_delivered if msgs else 1
        delay = 0.05 if isinstance(e, OutOfOrder) else retry_delay(settings, deliveries)
        log.warning("projection batch failed", projection=projection.name, error=repr(e))
        for msg in msgs:
            await msg.nak(delay=delay)
        return 0
    if received:
        await received[-1].msg.ack()
    return applied


async def project(
    pool: asyncpg.Pool,
    projection: Projection,
    received: list[Received],
    dead_letters: DeadLetters,
    settings: Settings,
) -> int:
    """Apply received messages and advance the checkpoint in one transaction. Messages at
    or below the checkpoint are redeliveries and are skipped; a gap raises ``OutOfOrder``.
    Returns the number of events applied."""
    retrying = max((r.msg.metadata.num_delivered for r in received), default=1) > 1
    async with pool.acquire() as conn, conn.transaction():
        first = last = await conn.fetchval(
            """INSERT INTO projection_checkpoints (projection) VALUES ($1)
               ON CONFLICT (projection) DO UPDATE SET projection = EXCLUDED.projection
               RETURNING last_seq""",
            projection.name,
        )
        batch: list[tuple[Msg, Applied]] = []
        for r in received:
            if r.seq <= last:
                continue
            if r.seq != last + 1:
                raise OutOfOrder(f"{projection.name}: at {last}, got {r.seq}")
            last = r.seq
            if r.applied is not None:
                batch.append((r.msg, r.applied))
        if retrying:
            await _apply_one_by_one(conn, projection, batch, dead_letters, settings)
        elif batch:
            await projection.apply(conn, [applied for _, applied in batch])
        await conn.execute(
            """UPDATE projection_checkpoints SET last_seq = $2, updated_at = now()
               WHERE projection = $1""",
            projection.name,
            last,
        )
    return last - first


async def _apply_one_by_one(
    conn: asyncpg.Connection,
    projection: Projection,
    batch: list[tuple[Msg, Applied]],
    dead_letters: DeadLetters,
    settings: Settings,
) -> None:
    """On a retried batch, isolate each event so that one poison event can be parked
    after max_deliver attempts instead of blocking the projection for ever."""
    for msg, applied in batch:
        try:
            async with conn.transaction():
                await projection.apply(conn, [applied])
        except (asyncpg.PostgresConnectionError, OSError):
            raise
        except Exception as e:
            if msg.metadata.num_delivered < settings.max_deliver:
                raise
            await dead_letters.park(projection.name, msg, f"gave up: {e!r}")
