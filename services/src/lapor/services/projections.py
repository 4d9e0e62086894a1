"""Feeding a read model from the whole log, batch by batch, in log order.

This uses nats-py's pull subscription directly rather than FastStream's batch subscriber:
nats-py's ``fetch`` returns a partial batch as soon as messages are there (low latency when
quiet, full batches under load), whereas FastStream's batch loop waits out its timeout to
fill a batch and, with the short timeouts a live read model needs, was seen to stall.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import nats.errors
import structlog
from nats.js import JetStreamContext

if TYPE_CHECKING:
    from lapor.services.runtime import Runtime

from lapor.services.consumers import Projection, consumer_config, project_batch

log = structlog.get_logger(__name__)

FETCH_WAIT_SECONDS = 2.0


class ProjectionWorker:
    """One durable consumer per projection, over every complaint event.

    Order matters, so no more than one batch may be unacknowledged (``max_ack_pending``):
    a failed batch is redelivered before anything after it, and ``project_batch`` refuses
    to skip a sequence. Run one worker per projection (replicas would race on order).
    """

    def __init__(self, runtime: Runtime, projection: Projection) -> None:
        self.runtime = runtime
        self.projection = projection
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sub: JetStreamContext.PullSubscription | None = None

    @property
    def durable(self) -> str:
        return self.projection.name.replace(".", "_")

    async def start(self) -> None:
        rt = self.runtime
        subjects, size = rt.settings.subjects, rt.settings.projection_batch_size
        js: JetStreamContext = rt.js
        sub = await js.pull_subscribe(
            subjects.all_events,
            durable=self.durable,
            stream=subjects.events_stream,
            config=consumer_config(
                self.durable, subjects.all_events, rt.settings, max_ack_pending=size
            ),
        )
        self._sub = sub
        self._task = asyncio.create_task(self._run(sub, size), name=f"projection {self.durable}")

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
        rt = self.runtime
        while not self._stopping:
            try:
                msgs = await sub.fetch(batch=size, timeout=FETCH_WAIT_SECONDS)
            except nats.errors.TimeoutError:
                continue  # quiet log
            except Exception as e:  # connection trouble: wait, the client reconnects
                log.warning("fetch failed", projection=self.projection.name, error=repr(e))
                await asyncio.sleep(1)
                continue
            await project_batch(
                rt.db, self.projection, msgs, dead_letters=rt.dead_letters, settings=rt.settings
            )
