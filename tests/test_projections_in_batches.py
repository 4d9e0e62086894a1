"""Every read model gives the same rows whether the log reaches it one event at a time or
in batches of any size, and applying part of the log again changes nothing.

Projections fold a batch in memory and write each table once (see
``lapor.services.projections.Projection``); this is the proof that the shortcut is exact.
The same suite runs against every installed projection, on a real PostgreSQL, with a
seeded random log of complaints whose lives interleave and take every turn the
lifecycle has (re-routing, holds, deadline notices, reopening, ratings, archiving).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import nats
import pytest

from lapor.devtools.lives import interleave, random_life
from lapor.ops import projection_admin
from lapor.ops.replay import installed_projections
from lapor.services.eventstore import StoredEvent
from lapor.services.projections import Applied, Projection, project, receive
from lapor.shared.envelope import envelope
from lapor.shared.events import ComplaintReceived


def interleaved_log(seed: int, complaints: int) -> list[Applied]:
    """The lives of ``complaints`` complaints, interleaved as a log holds them."""
    rng = random.Random(seed)
    lives = {f"K{i:04d}-{seed:05d}": list(random_life(rng)) for i in range(complaints)}
    log: list[Applied] = []
    for cid, event, at in interleave(rng, lives, datetime(2026, 8, 3, 1, tzinfo=UTC)):
        env = envelope(
            event, complaint_id=cid, correlation_id=uuid.UUID(int=len(log)), occurred_at=at
        )
        stored = StoredEvent(len(log) + 1, f"lapor.complaint.{cid}.{env.type}", env)
        log.append((stored, event))
    return log


async def apply_in(
    conn: asyncpg.Connection, projection: Projection, log: list[Applied], sizes: Iterator[int]
) -> None:
    at = 0
    while at < len(log):
        size = next(sizes)
        async with conn.transaction():
            await projection.apply(conn, log[at : at + size])
        at += size


async def rows(conn: asyncpg.Connection, projection: Projection) -> dict[str, list[dict]]:
    return {
        table: [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {', '.join(k)}")]
        for table, k in projection.tables
    }


async def emptied(conn: asyncpg.Connection, projection: Projection) -> None:
    await conn.execute(f"TRUNCATE {', '.join(t for t, _ in projection.tables)}")


def random_sizes(rng: random.Random) -> Iterator[int]:
    while True:
        yield rng.choice([1, 2, 7, 50, 333, 1000])


@pytest.mark.parametrize("name", sorted(installed_projections()))
async def test_batches_of_any_size_give_the_rows_of_one_event_at_a_time(settings, name):
    projection = installed_projections()[name]
    log = interleaved_log(seed=7, complaints=120)
    assert len({type(event) for _, event in log}) >= 15  # every kind of event is there
    rng = random.Random(11)
    conn = await asyncpg.connect(settings.database_url)
    try:
        await apply_in(conn, projection, log, iter(lambda: 1, 0))
        one_by_one = await rows(conn, projection)
        assert all(one_by_one.values()), one_by_one  # every table got rows

        await emptied(conn, projection)
        await apply_in(conn, projection, log, random_sizes(rng))
        assert await rows(conn, projection) == one_by_one

        await emptied(conn, projection)
        await apply_in(conn, projection, log, iter(lambda: len(log), 0))
        assert await rows(conn, projection) == one_by_one

        # A restart from an older checkpoint: the tail arrives a second time.
        await apply_in(conn, projection, log[len(log) // 3 :], random_sizes(rng))
        assert await rows(conn, projection) == one_by_one
    finally:
        await conn.close()


# --- a read model never leaves an event out -------------------------------------------
# The same log, through the real log (JetStream) and ``project`` with its checkpoint, for
# every installed projection: a batch that fails is applied event by event (a complaint's
# events several times in one batch, the case that once staged a key twice), and an event
# that cannot be applied stops the projection in front of it until a recorded decision.


class Refusing:
    """The projection under test, except that it cannot apply the events of ``refused``
    sequences (as a bug or a poisoned event would make it), and refuses any batch the first
    ``fail_batches`` times it is given more than one event."""

    def __init__(self, inner: Projection, refused: set[int], fail_batches: int = 0) -> None:
        self.inner, self.refused, self.fail_batches = inner, refused, fail_batches
        self.name, self.tables = inner.name, inner.tables

    async def apply(self, conn: asyncpg.Connection, batch) -> None:
        if self.refused & {stored.seq for stored, _ in batch}:
            raise ValueError("this event cannot be applied")
        if len(batch) > 1 and self.fail_batches > 0:
            self.fail_batches -= 1
            raise RuntimeError("a batch that fails as a whole")
        await self.inner.apply(conn, batch)


async def log_messages(settings, log: list[Applied]) -> list:
    """``log`` appended to the real events stream, and read back as a consumer gets it."""
    nc = await nats.connect(settings.nats_url)
    js, subjects = nc.jetstream(), settings.subjects
    for stored, _ in log:
        env = stored.envelope
        subject = subjects.complaint(env.complaint_id, env.type)
        await js.publish(subject, env.to_json(), stream=subjects.events_stream)
    sub = await js.pull_subscribe(subjects.all_events, stream=subjects.events_stream)
    msgs = []
    while len(msgs) < len(log):
        msgs += await sub.fetch(batch=len(log) - len(msgs), timeout=5)
    await nc.close()
    return msgs


async def reference_rows(settings, projection: Projection, log: list[Applied]) -> dict:
    """The rows of ``log`` applied one event at a time, then the tables emptied again."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await apply_in(conn, projection, log, iter(lambda: 1, 0))
        found = await rows(conn, projection)
        await emptied(conn, projection)
        return found
    finally:
        await conn.close()


@pytest.mark.parametrize("name", sorted(installed_projections()))
async def test_a_failed_batch_is_applied_event_by_event_and_loses_nothing(settings, name):
    projection = installed_projections()[name]
    log = interleaved_log(seed=3, complaints=30)
    expected = await reference_rows(settings, projection, log)
    msgs = await log_messages(settings, log)
    refusing = Refusing(projection, refused=set(), fail_batches=1)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        progress = await project(pool, refusing, receive(msgs))
        assert refusing.fail_batches == 0  # the batch did fail as a whole
        assert progress.stop is None and progress.last_seq == len(log)
        async with pool.acquire() as conn:
            assert await rows(conn, projection) == expected
    finally:
        await pool.close()


@pytest.mark.parametrize("name", sorted(installed_projections()))
async def test_a_projection_stops_in_front_of_an_event_until_a_decision_to_skip_it(settings, name):
    projection = installed_projections()[name]
    log = interleaved_log(seed=5, complaints=30)
    poisoned = len(log) // 2 + 1  # a sequence in the middle of the log
    expected = await reference_rows(settings, projection, [a for a in log if a[0].seq != poisoned])
    received = receive(await log_messages(settings, log))
    refusing = Refusing(projection, refused={poisoned})
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        for attempt in (1, 2):  # the same delivery again: still stopped, one more attempt
            progress = await project(pool, refusing, received)
            assert progress.stop is not None and progress.stop.seq == poisoned
            assert progress.last_seq == poisoned - 1  # everything before it is applied
            assert "cannot be applied" in progress.stop.reason
            async with pool.acquire() as conn:
                state = await projection_admin.state_of(conn, name)
            assert (state.last_seq, state.stopped_seq) == (poisoned - 1, poisoned)
            assert state.stopped_attempts == attempt

        async with pool.acquire() as conn:
            with pytest.raises(ValueError, match="only the event it stopped at"):
                await projection_admin.record_skip(conn, name, poisoned + 1, "no", "ops")
            await projection_admin.record_skip(
                conn, name, poisoned, "unreadable test event", "Rina (ops)"
            )
        progress = await project(pool, refusing, received)
        assert progress.stop is None and progress.last_seq == len(log)
        async with pool.acquire() as conn:
            assert await rows(conn, projection) == expected
            state = await projection_admin.state_of(conn, name)
        assert state.stopped_seq is None and state.stopped_attempts == 0
    finally:
        await pool.close()


@pytest.mark.parametrize("name", sorted(installed_projections()))
async def test_every_projection_is_total_over_valid_events_in_any_order(settings, name):
    """Events of a complaint whose receipt is not there (left out by a recorded decision)
    and events in orders the lifecycle would refuse: applied without error, the same rows
    in any batch size."""
    projection = installed_projections()[name]
    rng = random.Random(23)
    log = [
        a
        for a in interleaved_log(seed=13, complaints=60)
        if not (isinstance(a[1], ComplaintReceived) and rng.random() < 0.3)
    ]
    conn = await asyncpg.connect(settings.database_url)
    try:
        await apply_in(conn, projection, log, iter(lambda: 1, 0))
        one_by_one = await rows(conn, projection)
        await emptied(conn, projection)
        await apply_in(conn, projection, log, random_sizes(rng))
        assert await rows(conn, projection) == one_by_one
    finally:
        await conn.close()


async def test_a_batch_with_a_gap_applies_the_run_before_it_and_waits_for_the_rest(settings):
    """Redeliveries can come in any order (a stopped process's messages come back when
    their acknowledgement time runs out): what follows the checkpoint without a gap is
    applied, the rest waits for the missing event; nothing is skipped, nothing refused."""
    projection = installed_projections()["tracker.status"]
    log = interleaved_log(seed=17, complaints=10)
    expected = await reference_rows(settings, projection, log)
    received = receive(await log_messages(settings, log))
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        missing = 6
        without = [r for r in received if r.seq != missing]
        progress = await project(pool, projection, without)
        assert (progress.last_seq, progress.missing, progress.stop) == (missing - 1, missing, None)
        progress = await project(pool, projection, received[missing - 1 :])  # it came back
        assert (progress.last_seq, progress.missing) == (len(log), None)
        async with pool.acquire() as conn:
            assert await rows(conn, projection) == expected
    finally:
        await pool.close()
