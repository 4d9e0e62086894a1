"""Raw baselines on the same servers: what nats-py and asyncpg reach with no service code.

* JetStream publish with ``Nats-Msg-Id``: N publishers each awaiting its ack (256 in
  flight), and nats-py's ``publish_async`` (client-side pipelining);
* JetStream ack latency at a fixed offered rate (the floor under any submission latency);
* ordered-consumer replay of a stream (the floor under any rebuild), and the same with
  the envelope parsed and decoded by the event models, and a pull consumer fetching
  500 and acking each (what ``rebuild`` does before it touches PostgreSQL);
* PostgreSQL upsert of 500 rows per transaction through ``unnest`` with a checkpoint row
  updated in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import nats
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from lapor.services.eventstore import EventStore, StoredEvent
from lapor.shared.envelope import decode
from lapor.shared.subjects import Subjects
from lapor.shared.tracking import new_tracking_id


@dataclass
class Rate:
    count: int
    seconds: float
    latencies: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _subject(root: str, complaint_id: str) -> str:
    return f"{root}.complaint.{complaint_id}.complaint.received"


async def publish_in_flight(
    nats_url: str, root: str, stream: str, payload: bytes, count: int, in_flight: int
) -> Rate:
    """``in_flight`` publishers, each awaiting the ack of its publish before the next."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream(timeout=30)
    ids = [new_tracking_id() for _ in range(count)]
    latencies: list[float] = []
    todo = iter(range(count))

    async def publisher() -> None:
        for i in todo:
            began = time.perf_counter()
            await js.publish(
                _subject(root, ids[i]),
                payload,
                stream=stream,
                headers={"Nats-Msg-Id": uuid.uuid4().hex},
            )
            latencies.append(time.perf_counter() - began)

    try:
        began = time.perf_counter()
        await asyncio.gather(*(publisher() for _ in range(in_flight)))
        return Rate(count, time.perf_counter() - began, latencies)
    finally:
        await nc.close()


async def publish_async(
    nats_url: str, root: str, stream: str, payload: bytes, count: int, max_pending: int
) -> Rate:
    """nats-py's ``publish_async``: up to ``max_pending`` acks outstanding."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream(timeout=30, publish_async_max_pending=max_pending)
    ids = [new_tracking_id() for _ in range(count)]
    try:
        began = time.perf_counter()
        futures = []
        for i in range(count):
            futures.append(
                await js.publish_async(
                    _subject(root, ids[i]),
                    payload,
                    stream=stream,
                    headers={"Nats-Msg-Id": uuid.uuid4().hex},
                )
            )
        await asyncio.gather(*futures)
        return Rate(count, time.perf_counter() - began)
    finally:
        await nc.close()


async def publish_paced(
    nats_url: str, root: str, stream: str, payload: bytes, rate: float, seconds: float
) -> Rate:
    """Open loop at ``rate`` publishes a second; the latency of each ack."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream(timeout=30)
    count = int(rate * seconds)
    latencies: list[float] = []

    async def one() -> None:
        began = time.perf_counter()
        await js.publish(
            _subject(root, new_tracking_id()),
            payload,
            stream=stream,
            headers={"Nats-Msg-Id": uuid.uuid4().hex},
        )
        latencies.append(time.perf_counter() - began)

    try:
        loop = asyncio.get_running_loop()
        began = loop.time()
        tasks = []
        for i in range(count):
            delay = began + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        return Rate(count, loop.time() - began, latencies)
    finally:
        await nc.close()


async def ordered_replay(
    nats_url: str, stream: str, subject: str, limit: int | None = None, decoded: bool = False
) -> Rate:
    """Read the stream from its first message with an ordered consumer (push, flow
    control); with ``decoded``, each message is also parsed and decoded as a projection
    would (``StoredEvent.from_msg`` + ``decode``)."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream(timeout=30)
    try:
        total = (await js.stream_info(stream)).state.messages
        want = min(total, limit) if limit else total
        done = asyncio.Event()
        count = 0

        async def on_msg(msg: Msg) -> None:
            nonlocal count
            if decoded:
                decode(StoredEvent.from_msg(msg).envelope)
            count += 1
            if count >= want:
                done.set()

        began = time.perf_counter()
        sub = await js.subscribe(
            subject,
            stream=stream,
            cb=on_msg,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        await done.wait()
        seconds = time.perf_counter() - began
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        return Rate(count, seconds)
    finally:
        await nc.close()


async def pull_fetch_ack(nats_url: str, stream: str, subject: str, limit: int) -> Rate:
    """Pull consumer, fetch 500, ack each message: the transport ``rebuild`` uses."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream(timeout=30)
    try:
        total = (await js.stream_info(stream)).state.messages
        want = min(total, limit)
        sub = await js.pull_subscribe(
            subject,
            stream=stream,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                max_ack_pending=500,
                inactive_threshold=60,
            ),
        )
        count = 0
        began = time.perf_counter()
        while count < want:
            with contextlib.suppress(TimeoutError):
                for msg in await sub.fetch(batch=500, timeout=5):
                    msg.metadata  # noqa: B018  (parsed by every consumer)
                    await msg.ack()
                    count += 1
        seconds = time.perf_counter() - began
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        return Rate(count, seconds)
    finally:
        await nc.close()


UPSERT = """
INSERT INTO bench_upsert (tracking_id, status, opd, updated_at, last_seq)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[])
ON CONFLICT (tracking_id) DO UPDATE
SET status = EXCLUDED.status, opd = EXCLUDED.opd, updated_at = EXCLUDED.updated_at,
    last_seq = EXCLUDED.last_seq
"""


async def pg_batched_upsert(database_url: str, rows: int, batch: int = 500) -> Rate:
    """Upsert ``rows`` rows, ``batch`` per transaction via ``unnest``, each transaction also
    advancing a checkpoint row; the keys repeat five times (inserts, then updates)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """DROP TABLE IF EXISTS bench_upsert, bench_checkpoint;
               CREATE TABLE bench_upsert (tracking_id text PRIMARY KEY, status text NOT NULL,
                   opd text, updated_at timestamptz NOT NULL, last_seq bigint NOT NULL);
               CREATE TABLE bench_checkpoint (name text PRIMARY KEY, last_seq bigint NOT NULL);
               INSERT INTO bench_checkpoint VALUES ('bench', 0);"""
        )
        keys = [new_tracking_id() for _ in range(max(batch, rows // 5))]
        statuses = ["received", "disposed", "in_progress", "answered", "closed"]
        now = datetime.now(UTC)
        seq = 0
        began = time.perf_counter()
        while seq < rows:
            round_ = seq // len(keys)
            first = seq % len(keys)
            chunk = keys[first : first + min(batch, rows - seq)]
            seqs = list(range(seq + 1, seq + len(chunk) + 1))
            async with conn.transaction():
                await conn.execute(
                    UPSERT,
                    chunk,
                    [statuses[round_ % 5]] * len(chunk),
                    ["dpupr"] * len(chunk),
                    [now + timedelta(seconds=s) for s in seqs],
                    seqs,
                )
                await conn.execute(
                    "UPDATE bench_checkpoint SET last_seq = $1 WHERE name = 'bench'", seqs[-1]
                )
            seq += len(chunk)
        seconds = time.perf_counter() - began
        await conn.execute("DROP TABLE bench_upsert, bench_checkpoint")
        return Rate(seq, seconds)
    finally:
        await conn.close()


async def history_reads(
    nats_url: str, subjects: Subjects, complaint_ids: list[str]
) -> tuple[Rate, Rate]:
    """What reading one complaint costs on this log: ``EventStore.load`` (the walk the
    router and the fan-out do: get_msg next_by_subj over the complaint's wildcard subject
    from sequence 1 until NotFound), against one get_msg of a literal subject."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream(timeout=120)
    store = EventStore(js, subjects)
    try:
        loads = []
        for complaint_id in complaint_ids:
            began = time.perf_counter()
            await store.load(complaint_id)
            loads.append(time.perf_counter() - began)
        literal = []
        for complaint_id in complaint_ids:
            began = time.perf_counter()
            await js.get_msg(
                subjects.events_stream,
                seq=1,
                subject=subjects.complaint(complaint_id, "complaint.received"),
                next=True,
            )
            literal.append(time.perf_counter() - began)
        return Rate(len(loads), sum(loads), loads), Rate(len(literal), sum(literal), literal)
    finally:
        await nc.close()
