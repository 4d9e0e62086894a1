"""A rebuild split by complaint over several processes gives exactly the rows of a rebuild
in one, its checkpoints at the log's end; started again after the log grew, each partition
carries on from its own checkpoint; and replay swaps and verifies with it."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import nats
import pytest

from lapor.devtools.lives import interleave, random_life
from lapor.ops.partitions import rebuild_partitioned
from lapor.ops.replay import fresh_database, installed_projections, rebuild, replay
from lapor.services.settings import Settings
from lapor.shared.envelope import envelope
from lapor.shared.tracking import new_tracking_id


async def append_lives(settings: Settings, seed: int, complaints: int) -> int:
    """The interleaved lives of ``complaints`` complaints appended to the log; its end."""
    rng = random.Random(seed)
    lives = {new_tracking_id(): list(random_life(rng)) for _ in range(complaints)}
    start = datetime(2026, 8, 3, 1, tzinfo=UTC) + timedelta(days=seed)
    nc = await nats.connect(settings.nats_url)
    js, subjects = nc.jetstream(), settings.subjects
    acks = []
    for cid, event, at in interleave(rng, lives, start):
        env = envelope(event, complaint_id=cid, correlation_id=uuid.uuid4(), occurred_at=at)
        acks.append(await js.publish_async(subjects.complaint(cid, env.type), env.to_json()))
    await asyncio.gather(*acks)
    end = (await js.stream_info(subjects.events_stream)).state.last_seq
    await nc.close()
    return end


async def tables(url: str) -> dict[str, list[dict]]:
    """Every row of every read model table (tracker and analytics), in key order."""
    conn = await asyncpg.connect(url)
    try:
        found = {}
        for p in installed_projections().values():
            for table, keys in p.tables:
                query = f"SELECT * FROM {table} ORDER BY {', '.join(keys)}"
                found[table] = [dict(r) for r in await conn.fetch(query)]
        return found
    finally:
        await conn.close()


async def checkpoints(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT projection, last_seq FROM projection_checkpoints")
        return {r["projection"]: r["last_seq"] for r in rows}
    finally:
        await conn.close()


@pytest.fixture
async def two_databases(settings: Settings):
    assert settings.database_url is not None
    live = settings.database_url.rsplit("/", 1)[1]
    one = await fresh_database(settings.database_url, f"{live}_replay")  # dropped by settings
    split = await fresh_database(settings.database_url, f"{live}_split")
    try:
        yield one, split
    finally:
        admin = await asyncpg.connect(settings.database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{live}_split" WITH (FORCE)')
        finally:
            await admin.close()


async def test_three_partitions_give_the_rows_of_one_and_resume_from_their_own_checkpoints(
    settings, two_databases
):
    one, split = two_databases
    projections = list(installed_projections().values())
    end = await append_lives(settings, seed=1, complaints=300)

    single = await rebuild(settings, projections, one, show_progress=False)
    rebuilt = await rebuild_partitioned(settings, projections, split, 3)
    assert single.last_seq == rebuilt.last_seq == end and not rebuilt.stops
    expected = await tables(one)
    assert all(expected.values())  # every table has rows
    assert await tables(split) == expected
    marks = await checkpoints(split)
    assert {n: marks[n] for n in ("tracker.status", "analytics.facts", "analytics.completion")} == {
        "tracker.status": end,
        "analytics.facts": end,
        "analytics.completion": end,
    }
    assert {
        marks[f"{p}#{i}/3"] for p in ("tracker.status", "analytics.facts") for i in range(3)
    } == {end}

    # The log grows; the same rebuild started again carries each partition on.
    later = await append_lives(settings, seed=2, complaints=60)
    await rebuild(settings, projections, one, show_progress=False)
    rebuilt = await rebuild_partitioned(settings, projections, split, 3)
    assert rebuilt.last_seq == later
    assert await tables(split) == await tables(one)
    assert set((await checkpoints(split)).values()) == {later}


async def test_replay_swaps_and_verifies_in_partitions(settings):
    end = await append_lives(settings, seed=3, complaints=120)
    report = await replay(settings, [], mode="swap", show_progress=False, partitions=3)
    assert all(v.clean for v in report.values()), report
    marks = await checkpoints(settings.database_url)
    assert {marks[n] for n in installed_projections()} == {end}

    # The command, as the replay Job runs it: its partitions are processes it spawns.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LAPOR_", "NATS_", "DATABASE_"))
    }
    env.update(
        NATS_URL=settings.nats_url,
        DATABASE_URL=settings.database_url,
        LAPOR_SUBJECT_ROOT=settings.subject_root,
        LAPOR_INFRA="none",
    )
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("lapor")),
        *("replay", "--verify", "--partitions", "2"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, (out, err)
    assert sorted(out.decode().split("\n")[:-1]) == [
        "analytics.completion: 0 difference(s)",
        "analytics.facts: 0 difference(s)",
        "tracker.status: 0 difference(s)",
    ]
