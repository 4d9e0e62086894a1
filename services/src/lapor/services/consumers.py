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
        await dead_letters.park(consumer, msg, _reason(error))
        await msg.term()
    elif deliveries >= settings.max_deliver:
        await dead_letters.park(consumer, msg, f"gave up after {deliveries}: {_reason(error)}")
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


UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    # Seen right after a postmaster was killed: "cannot switch to state 15; another
    # operation (2) is in progress" on a connection the crash left half-used.
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
"""PostgreSQL is away, not the event at fault: retry the whole batch later."""


@dataclass(frozen=True)
class Received:
    """A log message as a projection receives it: decoded, or with the reason it cannot be."""

    msg: Msg
    seq: int
    applied: Applied | None
    error: str | None = None


def receive(msgs: list[Msg]) -> list[Received]:
    """Decode a batch in log order. What cannot be decoded is kept with its reason: a
    projection stops in front of it rather than leave it out."""
    received = []
    for msg in sorted(msgs, key=lambda m: m.metadata.sequence.stream):
        seq = msg.metadata.sequence.stream
        try:
            stored = StoredEvent.from_msg(msg)
            received.append(Received(msg, seq, (stored, decode(stored.envelope))))
        except PERMANENT_ERRORS as e:
            received.append(Received(msg, seq, None, f"cannot be read: {_reason(e)}"))
    return received


@dataclass(frozen=True)
class Stop:
    """Where a projection stopped: the event it cannot apply, and why."""

    projection: str
    seq: int
    subject: str
    reason: str


@dataclass(frozen=True)
class Progress:
    """What one call of ``project`` did: the new checkpoint, the stop if it stopped, and
    the first sequence missing if the batch had a gap (what follows the gap is not applied:
    it waits for the missing one)."""

    applied: int
    last_seq: int
    stop: Stop | None = None
    missing: int | None = None


async def project(pool: asyncpg.Pool, projection: Projection, received: list[Received]) -> Progress:
    """Apply received messages and advance the checkpoint in one transaction.

    Messages at or below the checkpoint are redeliveries and are skipped; the run that
    follows the checkpoint without a gap is applied, and what comes after a gap is left
    for later (``Progress.missing``). An event that cannot be applied is never left out:
    the events before it are applied, the checkpoint stops in front of it, and the stop is
    recorded with the checkpoint; only an operator's recorded decision
    (``projection_skips``) lets it pass.
    """
    async with pool.acquire() as conn, conn.transaction():
        # The row lock holds a concurrent swap off; the skips come in the same round trip.
        first, skips = await conn.fetchrow(
            """INSERT INTO projection_checkpoints (projection) VALUES ($1)
               ON CONFLICT (projection) DO UPDATE SET projection = EXCLUDED.projection
               RETURNING last_seq, ARRAY(SELECT seq FROM projection_skips s
                                         WHERE s.projection = $1 AND s.seq > last_seq)""",
            projection.name,
        )
        todo, missing = _front(first, received)
        last, stop = await _apply(conn, projection, todo, first, frozenset(skips))
        await conn.execute(
            """UPDATE projection_checkpoints SET
                   last_seq = $2, updated_at = now(),
                   stopped_attempts = CASE WHEN $3::bigint IS NULL THEN 0
                       WHEN stopped_seq = $3 THEN stopped_attempts + 1 ELSE 1 END,
                   stopped_since = CASE WHEN $3::bigint IS NULL THEN NULL
                       WHEN stopped_seq = $3 THEN stopped_since ELSE now() END,
                   stopped_seq = $3, stopped_subject = $4, stopped_reason = $5
               WHERE projection = $1""",
            projection.name,
            last,
            stop.seq if stop else None,
            stop.subject if stop else None,
            stop.reason if stop else None,
        )
    return Progress(last - first, last, stop, None if stop else missing)


def _front(checkpoint: int, received: list[Received]) -> tuple[list[Received], int | None]:
    """The messages that follow the checkpoint without a gap, and the first sequence
    missing if later ones came without it."""
    todo, last = [], checkpoint
    for r in received:
        if r.seq <= last:
            continue
        if r.seq != last + 1:
            return todo, last + 1
        todo.append(r)
        last = r.seq
    return todo, None


async def _apply(
    conn: asyncpg.Connection,
    projection: Projection,
    todo: list[Received],
    checkpoint: int,
    skips: frozenset[int],
) -> tuple[int, Stop | None]:
    """Apply ``todo`` but the ``skips`` in one statement per table if it can be; otherwise
    event by event to find the one at fault. Returns the last sequence applied and the
    stop, if any."""
    if not todo:
        return checkpoint, None
    wanted = [r for r in todo if r.seq not in skips]
    if all(r.applied is not None for r in wanted):
        try:
            async with conn.transaction():  # a savepoint: a failure leaves the rest usable
                await projection.apply(conn, [r.applied for r in wanted if r.applied])
            return todo[-1].seq, None
        except UNAVAILABLE:
            raise
        except Exception as e:
            log.warning(
                "batch failed, applying it event by event",
                projection=projection.name,
                error=_reason(e),
            )
    last = checkpoint
    for r in todo:
        if r.seq not in skips:
            error = r.error or await _apply_one(conn, projection, r)
            if error is not None:
                return last, Stop(projection.name, r.seq, r.msg.subject, error)
        last = r.seq
    return last, None


async def _apply_one(conn: asyncpg.Connection, projection: Projection, r: Received) -> str | None:
    """Apply one event in a savepoint; the reason it failed, or None."""
    assert r.applied is not None
    try:
        async with conn.transaction():
            await projection.apply(conn, [r.applied])
    except UNAVAILABLE:
        raise
    except Exception as e:
        return _reason(e)
    return None


def _reason(error: BaseException) -> str:
    """The error in words, without the input: an event's text is citizens' data, and the
    reason is shown in health checks and logs."""
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in error.errors()
        )
        return f"ValidationError: {problems}"[:2000]
    return f"{type(error).__name__}: {error}"[:2000]
