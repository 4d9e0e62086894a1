"""Following the whole log in order, batch by batch: what read models and ordered
fan-outs are built on.

This pulls batches itself (:class:`~lapor.services.pull.Puller`) rather than use
FastStream's batch subscriber: a pull returns a partial batch as soon as messages are there
(low latency when quiet, full batches under load), whereas FastStream's batch loop waits
out its timeout to fill a batch and, with the short timeouts a live read model needs, was
seen to stall. (nats-py's ``fetch`` behaves like a pull but awaits each message of a batch
separately, which cost most of a reader's CPU.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from lapor.services.consumers import consumer_config
from lapor.services.pull import Puller
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
        self._puller: Puller | None = None

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
        stream = subjects.events_stream
        try:  # as nats-py's pull_subscribe: an existing consumer is used as it is
            await self.js.consumer_info(stream, self.durable)
        except nats.js.errors.NotFoundError:
            await self.js.add_consumer(stream, config)
        self._puller = await Puller.of(self.js, stream, self.durable).start()
        self._task = asyncio.create_task(self._run(self._puller, size), name=self.durable)

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
        # The flag makes the loop end whatever a cancelled pull raises.
        self._stopping = True
        await cancel_and_wait(self._task)
        if self._puller is not None:
            # Unsubscribe now: draining the connection later would wait on messages still
            # delivered for a pull in flight.
            await self._puller.close()

    async def _run(self, puller: Puller, size: int) -> None:
        while not self._stopping:
            try:
                msgs = await puller.pull(size, FETCH_WAIT_SECONDS)
            except Exception as e:  # connection trouble, consumer gone: wait and again
                log.warning("pull failed", durable=self.durable, error=repr(e))
                await asyncio.sleep(1)
                continue
            if not msgs:
                continue  # quiet log
            try:
                await self.handle(msgs)
            except Exception as e:  # e.g. an ack lost with the connection: delivered again
                log.warning("batch not settled", durable=self.durable, error=repr(e))
                await asyncio.sleep(1)
