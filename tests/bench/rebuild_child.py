"""Projections rebuilt from the log into a fresh database, in a process of its own so
that its peak memory is its own: prints one JSON line with the events applied, the
seconds, and the process's CPU and peak resident memory (VmHWM). Several projections
(comma-separated) are rebuilt together, from one read of the log, as ``lapor replay`` does.

    python tests/bench/rebuild_child.py NATS_URL LIVE_DATABASE_URL SUBJECT_ROOT NAME[,NAME]
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import warnings
from pathlib import Path

import asyncpg
import nats
import psutil

from lapor.ops.replay import fresh_database, installed_projections, rebuild
from lapor.services.logging import configure_logging
from lapor.services.settings import Settings

PROGRESS_SECONDS = 15


async def progress(target_url: str, names: list[str], total: int, began: float) -> None:
    """A line on stderr every few seconds: where the rebuild is and how fast it goes."""
    conn = await asyncpg.connect(target_url)
    try:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            done = await conn.fetchval(
                "SELECT min(last_seq) FROM projection_checkpoints WHERE projection = ANY($1)",
                names,
            )
            done = done or 0
            elapsed = time.perf_counter() - began
            rss = psutil.Process().memory_info().rss / 2**20
            print(
                f"  rebuild {', '.join(names)}: {done:,}/{total:,} events,"
                f" {done / elapsed:,.0f} ev/s,"
                f" rss {rss:,.0f} MB",
                file=sys.stderr,
                flush=True,
            )
    finally:
        await conn.close()


async def main(nats_url: str, live_url: str, root: str, name: str) -> dict:
    settings = Settings(
        nats_url=nats_url,
        database_url=live_url,
        subject_root=root,
        log_level="WARNING",
        log_format="json",
    )
    configure_logging(settings.log_level, settings.log_format)
    names = name.split(",")
    projections = [installed_projections()[n] for n in names]
    label = "all" if len(names) > 1 else name.replace(".", "_")
    target = await fresh_database(live_url, f"{root}_{label}")
    rss_before = psutil.Process().memory_info().rss
    cpu_before = time.process_time()
    nc = await nats.connect(nats_url)
    total = (await nc.jetstream().stream_info(settings.subjects.events_stream)).state.last_seq
    await nc.close()
    began = time.perf_counter()
    reporter = asyncio.create_task(progress(target, names, total, began))
    try:
        last = (await rebuild(settings, projections, target, show_progress=False)).last_seq
    finally:
        reporter.cancel()
    seconds = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "projection": name,
        "events": last,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu_before,
        "process_cpu_seconds": usage.ru_utime + usage.ru_stime,
        "rss_before_bytes": rss_before,
        "peak_rss_bytes": peak_rss(),
        "target": target,
    }


def peak_rss() -> int:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries that over
    from the forking parent's pages, which would count the benchmark driver's memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    result = asyncio.run(main(*sys.argv[1:5]))
    print(json.dumps(result), flush=True)
