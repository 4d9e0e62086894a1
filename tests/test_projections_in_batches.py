"""Every read model gives the same rows whether the log reaches it one event at a time or
in batches of any size, and applying part of the log again changes nothing.

Projections fold a batch in memory and write each table once (see
``lapor.services.consumers.Projection``); this is the proof that the shortcut is exact.
The same suite runs against every installed projection, on a real PostgreSQL, with a
seeded random log of complaints whose lives interleave and take every turn the
lifecycle has (re-routing, holds, deadline notices, reopening, ratings, archiving).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from lapor.services.consumers import Applied, Projection
from lapor.services.eventstore import StoredEvent
from lapor.services.replay import installed_projections
from lapor.shared.envelope import Event, envelope
from lapor.shared.events import (
    Actor,
    ArchiveReason,
    AuthorityDeclined,
    Channel,
    ComplaintArchived,
    ComplaintClosed,
    ComplaintDisposed,
    ComplaintPutOnHold,
    ComplaintRated,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    ComplaintResumed,
    ComplaintRouted,
    DeadlineBreached,
    DeadlineStep,
    DeadlineWarned,
    FollowUpPosted,
    ReporterReplied,
    ReportType,
)

ADMIN, OFFICER, REPORTER = Actor(role="admin"), Actor(role="agency"), Actor(role="reporter")
UNITS = ("dpupr", "dlh", "dishub", "pemprov_kalbar")


def life(rng: random.Random) -> Iterator[Event]:
    """One complaint's events: a random walk through the lifecycle."""
    yield ComplaintReceived(
        title="Laporan warga nomor " + str(rng.randrange(1000)),
        body="Isi laporan warga yang cukup panjang untuk diterima.",
        channel=rng.choice(list(Channel)),
        report_type=rng.choice(list(ReportType)),
        category=rng.choice(["jalan", "sampah", None]),
        anonymous=rng.random() < 0.2,
        confidential=rng.random() < 0.1,
    )
    unit = rng.choice(UNITS)
    for _ in range(rng.randrange(12)):
        roll = rng.random()
        step = rng.choice(list(DeadlineStep))
        due = datetime(2026, 8, 20, 16, 59, tzinfo=UTC)
        yield rng.choice(
            [
                ComplaintRouted(
                    opd=unit,
                    opd_name=unit.upper(),
                    rule="category:x",
                    reason="r",
                    confidence=roll,
                    rules_version="t",
                ),
                ComplaintDisposed(opd=unit, opd_name=unit.upper(), by=ADMIN, automatic=roll > 0.5),
                AuthorityDeclined(opd=unit, reason="Bukan kewenangan kami", by=OFFICER),
                ComplaintPutOnHold(reason="Menunggu data", by=OFFICER),
                ComplaintResumed(by=OFFICER),
                FollowUpPosted(opd=unit, message="Tim sudah meninjau lokasi"),
                ComplaintResolved(opd=unit, resolution="Sudah diperbaiki"),
                ReporterReplied(message="Terima kasih"),
                ComplaintRated(stars=rng.randint(1, 5)),
                ComplaintReopened(reason="Belum beres"),
                ComplaintClosed(reason="confirmed_by_reporter", by=REPORTER),
                DeadlineWarned(step=step, due_at=due, opd=unit),
                DeadlineBreached(step=step, due_at=due, opd=unit, escalated_to="diskominfo"),
            ]
        )
        if roll < 0.15:
            unit = rng.choice(UNITS)
    if rng.random() < 0.1:
        yield ComplaintArchived(reason=ArchiveReason.DUPLICATE, by=ADMIN)


def interleaved_log(seed: int, complaints: int) -> list[Applied]:
    """The lives of ``complaints`` complaints, interleaved as a log holds them."""
    rng = random.Random(seed)
    lives = {f"K{i:04d}-{seed:05d}": list(life(rng)) for i in range(complaints)}
    at = datetime(2026, 8, 3, 1, tzinfo=UTC)
    log: list[Applied] = []
    while lives:
        cid = rng.choice(sorted(lives))
        event = lives[cid].pop(0)
        if not lives[cid]:
            del lives[cid]
        at += timedelta(minutes=rng.randrange(1, 600))
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
