"""Rebuilding read models in partitions by complaint: one process per core.

A rebuild in one process is bound by one core (decoding the log and folding events in
Python). Split by complaint, it is not: partition ``i`` of ``N`` reads the whole log (with
the batch pull loop, cheaply) but decodes and applies only the events of the complaints
whose stable hash is its share, ``crc32(complaint_id) % N`` (never Python's ``hash()``,
which differs per process). The complaint is in the subject
(``<root>.complaint.<id>.<type>``), so the other events pass by undecoded; a complaint's
events all fall in one share and keep their log order there.

Only a projection whose rows are disjoint by complaint may be split: it declares
``disjoint_by_complaint = True`` (tracker.status, analytics.facts). One that keeps a row
several complaints write (analytics.completion's ``analytics.opds``: the name of an OPD,
set by the latest disposal to it) would have its partitions race on that row, and the
last to commit, not the last in the log, would win; it is rebuilt whole, in a process of
its own beside the partitions. A projection that declares nothing is rebuilt whole too.

Checkpoints: partition ``i`` of ``N`` of projection ``P`` keeps its own row
``P#i/N`` in ``projection_checkpoints`` of the rebuild database (and honours the live
``P``'s skip decisions, copied under that name). Every partition stops at the same end,
the log's last sequence when the rebuild began; when all are there, ``P``'s own
checkpoint is set to that end, from where a catch-up or the live projection carries on
(replay's compare and swap are unchanged). A rebuild interrupted and started again on the
same database resumes each partition from its own checkpoint; a partition without one
starts from ``P``'s checkpoint if there is one (an earlier rebuild in another number of
partitions), else from the asked sequence or time.

Choosing N: the cores of the rebuild Job (``lapor replay --partitions``; by default the
CPUs the process may use, its container's CPU limit included, at most ``MAX_PARTITIONS``).
Each partition is a process of its own (about 150 MB, its own connections: one to
NATS, two or three to PostgreSQL), and each reads the whole log: more partitions than
cores only add reading, and the cores PostgreSQL and NATS use count too when they run on
the same machine (measured on a shared two-core machine with both on it: two partitions
were no faster than one).

Live projections could be scaled the same way, and are not yet: instance ``i`` of ``N``
(``LAPOR_PROJECTION_PARTITION=i/N``) would follow the log with a durable consumer of its
own (``tracker_status_p0_3``) and the checkpoint row ``P#i/N``, applying its share and
acknowledging every event. What stands in the way is everything that takes ``P``'s one
checkpoint row for the read model's position: replay's swap holds that row to keep the
live consumer out while it replaces the tables (with partitions it would have to hold all
``N``), analytics reads it as the sequence its figures include, and the health, metrics
and ``lapor projections`` commands report one row per projection. ``N`` of a live
projection would be changed by a rebuild into fresh partitions (``--partitions`` new
``N``, then a swap that writes the ``N`` new checkpoint rows), never in place: the
partitions' checkpoints of one ``N`` say nothing about another's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import multiprocessing
import os
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from lapor.shared.subjects import Subjects

if TYPE_CHECKING:  # the command imports this module for its flags: nothing heavy at import
    import asyncpg

    from lapor.ops.replay import Rebuilt
    from lapor.services.projections import Applied, Projection
    from lapor.services.settings import Settings

log = structlog.get_logger(__name__)

MAX_PARTITIONS = 16


def default_partitions() -> int:
    """One partition per CPU this process may use, at most ``MAX_PARTITIONS``."""
    return max(1, min(available_cpus(), MAX_PARTITIONS))


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may use: those it may run on, fewer if its control group's
    CPU quota allows fewer (a container's ``limits.cpu``: ``os.cpu_count()`` counts the
    node's, and a Job limited to one CPU would start one process per CPU of the node)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = _cpu_quota(cgroup)
    if quota is not None:
        cpus = min(cpus or 1, max(1, math.ceil(quota)))
    return cpus or 1


def _cpu_quota(cgroup: Path) -> float | None:
    """The CPU quota in CPUs (cgroup v2 ``cpu.max``, or v1's CFS files); None if none."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def share_of(complaint_id: str, count: int) -> int:
    """The partition (of ``count``) a complaint's events belong to: the same in every
    process and on every machine."""
    return zlib.crc32(complaint_id.encode()) % count


def in_share(subjects: Subjects, index: int, count: int) -> Callable[[str], bool]:
    """Whether an event's subject is of a complaint in share ``index`` of ``count``, read
    from the subject alone (``<root>.complaint.<id>.<type>``)."""
    prefix = subjects.complaint("", "").removesuffix(".")  # "<root>.complaint."
    at = len(prefix)

    def keep(subject: str) -> bool:
        complaint_id = subject[at:].split(".", 1)[0]
        return zlib.crc32(complaint_id.encode()) % count == index

    return keep


def partitionable(projection: Projection) -> bool:
    """Whether the projection declared its rows disjoint by complaint."""
    return getattr(projection, "disjoint_by_complaint", False) is True


def share_name(name: str, index: int, count: int) -> str:
    """The checkpoint (and skip decisions) of one partition of a projection."""
    return f"{name}#{index}/{count}"


@dataclass(frozen=True)
class Share:
    """One partition of a projection: its own name (checkpoint), the same tables and
    code. The reader gives it only its share's events."""

    projection: Projection
    index: int
    count: int

    @property
    def name(self) -> str:
        return share_name(self.projection.name, self.index, self.count)

    @property
    def tables(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return self.projection.tables

    async def apply(self, conn: asyncpg.Connection, batch: Sequence[Applied]) -> None:
        await self.projection.apply(conn, batch)


async def rebuild_partitioned(
    settings: Settings,
    projections: Sequence[Projection],
    target_url: str,
    partitions: int,
    *,
    from_seq: int = 1,
    from_time: datetime | None = None,
) -> Rebuilt:
    """``replay.rebuild`` in ``partitions`` processes (plus one for the projections that
    cannot be split), all to the log's end as it is now; then each split projection's
    checkpoint is set to where all its partitions are."""
    from lapor.ops.replay import Rebuilt
    from lapor.services.projections import Stop

    split = [p for p in projections if partitionable(p)]
    whole = [p for p in projections if not partitionable(p)]
    end = await _log_end(settings)
    await _prepare_shares(target_url, split, partitions)
    jobs: list[tuple[list[str], int | None]] = []
    if split:
        names = [p.name for p in split]
        jobs += [(names, i) for i in range(partitions)]
    if whole:
        jobs.append(([p.name for p in whole], None))
    log.info(
        "rebuilding in partitions",
        partitions=partitions,
        split=[p.name for p in split],
        whole=[p.name for p in whole],
        end=end,
    )
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(len(jobs), mp_context=context) as pool:
        results = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool,
                    _rebuild_in_process,
                    settings,
                    names,
                    target_url,
                    index,
                    partitions,
                    from_seq,
                    from_time,
                    end,
                )
                for names, index in jobs
            )
        )
    stops: dict[str, Stop] = {}
    for rebuilt in results:
        for name, stop in rebuilt.stops.items():
            base = name.split("#", 1)[0]
            if base not in stops or stop.seq < stops[base].seq:
                stops[base] = Stop(base, stop.seq, stop.subject, stop.reason)
    last = await _join_checkpoints(target_url, split, partitions)
    return Rebuilt(min([end, *last.values()]), stops)


async def _log_end(settings: Settings) -> int:
    import nats

    nc = await nats.connect(settings.nats_servers)
    try:
        info = await nc.jetstream().stream_info(settings.subjects.events_stream)
        return info.state.last_seq
    finally:
        await nc.close()


async def _prepare_shares(url: str, split: Sequence[Projection], count: int) -> None:
    """Each partition honours the projection's skip decisions, and one without a
    checkpoint starts where the projection's own checkpoint is (if it has one)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            for p in split:
                for i in range(count):
                    name = share_name(p.name, i, count)
                    await conn.execute(
                        """INSERT INTO projection_skips
                               (projection, seq, subject, reason, decided_by, decided_at, error)
                           SELECT $2, seq, subject, reason, decided_by, decided_at, error
                           FROM projection_skips WHERE projection = $1
                           ON CONFLICT DO NOTHING""",
                        p.name,
                        name,
                    )
                    await conn.execute(
                        """INSERT INTO projection_checkpoints (projection, last_seq)
                           SELECT $2, last_seq FROM projection_checkpoints
                           WHERE projection = $1 AND last_seq > 0
                           ON CONFLICT DO NOTHING""",
                        p.name,
                        name,
                    )
    finally:
        await conn.close()


async def _join_checkpoints(url: str, split: Sequence[Projection], count: int) -> dict[str, int]:
    """Set each split projection's checkpoint to the least of its partitions' (the end,
    when none stopped); returns them."""
    import asyncpg

    conn = await asyncpg.connect(url)
    found: dict[str, int] = {}
    try:
        async with conn.transaction():
            for p in split:
                names = [share_name(p.name, i, count) for i in range(count)]
                least = await conn.fetchval(
                    "SELECT min(last_seq) FROM projection_checkpoints WHERE projection = ANY($1)",
                    names,
                )
                if least is None:
                    continue
                found[p.name] = least
                await conn.execute(
                    """INSERT INTO projection_checkpoints (projection, last_seq) VALUES ($1, $2)
                       ON CONFLICT (projection) DO UPDATE SET
                           last_seq = greatest(projection_checkpoints.last_seq, $2),
                           updated_at = now()""",
                    p.name,
                    least,
                )
    finally:
        await conn.close()
    return found


def _rebuild_in_process(
    settings: Settings,
    names: list[str],
    target_url: str,
    index: int | None,
    count: int,
    from_seq: int,
    from_time: datetime | None,
    end: int,
) -> Rebuilt:
    """In a child process: rebuild share ``index`` of ``count`` of the named projections
    (or, with ``index`` None, the whole of them) up to ``end``."""
    began = time.monotonic()
    from lapor.ops.replay import installed_projections, rebuild
    from lapor.services.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format)  # a spawned process: anew

    installed = installed_projections()
    projections: list[Projection] = [installed[n] for n in names]
    keep = None
    if index is not None:
        projections = [Share(p, index, count) for p in projections]
        keep = in_share(settings.subjects, index, count)
    ready = time.monotonic()
    rebuilt = asyncio.run(
        rebuild(
            settings,
            projections,
            target_url,
            from_seq=from_seq,
            from_time=from_time,
            show_progress=False,
            until=end,
            keep=keep,
        )
    )
    log.info(
        "partition rebuilt",
        partition="whole" if index is None else f"{index}/{count}",
        projections=names,
        last_seq=rebuilt.last_seq,
        start_seconds=round(ready - began, 1),
        rebuild_seconds=round(time.monotonic() - ready, 1),
    )
    return rebuilt
