"""Following the whole log in order: read models (projections) and ordered fan-outs.

This uses nats-py's pull subscription directly rather than FastStream's batch subscriber:
nats-py's ``fetch`` returns a partial batch as soon as messages are there (low latency when
quiet, full batches under load), whereas FastStream's batch loop waits out its timeout to
fill a batch and, with the short timeouts a live read model needs, was seen to stall.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from lapor.services.consumers import (
    Projection,
    Received,
    Stop,
    consumer_config,
    project,
    receive,
)

if TYPE_CHECKING:
    from lapor.services.runtime import Runtime

log = structlog.get_logger(__name__)

FETCH_WAIT_SECONDS = 2.0

BatchHandler = Callable[[list[Msg]], Awaitable[object]]


class LogFollower:
    """One durable pull consumer over every complaint event, handled batch by batch in
    log order by ``handle`` (which acknowledges).

    Order matters, so no more than one batch may be unacknowledged (``max_ack_pending``):
    a batch that is not acknowledged is redelivered before anything after it. Run one
    follower per durable (replicas would race on order).
    """

    def __init__(
        self,
        runtime: Runtime,
        durable: str,
        handle: BatchHandler,
        ack_policy: AckPolicy = AckPolicy.EXPLICIT,
    ) -> None:
        self.runtime = runtime
        self.durable = durable
        self.handle = handle
        self.ack_policy = ack_policy
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sub: JetStreamContext.PullSubscription | None = None

    async def start(self) -> None:
        rt = self.runtime
        subjects, size = rt.settings.subjects, rt.settings.projection_batch_size
        config = consumer_config(
            self.durable,
            subjects.all_events,
            rt.settings,
            max_ack_pending=size,
            ack_policy=self.ack_policy,
        )
        await self._recreate_if_changed(config)
        self._sub = await rt.js.pull_subscribe(
            subjects.all_events, durable=self.durable, stream=subjects.events_stream, config=config
        )
        self._task = asyncio.create_task(self._run(self._sub, size), name=self.durable)

    async def _recreate_if_changed(self, config: ConsumerConfig) -> None:
        """A consumer's ack policy cannot be changed in place: one created by an earlier
        version with another policy is replaced by one that starts after its ack floor,
        so nothing is skipped and nothing acknowledged is delivered again."""
        js, stream = self.runtime.js, self.runtime.settings.subjects.events_stream
        try:
            info = await js.consumer_info(stream, self.durable)
        except nats.js.errors.NotFoundError:
            return
        if info.config.ack_policy == config.ack_policy:
            return
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        await js.delete_consumer(stream, self.durable)
        config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = floor + 1
        log.info("consumer recreated", durable=self.durable, from_seq=floor + 1)

    async def stop(self) -> None:
        # nats-py may turn a cancelled fetch into its own TimeoutError, which the loop
        # treats as a quiet log; the flag makes the loop end whatever the fetch raises.
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            # Unsubscribe now: draining the connection later would wait for ever on
            # fetched-but-unread items in this subscription's queue.
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _run(self, sub: JetStreamContext.PullSubscription, size: int) -> None:
        while not self._stopping:
            try:
                msgs = await sub.fetch(batch=size, timeout=FETCH_WAIT_SECONDS)
            except TimeoutError:  # nats-py's own, or a plain one: both mean a quiet log
                continue  # quiet log
            except Exception as e:  # connection trouble: wait, the client reconnects
                log.warning("fetch failed", durable=self.durable, error=repr(e))
                await asyncio.sleep(1)
                continue
            try:
                await self.handle(msgs)
            except Exception as e:  # e.g. an ack lost with the connection: delivered again
                log.warning("batch not settled", durable=self.durable, error=repr(e))
                await asyncio.sleep(1)


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

    def __init__(self, runtime: Runtime, projection: Projection) -> None:
        self.runtime = runtime
        self.projection = projection
        self.health = ProjectionHealth(projection.name)

    async def __call__(self, msgs: list[Msg]) -> int:
        pending, applied = receive(msgs), 0
        while pending:
            try:
                progress = await project(self.runtime.db, self.projection, pending)
            except Exception as e:  # PostgreSQL away, or a fault outside any one event
                self._failed(error=f"{type(e).__name__}: {e}")
                log.warning("projection waiting", projection=self.projection.name, error=repr(e))
                await _hold(pending, self._delay())
                continue
            applied += progress.applied
            done = [r for r in pending if r.seq <= progress.last_seq]
            if done:
                await done[-1].msg.ack()
            pending = [r for r in pending if r.seq > progress.last_seq]
            if progress.stop is not None:
                self._stopped(progress.stop, progress.last_seq)
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
        settings = self.runtime.settings
        growing = settings.retry_base_delay_seconds * 2 ** (self.health.failures - 1)
        return min(growing, settings.projection_retry_max_seconds)


GAP_DELAY_SECONDS = 0.2
"""How long what followed a gap waits before it is delivered again (the missing event is
one a stopped process fetched; it comes back when its acknowledgement time runs out)."""
KEEP_ALIVE_SECONDS = 10.0
"""How often held messages are reported in progress (well inside the 30 s ack wait)."""


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


def projection_follower(runtime: Runtime, handler: ProjectionHandler) -> LogFollower:
    """A read model fed from the log, its checkpoint in the same transaction as its rows."""
    durable = handler.projection.name.replace(".", "_")
    return LogFollower(runtime, durable, handler, AckPolicy.ALL)
