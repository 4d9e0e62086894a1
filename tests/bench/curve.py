"""The replay phase's curve mode (``--curve 100000,1000000``): the helpers that need no
servers. One log grows to each size in turn; the figures measured at a size carry it in
their key (``replay.tracker.status@1000000``) and in their label (``@ 1M``), and the table
shows each figure's rows one after another, smallest log first."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# The figures of a size, in the table's order (a row per size under each).
ORDER = (
    "b.ordered",
    "replay.analytics.completion",
    "replay.analytics.facts",
    "replay.tracker.status",
    "replay.all",
    "replay.all.minutes",
    "replay.peak_rss",
    "b.get_literal",
    "replay.load",
    "replay.load.p99",
    "router.p50",
    "router.p99",
    "router.cpu",
    "action.p50",
    "action.p99",
    "action.cpu",
)

# What the log and a rebuilt database take on disk per event before anything is measured
# (a little above what 20,000 to 1,000,000 events took on this machine).
PRIOR_LOG_BYTES_PER_EVENT = 1100
PRIOR_DATABASE_BYTES_PER_EVENT = 1000
SPARE_BYTES = 2 * 2**30  # PostgreSQL's WAL, nats-server's indexes, the logs


class DiskTooSmall(RuntimeError):
    """Not enough free disk for the largest log of the curve (and its rebuilt database)."""


def parse_sizes(text: str) -> list[int]:
    """``"100000,1_000_000"`` or ``"100k,1M"`` -> [100000, 1000000] (sorted, unique)."""
    sizes = set()
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        scale = {"k": 1_000, "m": 1_000_000}.get(part[-1], 1)
        number = part[:-1] if scale > 1 else part
        size = round(float(number) * scale)
        if size < 6:
            raise ValueError(f"a log of {part!r} events holds no whole complaint")
        sizes.add(size)
    if not sizes:
        raise ValueError("no sizes given")
    return sorted(sizes)


def human(n: int) -> str:
    """100000 -> ``100k``, 1000000 -> ``1M``, 2500000 -> ``2.5M``."""
    for scale, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return str(n)


def key(base: str, size: int) -> str:
    return f"{base}@{size}"


def base_of(figure_key: str) -> str:
    return figure_key.partition("@")[0]


def size_of(figure_key: str) -> int | None:
    _, at, size = figure_key.partition("@")
    return int(size) if at else None


def ordered(figures: Sequence[T], key_of: Any) -> list[T]:
    """The curve's figures grouped by figure (``ORDER``), each group in the order its rows
    were added (smallest log first); figures not of a size come first, as added."""

    def rank(f: T) -> int:
        k = key_of(f)
        if size_of(k) is None:
            return -1
        base = base_of(k)
        return ORDER.index(base) if base in ORDER else len(ORDER)

    return sorted(figures, key=rank)


def spread(items: Sequence[T], count: int, phase: float = 0.5) -> list[T]:
    """``count`` items evenly spaced over ``items`` (all of them if fewer), each at
    ``phase`` (0..1) of its share: two phases pick disjoint items when there are enough."""
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[min(len(items) - 1, int((n + phase) * step))] for n in range(count)]


def disk_usage(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (like ``du``)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total


def bytes_needed(
    have_events: int, largest: int, log_bytes_per_event: float, database_bytes_per_event: float
) -> int:
    """What growing the log from ``have_events`` to ``largest`` events and rebuilding a
    read-model database of the largest log (one at a time: each is dropped after its
    check) still needs, with a tenth spare and room for the WAL and logs."""
    log = max(0, largest - have_events) * log_bytes_per_event
    database = largest * database_bytes_per_event
    return int(1.1 * (log + database) + SPARE_BYTES)


def check_disk(
    path: Path,
    have_events: int,
    largest: int,
    log_bytes_per_event: float,
    database_bytes_per_event: float,
    measured_at: int | None,
) -> dict[str, Any]:
    """Raise ``DiskTooSmall`` (a message saying what is needed, where and why) when the
    filesystem of ``path`` has not room for the rest of the curve."""
    need = bytes_needed(have_events, largest, log_bytes_per_event, database_bytes_per_event)
    free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
    basis = f"measured at {human(measured_at)} events" if measured_at else "an estimate made before"
    found = {
        "free_bytes": free,
        "needed_bytes": need,
        "log_bytes_per_event": round(log_bytes_per_event, 1),
        "database_bytes_per_event": round(database_bytes_per_event, 1),
        "basis": basis,
    }
    if need > free:
        raise DiskTooSmall(
            f"not enough disk for a {largest:,}-event log: it needs ~{need / 2**30:,.1f} GiB "
            f"({log_bytes_per_event:,.0f} bytes per event in the log and "
            f"{database_bytes_per_event:,.0f} in a rebuilt database, {basis}, plus "
            f"{SPARE_BYTES / 2**30:.0f} GiB spare) and {path} has {free / 2**30:,.1f} GiB "
            "free. Free some, or point TMPDIR at a larger disk (the bench's servers keep "
            "their data in a temporary folder)."
        )
    return found
