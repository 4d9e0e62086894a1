"""The batch pull loop on a real JetStream server: whole batches in order, an empty batch
from a quiet stream, a partial batch at once, acknowledgements that hold, and a stop in the
middle of a wait."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from lapor.devtools.testing import eventually
from lapor.services.follower import LogFollower
from lapor.services.pull import GRACE_SECONDS, Puller, PullError

pytestmark = pytest.mark.connected


@dataclass
class Log:
    nc: NATS
    js: JetStreamContext
    stream: str
    subject: str

    async def append(self, n: int, size: int = 10) -> None:
        acks = [await self.js.publish_async(self.subject, b"x" * size) for _ in range(n)]
        await asyncio.gather(*acks)

    async def puller(self, **config: object) -> Puller:
        durable = f"c{uuid.uuid4().hex[:8]}"
        settings = {"ack_policy": AckPolicy.EXPLICIT, **config}
        await self.js.add_consumer(self.stream, ConsumerConfig(durable_name=durable, **settings))
        return await Puller.of(self.js, self.stream, durable).start()


@pytest.fixture
async def log(infra) -> AsyncIterator[Log]:
    name = f"PULL_{uuid.uuid4().hex[:10].upper()}"
    nc = await nats.connect(infra.nats_url)
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[f"{name.lower()}.>"])
    try:
        yield Log(nc, js, name, f"{name.lower()}.event")
    finally:
        await js.delete_stream(name)
        await nc.close()


def seqs(msgs: list[Msg]) -> list[int]:
    return [m.metadata.sequence.stream for m in msgs]


async def test_whole_batches_arrive_complete_and_in_order(log):
    await log.append(250)
    puller = await log.puller(ack_policy=AckPolicy.NONE)
    batches = [await puller.pull(100, 2) for _ in range(3)]
    assert [len(b) for b in batches] == [100, 100, 50]
    assert seqs([m for b in batches for m in b]) == list(range(1, 251))
    assert batches[0][0].data == b"x" * 10 and batches[0][0].subject == log.subject
    await puller.close()


async def test_a_quiet_stream_gives_an_empty_batch_after_the_wait(log):
    puller = await log.puller()
    started = time.monotonic()
    assert await puller.pull(10, 0.5) == []
    took = time.monotonic() - started
    assert 0.4 < took < 0.5 + GRACE_SECONDS
    assert await puller.pull(10, 0.3) == []  # and again: nothing left over
    await puller.close()


async def test_a_partial_batch_comes_at_once(log):
    await log.append(3)
    puller = await log.puller()
    started = time.monotonic()
    assert seqs(await puller.pull(100, 5)) == [1, 2, 3]
    assert time.monotonic() - started < 1

    # On a quiet stream: as soon as something is appended, not at the end of the wait.
    waiting = asyncio.create_task(puller.pull(100, 5))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await log.append(2)
    got = await waiting
    assert time.monotonic() - started < 1
    assert seqs(got) in ([4], [4, 5])
    await puller.close()


async def test_acknowledged_messages_are_not_delivered_again(log):
    await log.append(20)
    # As projections do: one ack covers the batch.
    every = await log.puller(ack_policy=AckPolicy.ALL, ack_wait=1, max_ack_pending=10)
    batch = await every.pull(10, 2)
    assert seqs(batch) == list(range(1, 11))
    await batch[-1].ack_sync()
    # As the fan-out does: each message on its own.
    each = await log.puller(ack_policy=AckPolicy.EXPLICIT, ack_wait=1)
    for msg in await each.pull(20, 2):
        await msg.ack()
    await log.nc.flush()

    await asyncio.sleep(1.5)  # past the ack wait: anything unacknowledged would be back
    assert seqs(await every.pull(10, 0.5)) == list(range(11, 21))
    assert await each.pull(10, 0.5) == []
    info = await log.js.consumer_info(log.stream, each.consumer)
    assert info.ack_floor.stream_seq == 20 and info.num_ack_pending == 0
    assert info.num_redelivered == 0
    info = await log.js.consumer_info(log.stream, every.consumer)
    assert info.ack_floor.stream_seq == 10 and info.num_redelivered == 0
    await every.close()
    await each.close()


async def test_a_message_larger_than_max_bytes_is_an_error_not_an_empty_batch(log):
    await log.append(3, size=1000)
    puller = await log.puller()
    assert len(await puller.pull(10, 1, max_bytes=2500)) == 2  # what fits, then 409
    with pytest.raises(PullError) as raised:
        await puller.pull(10, 1, max_bytes=500)
    assert raised.value.status == "409"
    await puller.close()


async def test_stopping_in_the_middle_of_a_wait_does_not_hang(log):
    puller = await log.puller()
    waiting = asyncio.create_task(puller.pull(10, 30))
    await asyncio.sleep(0.2)
    waiting.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await puller.close()
    assert time.monotonic() - started < 1


async def test_a_follower_handles_batches_in_order_and_stops_while_waiting(settings):
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    seen: list[int] = []

    async def handle(msgs: list[Msg]) -> None:
        seen.extend(seqs(msgs))
        await msgs[-1].ack()

    subject = settings.subjects.complaint("X-1", "test")
    follower = LogFollower(js, settings, "t_follow", handle, AckPolicy.ALL)
    await follower.start()
    try:
        for _ in range(300):
            await js.publish(subject, b"{}")

        async def all_seen() -> bool:
            return len(seen) >= 300

        await eventually(all_seen, within=10)
        assert seen == list(range(1, 301))
        await asyncio.sleep(0.3)  # now in the middle of a pull's wait on a quiet log
        started = time.monotonic()
        await follower.stop()
        assert time.monotonic() - started < 1.5
        info = await js.consumer_info(settings.subjects.events_stream, "t_follow")
        assert info.ack_floor.stream_seq == 300
    finally:
        await follower.stop()
        await nc.close()
