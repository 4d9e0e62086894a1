"""Replay: rebuild read models from the log into fresh tables, then verify or swap.

A projection is rebuilt with the very code that keeps it live, from the start of the log
or from a sequence or a time, into

* the database ``LAPOR_REBUILD_DATABASE_URL`` names, when set (production): one the
  operator provisioned for rebuilds, on the live server or another, owned by a role that
  needs no CREATEDB. Each run migrates it and empties every table in it
  (:func:`emptied_database`); it must hold nothing else. Nothing is created or dropped
  on the live server, and a database that holds lapor tables replay did not make (the
  live one, named by mistake) is refused;
* otherwise a fresh database beside the live one (``<live>_replay``), dropped and created
  again on the live server on each run (needs CREATEDB: development).

One replay at a time rebuilds in a provisioned database: a second one stops at once.

Then either

* **verify**: both sides are read in key order with server-side cursors and merged, and
  every row that is missing, extra or different is listed; or
* **swap**: in one transaction that holds the projection's checkpoint row (so the live
  consumer waits), the live tables are emptied and filled from the rebuilt ones by COPY,
  and the checkpoint is set to where the rebuild stopped.

Memory stays flat however long the log: events are applied in batches and rows are
streamed, never collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import nats
import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from tqdm import tqdm

from lapor.services.database import create_pool, migrate, with_database
from lapor.services.projections import Projection, Received, Stop, project, receive
from lapor.services.pull import Puller
from lapor.services.settings import Settings

log = structlog.get_logger(__name__)

BATCH = 1000
PULL_WAIT_SECONDS = 5.0
PREFETCH_BATCHES = 2
API_TIMEOUT_SECONDS = 120.0
"""For the JetStream API requests of a rebuild: creating a consumer that starts at a given
sequence makes the server count what is pending for its filter, which took more than
nats-py's default 5 s on a 10-million-event log (``make bench-scale``)."""
CATCH_UP_ATTEMPTS = 5


def installed_projections() -> dict[str, Projection]:
    """Every projection an installed service registered under ``lapor.projections``."""
    return {ep.name: ep.load()() for ep in entry_points(group="lapor.projections")}


@dataclass(frozen=True)
class Difference:
    table: str
    key: tuple[Any, ...]
    kind: str  # "missing" (only live), "extra" (only rebuilt), "changed"
    live: dict[str, Any] | None
    rebuilt: dict[str, Any] | None

    def describe(self) -> str:
        if self.kind == "changed":
            assert self.live is not None and self.rebuilt is not None
            fields = [k for k in self.live if self.live[k] != self.rebuilt.get(k)]
            detail = ", ".join(f"{f}: {self.live[f]!r} -> {self.rebuilt[f]!r}" for f in fields)
            return f"{self.table} {self.key}: {detail}"
        where = "only in the live table" if self.kind == "missing" else "only in the rebuild"
        return f"{self.table} {self.key}: {where}"


@dataclass(frozen=True)
class Skip:
    """An operator's recorded decision to leave one event out of one read model."""

    seq: int
    subject: str
    reason: str
    decided_by: str
    decided_at: datetime
    error: str

    def describe(self) -> str:
        return (
            f"seq {self.seq} ({self.subject}) skipped by decision of {self.decided_by} "
            f"at {self.decided_at:%Y-%m-%d %H:%M}: {self.reason} (it failed with: {self.error})"
        )


@dataclass
class Verdict:
    """What replay found for one read model: the rows that differ, the event the rebuild
    could not apply (it stops there, as the live one does), and the skip decisions it
    honoured. Clean only with no difference and no stop; honoured skips are reported, not
    counted against it."""

    differences: list[Difference] = field(default_factory=list)
    stopped: Stop | None = None
    skipped: list[Skip] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences and self.stopped is None

    def describe(self, limit: int = 200) -> list[str]:
        lines = [f"  {d.describe()}" for d in self.differences[:limit]]
        if self.stopped is not None:
            stop = self.stopped
            lines.append(
                f"  rebuild stopped in front of seq {stop.seq} ({stop.subject}): {stop.reason}"
            )
        lines += [f"  {skip.describe()}" for skip in self.skipped]
        return lines


SKIP_COLUMNS = ("seq", "subject", "reason", "decided_by", "decided_at", "error")


async def skip_decisions(url: str, projections: Sequence[Projection]) -> dict[str, list[Skip]]:
    """The recorded skip decisions of each projection, in log order."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            f"""SELECT projection, {", ".join(SKIP_COLUMNS)} FROM projection_skips
                WHERE projection = ANY($1::text[]) ORDER BY seq""",
            [p.name for p in projections],
        )
    finally:
        await conn.close()
    found: dict[str, list[Skip]] = {p.name: [] for p in projections}
    for r in rows:
        found[r["projection"]].append(Skip(*(r[c] for c in SKIP_COLUMNS)))
    return found


async def fresh_database(live_url: str, name: str) -> str:
    """(Re)create database ``name`` beside the live one, migrated; returns its URL."""
    admin = await asyncpg.connect(live_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(live_url, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url


REBUILD_MARKER = "lapor_replay_target"
"""The table that marks a database as replay's own, to empty at will."""

REBUILD_LOCK = 0x4C41504F52524550  # "LAPORREP": one replay at a time per rebuild database


class RebuildBusy(RuntimeError):
    """Another replay is rebuilding in the same provisioned database."""


class NotARebuildDatabase(RuntimeError):
    """``LAPOR_REBUILD_DATABASE_URL`` names a database replay may not empty."""


def _same_database(a: str, b: str) -> bool:
    """Whether two URLs name the same database (host, port and name; not the user)."""
    pa, pb = urlsplit(a), urlsplit(b)
    query_a, query_b = parse_qs(pa.query), parse_qs(pb.query)
    where_a = (pa.hostname or query_a.get("host", [""])[0], pa.port or 5432, pa.path)
    where_b = (pb.hostname or query_b.get("host", [""])[0], pb.port or 5432, pb.path)
    return where_a == where_b


async def emptied_database(url: str, live_url: str) -> str:
    """Make the provisioned database ``url`` ready for a rebuild: marked as replay's own,
    migrated, every table emptied (the migrations' bookkeeping and the mark excepted).
    Needs only the rights of the database's owner there, none on the live server."""
    if _same_database(url, live_url):
        raise NotARebuildDatabase("LAPOR_REBUILD_DATABASE_URL names the live database")
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            marked = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", REBUILD_MARKER)
            has_lapor = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
            if has_lapor and not marked:
                raise NotARebuildDatabase(
                    "LAPOR_REBUILD_DATABASE_URL names a database with lapor tables that "
                    "replay did not make (the live one?): it is not emptied"
                )
            if not marked:
                await conn.execute(
                    f"""CREATE TABLE {REBUILD_MARKER} (
                            note text NOT NULL,
                            marked_at timestamptz NOT NULL DEFAULT now())"""
                )
                await conn.execute(
                    f"INSERT INTO {REBUILD_MARKER} (note) VALUES ($1)",
                    "lapor replay rebuilds here and empties every table on each run",
                )
        await migrate(conn)
        tables = await conn.fetch(
            """SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables
               WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
                 AND NOT (schemaname = current_schema()
                          AND tablename IN ('schema_migrations', $1))""",
            REBUILD_MARKER,
        )
        if tables:
            await conn.execute(f"TRUNCATE {', '.join(t['name'] for t in tables)} RESTART IDENTITY")
    finally:
        await conn.close()
    return url


@contextlib.asynccontextmanager
async def rebuild_target(settings: Settings) -> AsyncIterator[str]:
    """Where this replay rebuilds (see the module's docstring), ready, for the block; a
    provisioned database is held for the block (a second replay there stops at once)."""
    assert settings.database_url is not None
    url = settings.rebuild_database_url
    if url is None:
        live_name = settings.database_url.rsplit("/", 1)[1].split("?")[0]
        yield await fresh_database(settings.database_url, f"{live_name}_replay")
        return
    holder = await asyncpg.connect(url)
    try:
        if not await holder.fetchval("SELECT pg_try_advisory_lock($1)", REBUILD_LOCK):
            raise RebuildBusy(
                "another lapor replay is rebuilding in LAPOR_REBUILD_DATABASE_URL's "
                "database; run this one when it is done"
            )
        yield await emptied_database(url, settings.database_url)
    finally:
        await holder.close()  # the lock goes with the session


@dataclass(frozen=True)
class Rebuilt:
    """How far a rebuild read the log, and where projections stopped in front of an event
    they cannot apply (they go no further: a rebuild leaves out no more than live does)."""

    last_seq: int
    stops: dict[str, Stop]


async def rebuild(
    settings: Settings,
    projections: Sequence[Projection],
    target_url: str,
    *,
    from_seq: int = 1,
    from_time: datetime | None = None,
    show_progress: bool = True,
    until: int | None = None,
    keep: Callable[[str], bool] | None = None,
) -> Rebuilt:
    """Apply the log to ``projections`` in ``target_url`` (each from its checkpoint on, or
    from ``from_seq``/``from_time`` on a fresh one) up to the log's current end (or
    ``until``), reading and decoding it once for all of them; with ``keep``, only the
    events whose subject it accepts are decoded and applied (a partition's share, see
    ``lapor.ops.partitions``), the others pass by."""
    with _fewer_collections():
        return await _rebuild(
            settings, projections, target_url, from_seq, from_time, show_progress, until, keep
        )


async def _rebuild(
    settings: Settings,
    projections: Sequence[Projection],
    target_url: str,
    from_seq: int,
    from_time: datetime | None,
    show_progress: bool,
    until: int | None,
    keep: Callable[[str], bool] | None,
) -> Rebuilt:
    nc = await nats.connect(settings.nats_servers)
    pool = await create_pool(target_url, min_size=1, max_size=len(projections) + 1)
    try:
        js = nc.jetstream(timeout=API_TIMEOUT_SECONDS)
        stream = settings.subjects.events_stream
        info = await js.stream_info(stream)
        end = info.state.last_seq if until is None else until
        only = _filter(info.config.subjects, settings)
        start = min(
            [await _start(pool, p, js, settings, from_seq, from_time, only) for p in projections]
        )
        if start > end:
            return Rebuilt(end, {})
        names = [p.name for p in projections]
        # A pull consumer without acknowledgements: the checkpoints live in the rebuilt
        # database, and a rebuild that stops resumes from them. Pull, not push: an ordered
        # push consumer was measured to outrun a rebuild (900 MB resident at 250,000 of a
        # million events, then messages dropped as a slow consumer); a pull consumer only
        # sends what was asked for.
        consumer = await js.add_consumer(
            stream,
            ConsumerConfig(
                filter_subject=only,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=60,
                mem_storage=True,
            ),
        )
        puller = await Puller.of(js, stream, consumer.name).start()
        # Reading and decoding the next batches overlaps with PostgreSQL writing this one;
        # the queue's bound keeps memory flat however long the log.
        batches: asyncio.Queue[list[Received]] = asyncio.Queue(PREFETCH_BATCHES)
        reader = asyncio.create_task(_read(puller, end, batches, keep))
        bar = tqdm(
            total=end - start + 1, unit="ev", desc=", ".join(names), disable=not show_progress
        )
        done, going, stops = start - 1, list(projections), {}
        try:
            while done < end:
                received = await _next(batches, reader)
                # Each projection has its own tables and checkpoint: write them side by
                # side, so that one's round trips overlap the others'.
                progress = await asyncio.gather(*(project(pool, p, received) for p in going))
                if any(g.missing is not None for g in progress):
                    raise RuntimeError(f"the log was read with a gap before {received[-1].seq}")
                stops.update({s.projection: s for s in (g.stop for g in progress) if s})
                going = [p for p in going if p.name not in stops]
                if not going:
                    break
                bar.update(received[-1].seq - done)
                done = received[-1].seq
        finally:
            bar.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await puller.close()
            with contextlib.suppress(Exception):  # else it goes once inactive for a minute
                await js.delete_consumer(stream, consumer.name)
        return Rebuilt(done, stops)
    finally:
        await pool.close()
        await nc.close()


async def _read(
    puller: Puller,
    end: int,
    batches: asyncio.Queue[list[Received]],
    keep: Callable[[str], bool] | None = None,
) -> None:
    """Pull and decode the log up to ``end`` into ``batches`` (one pull request in flight,
    up to ``PREFETCH_BATCHES`` decoded batches waiting)."""
    read = 0
    while read < end:
        msgs = await puller.pull(BATCH, PULL_WAIT_SECONDS)
        msgs = [m for m in msgs if m.metadata.sequence.stream <= end]
        if msgs:
            received = receive(msgs, keep)
            read = received[-1].seq
            await batches.put(received)


async def _next(batches: asyncio.Queue[list[Received]], reader: asyncio.Task[None]):
    """The next batch, or the reader's error if it stopped."""
    getter = asyncio.ensure_future(batches.get())
    await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    reader.result()  # raises what stopped it
    raise RuntimeError("the log ended before the sequence the rebuild was to reach")


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Raise the garbage collector's thresholds while rebuilding: with thousands of
    messages in flight, the default ones run a collection every few hundred events, each
    walking them all (measured: 20-30% more events per second, the same peak memory)."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _filter(stream_subjects: list[str] | None, settings: Settings) -> str | None:
    """The filter a rebuild's consumer needs: none when the stream holds the complaint
    events alone. A filter makes the server count what is pending for it when the consumer
    is created, over every block of the log: more than five minutes of nats-server CPU on
    a 10-million-event log (``make bench-scale``), where an unfiltered one took no time."""
    everything = settings.subjects.all_events
    return None if list(stream_subjects or []) == [everything] else everything


async def _start(
    pool: asyncpg.Pool,
    projection: Projection,
    js: JetStreamContext,
    settings: Settings,
    from_seq: int,
    from_time: datetime | None,
    only: str | None,
) -> int:
    """Where to begin: after the target's checkpoint if it has one, else at the asked
    sequence or time (a rebuild from the middle covers only what follows)."""
    last = await pool.fetchval(
        "SELECT last_seq FROM projection_checkpoints WHERE projection = $1", projection.name
    )
    if last:
        return last + 1
    if from_time is not None:
        stream = settings.subjects.events_stream
        probe = await js.add_consumer(
            stream,
            ConsumerConfig(
                filter_subject=only,
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=from_time.isoformat(),
                ack_policy=AckPolicy.NONE,
                inactive_threshold=60,
            ),
        )
        puller = await Puller.of(js, stream, probe.name).start()
        try:
            first = await puller.pull(1, 2)
            if first:
                from_seq = first[0].metadata.sequence.stream
            else:  # nothing at or after that time
                from_seq = (await js.stream_info(stream)).state.last_seq + 1
        finally:
            await puller.close()
            with contextlib.suppress(Exception):
                await js.delete_consumer(stream, probe.name)
    # The projection refuses to skip a sequence: tell it where this rebuild begins.
    await pool.execute(
        """INSERT INTO projection_checkpoints (projection, last_seq) VALUES ($1, $2)
           ON CONFLICT (projection) DO UPDATE SET last_seq = EXCLUDED.last_seq""",
        projection.name,
        from_seq - 1,
    )
    return from_seq


async def _rows(conn: asyncpg.Connection, table: str, keys: Iterable[str]):
    order = ", ".join(keys)
    async for row in conn.cursor(f"SELECT * FROM {table} ORDER BY {order}", prefetch=1000):
        yield dict(row)


async def compare(
    live_url: str, rebuilt_url: str, projection: Projection
) -> AsyncIterator[Difference]:
    """Every difference between the live and the rebuilt tables, in key order."""
    live = await asyncpg.connect(live_url)
    rebuilt = await asyncpg.connect(rebuilt_url)
    try:
        for table, keys in projection.tables:
            async with live.transaction(readonly=True), rebuilt.transaction(readonly=True):
                left, right = _rows(live, table, keys), _rows(rebuilt, table, keys)
                a, b = await anext(left, None), await anext(right, None)
                while a is not None or b is not None:
                    ka = tuple(a[k] for k in keys) if a is not None else None
                    kb = tuple(b[k] for k in keys) if b is not None else None
                    if kb is None or (ka is not None and ka < kb):
                        yield Difference(table, ka, "missing", a, None)
                        a = await anext(left, None)
                    elif ka is None or kb < ka:
                        yield Difference(table, kb, "extra", None, b)
                        b = await anext(right, None)
                    else:
                        if a != b:
                            yield Difference(table, ka, "changed", a, b)
                        a, b = await anext(left, None), await anext(right, None)
    finally:
        await live.close()
        await rebuilt.close()


class LiveMovedOn(Exception):
    """The live projection is ahead of the rebuild: catch up before swapping."""


async def swap(live_url: str, rebuilt_url: str, projection: Projection) -> int:
    """Replace the live tables by the rebuilt ones; returns the new checkpoint."""
    live = await asyncpg.connect(live_url)
    rebuilt = await asyncpg.connect(rebuilt_url)
    try:
        rebuilt_last = await rebuilt.fetchval(
            "SELECT last_seq FROM projection_checkpoints WHERE projection = $1", projection.name
        )
        async with live.transaction():
            live_last = await live.fetchval(
                """INSERT INTO projection_checkpoints (projection) VALUES ($1)
                   ON CONFLICT (projection) DO UPDATE SET projection = EXCLUDED.projection
                   RETURNING last_seq""",
                projection.name,
            )  # holds the row: the live consumer waits until the swap commits
            if live_last > rebuilt_last:
                raise LiveMovedOn(f"live at {live_last}, rebuild at {rebuilt_last}")
            tables = [t for t, _ in projection.tables]
            await live.execute(f"TRUNCATE {', '.join(tables)}")
            for table in tables:
                await _copy(rebuilt, live, table)
            await live.execute(
                "UPDATE projection_checkpoints SET last_seq = $2 WHERE projection = $1",
                projection.name,
                rebuilt_last,
            )
        return rebuilt_last
    finally:
        await live.close()
        await rebuilt.close()


async def _copy(source: asyncpg.Connection, target: asyncpg.Connection, table: str) -> None:
    """Stream ``table`` from one database to the other with COPY, chunk by chunk."""
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)

    async def produce() -> None:
        try:
            await source.copy_from_query(f"SELECT * FROM {table}", output=chunks.put)
        finally:
            await chunks.put(None)

    async def consume() -> AsyncIterator[bytes]:
        while (chunk := await chunks.get()) is not None:
            yield chunk

    schema, _, name = table.rpartition(".")
    producer = asyncio.create_task(produce())
    await target.copy_to_table(name, schema_name=schema or None, source=consume())
    await producer


async def replay(
    settings: Settings,
    names: list[str],
    *,
    mode: str,
    from_seq: int = 1,
    from_time: datetime | None = None,
    show_progress: bool = True,
    partitions: int = 1,
) -> dict[str, Verdict]:
    """Rebuild each named projection (all when ``names`` is empty), honouring the skip
    decisions recorded for the live one, then ``verify`` (the differences are returned) or
    ``swap`` (refused for a projection whose rebuild stopped: it would lose events). With
    ``partitions`` above one, the rebuild runs in that many processes, split by complaint
    (``lapor.ops.partitions``)."""
    assert settings.database_url is not None
    projections = installed_projections()
    unknown = set(names) - set(projections)
    if unknown:
        raise ValueError(f"unknown projection(s) {sorted(unknown)}; have {sorted(projections)}")
    async with rebuild_target(settings) as target:
        return await _replay(
            settings,
            target,
            [projections[name] for name in names or sorted(projections)],
            mode=mode,
            from_seq=from_seq,
            from_time=from_time,
            show_progress=show_progress,
            partitions=partitions,
        )


async def _replay(
    settings: Settings,
    target: str,
    chosen: list[Projection],
    *,
    mode: str,
    from_seq: int,
    from_time: datetime | None,
    show_progress: bool,
    partitions: int = 1,
) -> dict[str, Verdict]:
    assert settings.database_url is not None
    skips = await skip_decisions(settings.database_url, chosen)
    await _record_skips(target, skips)
    if partitions > 1:
        from lapor.ops.partitions import rebuild_partitioned

        rebuilt = await rebuild_partitioned(
            settings, chosen, target, partitions, from_seq=from_seq, from_time=from_time
        )
    else:
        rebuilt = await rebuild(
            settings,
            chosen,
            target,
            from_seq=from_seq,
            from_time=from_time,
            show_progress=show_progress,
        )
    report: dict[str, Verdict] = {}
    for projection in chosen:
        name = projection.name
        verdict = report[name] = Verdict(stopped=rebuilt.stops.get(name), skipped=skips[name])
        if mode == "verify":
            verdict.differences = [
                d async for d in compare(settings.database_url, target, projection)
            ]
        elif verdict.stopped is None:
            await _swap_caught_up(settings, target, projection)
    return report


async def _swap_caught_up(settings: Settings, target: str, projection: Projection) -> None:
    assert settings.database_url is not None
    for _ in range(CATCH_UP_ATTEMPTS):
        try:
            last = await swap(settings.database_url, target, projection)
            log.info("projection swapped", projection=projection.name, checkpoint=last)
            return
        except LiveMovedOn:  # events arrived meanwhile: apply them too, then again
            await rebuild(settings, [projection], target, show_progress=False)
    raise RuntimeError(f"{projection.name}: the live projection kept moving; try again")


async def _record_skips(url: str, skips: dict[str, list[Skip]]) -> None:
    """The live decisions, into the rebuild's database: its projections read them there."""
    rows = [
        (name, *(getattr(s, f) for f in SKIP_COLUMNS)) for name, ss in skips.items() for s in ss
    ]
    if not rows:
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "projection_skips", records=rows, columns=("projection", *SKIP_COLUMNS)
        )
    finally:
        await conn.close()
