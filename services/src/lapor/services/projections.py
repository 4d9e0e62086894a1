"""Read models fed from the log (projections): a batch applied with its checkpoint in one
PostgreSQL transaction, an event that cannot be applied never left out, and the handler
that keeps one projection following the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy

from lapor.services.consumers import PERMANENT_ERRORS, describe_error
from lapor.services.eventstore import StoredEvent
from lapor.services.follower import LogFollower
from lapor.services.observability import OK, RETRIED, event_handled
from lapor.services.settings import Settings
from lapor.services.tracing import record_applied
from lapor.shared.envelope import Event, decode

log = structlog.get_logger(__name__)

Applied = tuple[StoredEvent, Event]
"""An event as a projection receives it: the stored message and its decoded event."""


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
    """A log message as a projection receives it: decoded, or with the reason it cannot be;
    or passing by (``passes``): another reader's share, not decoded, only counted."""

    msg: Msg
    seq: int
    applied: Applied | None
    error: str | None = None
    passes: bool = False


def receive(msgs: list[Msg], keep: Callable[[str], bool] | None = None) -> list[Received]:
    """Decode a batch in log order. What cannot be decoded is kept with its reason: a
    projection stops in front of it rather than leave it out. With ``keep``, a message
    whose subject it refuses passes by undecoded (a partition's reader: the checkpoint
    moves over it, nothing is applied)."""
    received = []
    for msg in sorted(msgs, key=lambda m: m.metadata.sequence.stream):
        seq = msg.metadata.sequence.stream
        if keep is not None and not keep(msg.subject):
            received.append(Received(msg, seq, None, passes=True))
            continue
        try:
            stored = StoredEvent.from_msg(msg)
            received.append(Received(msg, seq, (stored, decode(stored.envelope))))
        except PERMANENT_ERRORS as e:
            received.append(Received(msg, seq, None, f"cannot be read: {describe_error(e)}"))
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
    wanted = [r for r in todo if r.seq not in skips and not r.passes]
    if not wanted:
        return todo[-1].seq, None
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
                error=describe_error(e),
            )
    last = checkpoint
    for r in todo:
        if r.seq not in skips and not r.passes:
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
        return describe_error(e)
    return None


@dataclass
class ProjectionHealth:
    """How a read model is doing, for ``/health/ready`` and the metrics: following the log
    (``ok``), stopped in front of an event it cannot apply (``stopped``), or waiting for
    PostgreSQL (``waiting``)."""

    name: str
    status: str = "starting"
    checkpoint: int | None = None
    stop: Stop | None = None
    error: str | None = None
    failures: int = 0

    @property
    def behind(self) -> bool:
        return self.status in ("stopped", "waiting")

    def describe(self) -> dict[str, object]:
        found: dict[str, object] = {"status": self.status, "checkpoint": self.checkpoint}
        if self.stop is not None:
            found.update(stopped_at=self.stop.seq, subject=self.stop.subject)
            found["reason"] = self.stop.reason
        elif self.error is not None:
            found["reason"] = self.error
        return found


class ProjectionHandler:
    """Applies each fetched batch to one projection and settles it.

    What is applied is acknowledged (one ack: the consumer's ``AckPolicy.ALL``). What
    cannot be applied yet, because PostgreSQL is away or an event stops the projection,
    is **kept** and tried again after a delay that doubles with each failure of this
    projection, while NATS is told it is still in progress. Sending it back instead (a
    nak with delay) scattered a batch over many redelivery times, after which no batch
    held the next events in order again: seen as read models stuck for minutes after a
    PostgreSQL restart under load.
    """

    def __init__(self, pool: asyncpg.Pool, settings: Settings, projection: Projection) -> None:
        self.pool, self.settings = pool, settings
        self.projection = projection
        self.health = ProjectionHealth(projection.name)

    @property
    def consumer(self) -> str:
        """The durable JetStream consumer that feeds it."""
        return self.projection.name.replace(".", "_")

    async def __call__(self, msgs: list[Msg]) -> int:
        pending, applied = receive(msgs), 0
        while pending:
            started = time.time_ns()
            try:
                progress = await project(self.pool, self.projection, pending)
            except Exception as e:  # PostgreSQL away, or a fault outside any one event
                self._failed(error=describe_error(e))
                log.warning("projection waiting", projection=self.projection.name, error=repr(e))
                event_handled(self.consumer, RETRIED, len(pending))
                await _hold(pending, self._delay())
                continue
            applied += progress.applied
            done = [r for r in pending if r.seq <= progress.last_seq]
            if done:
                await done[-1].msg.ack()
            event_handled(self.consumer, OK, progress.applied)
            record_applied(self.consumer, _traced(done), started)
            pending = [r for r in pending if r.seq > progress.last_seq]
            if progress.stop is not None:
                stop = progress.stop
                self._stopped(stop, progress.last_seq)
                event_handled(self.consumer, RETRIED)
                at_fault = [r for r in pending if r.seq == stop.seq]
                record_applied(self.consumer, _traced(at_fault), started, error=stop.reason)
                await _hold(pending, self._delay())
                continue
            self.health = ProjectionHealth(self.projection.name, "ok", progress.last_seq)
            if pending:  # after a gap: back to the log, to come again with the missing one
                await _nak(pending, delay=GAP_DELAY_SECONDS)
            return applied
        return applied

    def _stopped(self, stop: Stop, checkpoint: int) -> None:
        self._failed(stop=stop, checkpoint=checkpoint)
        log.error(
            "projection stopped in front of an event it cannot apply",
            projection=self.projection.name,
            seq=stop.seq,
            subject=stop.subject,
            reason=stop.reason,
            attempts=self.health.failures,
        )

    def _failed(
        self, *, error: str | None = None, stop: Stop | None = None, checkpoint: int | None = None
    ) -> None:
        h = self.health
        self.health = ProjectionHealth(
            h.name,
            "stopped" if stop else "waiting",
            h.checkpoint if checkpoint is None else checkpoint,
            stop,
            error,
            h.failures + 1,
        )

    def _delay(self) -> float:
        settings = self.settings
        growing = settings.retry_base_delay_seconds * 2 ** (self.health.failures - 1)
        return min(growing, settings.projection_retry_max_seconds)


GAP_DELAY_SECONDS = 0.2
"""How long what followed a gap waits before it is delivered again (the missing event is
one a stopped process fetched; it comes back when its acknowledgement time runs out)."""
KEEP_ALIVE_SECONDS = 10.0
"""How often held messages are reported in progress (well inside the 30 s ack wait)."""


def _traced(received: list[Received]) -> Iterator[tuple[str, dict[str, str], int, str, str]]:
    """What the span of each event names: subject, headers (its trace), sequence, type,
    complaint."""
    for r in received:
        if r.applied is not None:
            stored = r.applied[0]
            env = stored.envelope
            yield stored.subject, stored.headers, r.seq, env.type, env.complaint_id


async def _hold(held: list[Received], delay: float) -> None:
    """Wait ``delay`` seconds keeping ``held`` from being delivered again meanwhile."""
    while delay > 0:
        for r in held:
            with contextlib.suppress(Exception):  # NATS away: redelivered later, harmless
                await r.msg.in_progress()
        step = min(delay, KEEP_ALIVE_SECONDS)
        await asyncio.sleep(step)
        delay -= step


async def _nak(received: list[Received], *, delay: float) -> None:
    for r in received:
        await r.msg.nak(delay=delay)


def projection_follower(js: JetStreamContext, handler: ProjectionHandler) -> LogFollower:
    """A read model fed from the log, its checkpoint in the same transaction as its rows."""
    return LogFollower(js, handler.settings, handler.consumer, handler, AckPolicy.ALL)
