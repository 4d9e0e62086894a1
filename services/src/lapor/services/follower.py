"""Following the whole log in order, batch by batch: what read models and ordered
fan-outs are built on.

This uses nats-py's pull subscription directly rather than FastStream's batch subscriber:
nats-py's ``fetch`` returns a partial batch as soon as messages are there (low latency when
quiet, full batches under load), whereas FastStream's batch loop waits out its timeout to
fill a batch and, with the short timeouts a live read model needs, was seen to stall.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from lapor.services.consumers import consumer_config
from lapor.services.settings import Settings
from lapor.services.tasks import cancel_and_wait

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
        js: JetStreamContext,
        settings: Settings,
        durable: str,
        handle: BatchHandler,
        ack_policy: AckPolicy = AckPolicy.EXPLICIT,
    ) -> None:
        self.js, self.settings = js, settings
        self.durable = durable
        self.stream = settings.subjects.events_stream  # (stream, durable): what metrics sample
        self.handle = handle
        self.ack_policy = ack_policy
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sub: JetStreamContext.PullSubscription | None = None

    async def start(self) -> None:
        subjects, size = self.settings.subjects, self.settings.projection_batch_size
        config = consumer_config(
            self.durable,
            subjects.all_events,
            self.settings,
            max_ack_pending=size,
            ack_policy=self.ack_policy,
        )
        await self._recreate_if_changed(config)
        self._sub = await self.js.pull_subscribe(
            subjects.all_events, durable=self.durable, stream=subjects.events_stream, config=config
        )
        self._task = asyncio.create_task(self._run(self._sub, size), name=self.durable)

    async def _recreate_if_changed(self, config: ConsumerConfig) -> None:
        """A consumer's ack policy cannot be changed in place: one created by an earlier
        version with another policy is replaced by one that starts after its ack floor,
        so nothing is skipped and nothing acknowledged is delivered again."""
        js, stream = self.js, self.settings.subjects.events_stream
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
        await cancel_and_wait(self._task)
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
