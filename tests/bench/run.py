"""System benchmark: baselines, intake, pipeline and replay, measured in one run on the
same servers, printed as one table and written as JSON.

    .venv/bin/python tests/bench/run.py [--curve SIZES | --events N] [--complaints N]
        [--json FILE]

It starts its own embedded nats-server and PostgreSQL in a temporary folder (removed at
the end) and runs every service as production does, ``lapor serve NAME`` under uvicorn,
one process each. Every phase has a subject root and a database of its own:

* baselines: raw nats-py publish (Nats-Msg-Id, 256 in flight; publish_async), ack latency
  at the pipeline's offered rate, PostgreSQL upsert of 500 rows per transaction (unnest)
  with a checkpoint; the ordered-consumer replay baseline runs on the replay log;
* intake: ``POST /complaints`` (demo complaints, each with an Idempotency-Key) from a fixed
  number of clients in closed loop: accepted/s, p50/p99. The clients use the lean HTTP/1.1
  client of ``loadgen.py``: httpx.AsyncClient costs ~9 ms of CPU per request at 64
  connections and, on 2 cores, would measure itself (a short httpx run is kept beside, for
  comparison);
* pipeline: intake -> router -> tracker + analytics. (a) Flat out: complaints/s from the
  first submission until the router has nothing pending and every projection's checkpoint
  is at the log's last sequence; (b) offered at a fixed rate (``--rate``), and again at
  half the flat-out rate: latency from submission to the complaint's first row in the
  tracker (a poller reads ``tracker.history`` every 10 ms);
* replay: a log of ``--events`` events (six per complaint: received, routed, disposed,
  followed up, resolved, closed) rebuilt into a fresh database by ``lapor.ops.replay
  .rebuild`` for every installed projection, one at a time, each in its own process (its
  peak RSS is the memory figure). With ``--curve SIZES`` (``make bench``: 100000,1000000;
  ``make bench-scale``: up to 10,000,000) the same at each size of one log grown by
  appending, beside the raw ordered replay of that size, with ``EventStore.load``, the
  router's decision path and a tracker action measured on it too (see ``curve.py``,
  ``paths.py`` and the README).

Every phase also records the CPU seconds of each process (this driver, each service,
nats-server, PostgreSQL) and of the rest of the machine: others' load skews the figures
(``--wait-quiet`` waits for an idle machine first). Notes under the table say, for each
missed target, what bounds it and what would lift it.

``--py-spy PATH`` also records 20 s profiles of the services during the flat-out pipeline
and of each rebuild, and prints their hot spots (profiling slows what it watches: take the
figures from a run without it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import psutil

sys.path.insert(0, str(Path(__file__).parent))

from baselines import (
    Rate,
    history_reads,
    ordered_replay,
    percentile,
    pg_batched_upsert,
    publish_async,
    publish_in_flight,
    publish_paced,
    pull_fetch_ack,
)
from curve import (
    PRIOR_DATABASE_BYTES_PER_EVENT,
    PRIOR_LOG_BYTES_PER_EVENT,
    DiskTooSmall,
    check_disk,
    disk_usage,
    human,
    parse_sizes,
    size_of,
    spread,
)
from curve import key as curve_key
from curve import ordered as order_curve
from loadgen import LeanClient
from natswire import LeanPublisher
from paths import action_costs, route_costs
from system import CpuMeter, services
from workload import EVENTS_PER_COMPLAINT, EventLog, Submissions, received_envelope_json

from lapor.devtools.infra import infrastructure
from lapor.ops.replay import installed_projections
from lapor.services.bootstrap import bootstrap
from lapor.services.database import with_database
from lapor.services.logging import configure_logging
from lapor.services.settings import Settings

HERE = Path(__file__).parent
SERVICES = ["intake", "router", "tracker", "analytics"]
TRACKER, ANALYTICS = "tracker.status", "analytics.completion"
Client = LeanClient | httpx.AsyncClient


# --- figures -------------------------------------------------------------------------


@dataclass
class Figure:
    key: str
    figure: str
    value: float
    unit: str
    baseline: str | None = None  # key of the baseline figure
    baseline_value: float | None = None
    target: str | None = None
    met: bool | None = None
    higher_is_better: bool = True

    @property
    def ratio(self) -> float | None:
        if self.baseline_value in (None, 0) or math.isnan(self.value):
            return None
        return self.value / self.baseline_value


@dataclass
class Report:
    started_at: str
    machine: dict[str, Any]
    parameters: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def get(self, key: str) -> Figure | None:
        return next((f for f in self.figures if f.key == key), None)

    def against(self, key: str) -> tuple[str | None, float | None]:
        base = self.get(key)
        return (key, base.value) if base else (None, None)


def fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "ms":
        return f"{value:,.1f} ms"
    if unit == "MB":
        return f"{value:,.0f} MB"
    return f"{value:,.0f} {unit}"


def value(report: Report, key: str) -> float:
    figure = report.get(key)
    return figure.value if figure else float("nan")


def baseline_labels(report: Report) -> dict[str, str]:
    """B1, B2 ... for the baseline rows, numbered by their place in the table."""
    return {f.key: f"B{i}" for i, f in enumerate(report.figures, 1) if f.key.startswith("b.")}


def baseline_name(key: str | None, labels: dict[str, str]) -> str:
    """A baseline row's label (B3), or for a figure set against the same figure on the
    curve's smallest log, that log's size (@ 100k)."""
    if key in labels:
        return labels[key]
    size = size_of(key or "")
    return f"@ {human(size)}" if size else "?"


def table(report: Report) -> str:
    rows = [("figure", "value", "baseline", "ratio", "target", "met?")]
    labels = baseline_labels(report)
    for f in report.figures:
        name = f"[{labels[f.key]}] {f.figure}" if f.key in labels else f.figure
        base = report.get(f.baseline) if f.baseline else None
        rows.append(
            (
                name,
                fmt(f.value, f.unit),
                f"{baseline_name(f.baseline, labels)} {fmt(base.value, base.unit)}" if base else "",
                f"{f.ratio:.2f}x" if f.ratio is not None else "",
                f.target or "",
                {True: "yes", False: "NO", None: ""}[f.met],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        cells = [
            r[i].ljust(widths[i]) if i in (0, 2, 4) else r[i].rjust(widths[i])
            for i in range(len(r))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- helpers ---------------------------------------------------------------------------


async def scoped(settings: Settings, root: str) -> Settings:
    """Settings with their own subject root and database (created, bootstrapped)."""
    assert settings.database_url is not None
    admin = await asyncpg.connect(settings.database_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{root}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{root}"')
    finally:
        await admin.close()
    scoped_settings = settings.model_copy(
        update={"subject_root": root, "database_url": with_database(settings.database_url, root)}
    )
    await bootstrap(scoped_settings)
    return scoped_settings


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def busy(spent: dict[str, float], seconds: float) -> dict[str, Any]:
    """CPU seconds per process, and how many of the machine's cores were busy on average."""
    ours = sum(v for k, v in spent.items() if k != "other processes")
    return {
        "cpu_seconds": spent,
        "wall_seconds": round(seconds, 2),
        "cores": psutil.cpu_count(),
        "cores_busy_benchmark": round(ours / seconds, 2) if seconds else None,
        "cores_busy_other_processes": round(spent.get("other processes", 0) / seconds, 2)
        if seconds
        else None,
    }


@dataclass
class Submitted:
    index: int
    sent: float
    answered: float
    status: int
    tracking_id: str | None


async def submit(client: Client, subs: Submissions, i: int) -> Submitted:
    body, headers = subs.request(i)
    sent = time.perf_counter()
    try:
        r = await client.post("/complaints", content=body, headers=headers)
        status = r.status_code
        tracking_id = r.json().get("tracking_id") if status == 202 else None
    except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError):
        status, tracking_id = 0, None
    return Submitted(i, sent, time.perf_counter(), status, tracking_id)


async def closed_loop(
    client: Client, subs: Submissions, count: int, concurrency: int, offset: int = 0
) -> list[Submitted]:
    """``concurrency`` clients, each submitting its next complaint once answered."""
    todo = iter(range(offset, offset + count))
    done: list[Submitted] = []

    async def client_loop() -> None:
        for i in todo:
            done.append(await submit(client, subs, i))

    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    return done


async def open_loop(
    client: Client, subs: Submissions, rate: float, seconds: float, offset: int = 0
) -> list[Submitted]:
    """Submissions at a fixed offered rate, whatever the answers' latency."""
    loop = asyncio.get_running_loop()
    count = int(rate * seconds)
    began = loop.time()
    tasks = []
    for n in range(count):
        delay = began + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(submit(client, subs, offset + n)))
    return list(await asyncio.gather(*tasks))


def http_client(url: str, concurrency: int, kind: str = "lean") -> Client:
    """The load generator's client: the lean one (see ``loadgen``) or httpx."""
    if kind == "lean":
        return LeanClient(url, concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=60)


def latencies_ms(items: list[Submitted]) -> list[float]:
    return [(s.answered - s.sent) * 1000 for s in items if s.status == 202]


class Visibility:
    """When each complaint's events first appear in the tracker's read model: polls
    ``tracker.history`` (written in the projection's transaction) every 10 ms and notes
    the start of the first query that saw a row."""

    TYPES = ("complaint.received", "complaint.routed")

    def __init__(self, database_url: str, interval: float = 0.01) -> None:
        self.database_url = database_url
        self.interval = interval
        self.seen: dict[tuple[str, str], float] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Visibility:
        self._conn = await asyncpg.connect(self.database_url)
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._conn.close()

    async def _poll(self) -> None:
        last = 0
        while True:
            began = time.perf_counter()
            rows = await self._conn.fetch(
                """SELECT seq, tracking_id, event_type FROM tracker.history
                   WHERE seq > $1 AND event_type = ANY($2::text[]) ORDER BY seq""",
                last,
                list(self.TYPES),
            )
            for r in rows:
                self.seen.setdefault((r["tracking_id"], r["event_type"]), began)
            if rows:
                last = rows[-1]["seq"]
            await asyncio.sleep(self.interval)

    def latencies_ms(self, items: list[Submitted], event_type: str) -> list[float]:
        return [
            (self.seen[(s.tracking_id, event_type)] - s.sent) * 1000
            for s in items
            if s.tracking_id and (s.tracking_id, event_type) in self.seen
        ]

    async def wait_for(self, items: list[Submitted], event_type: str, within: float) -> int:
        """Wait until every accepted complaint of ``items`` shows ``event_type``; returns how
        many are still missing after ``within`` seconds."""
        deadline = time.perf_counter() + within
        while True:
            missing = sum(
                1 for s in items if s.tracking_id and (s.tracking_id, event_type) not in self.seen
            )
            if not missing or time.perf_counter() > deadline:
                return missing
            await asyncio.sleep(0.05)


@functools.cache
def projection_names() -> tuple[str, ...]:
    """The read models the services keep (each has a checkpoint row)."""
    return tuple(sorted(ep.name for ep in entry_points(group="lapor.projections")))


async def backlog(js: Any, conn: asyncpg.Connection, settings: Settings) -> dict[str, int]:
    """What is left to do: messages the router and the agency fan-out have not acked, and
    how far each projection's checkpoint is behind the log's last sequence (read in that
    order, so that nothing the router appends can be missed)."""
    stream = settings.subjects.events_stream
    router = await js.consumer_info(stream, "router")
    fanout = await js.consumer_info(stream, "agency_fanout")
    last = (await js.stream_info(stream)).state.last_seq
    checkpoints = dict(await conn.fetch("SELECT projection, last_seq FROM projection_checkpoints"))
    return {
        "last_seq": last,
        "router": router.num_pending + router.num_ack_pending,
        "agency_fanout": fanout.num_pending + fanout.num_ack_pending,
        **{name: last - checkpoints.get(name, 0) for name in projection_names()},
    }


async def wait_caught_up(
    settings: Settings, within: float, began: float | None = None, fanout: bool = True
) -> dict[str, Any]:
    """Poll the backlog until the router and every projection have caught up (and, with
    ``fanout``, the copies to the agency topics too: not a read model, but work the router
    process shares its CPU with); returns when (perf_counter) each part first reached
    zero, the largest backlogs, and what was left at the end."""
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream(timeout=10)
    conn = await asyncpg.connect(settings.database_url)
    reached: dict[str, float] = {}
    peak: Counter[str] = Counter()
    samples = []
    deadline = time.perf_counter() + within
    try:
        while time.perf_counter() < deadline:
            now = time.perf_counter()
            left = await backlog(js, conn, settings)
            samples.append({"t": round(now - (began or now), 2), **left})
            for k, v in left.items():
                if k == "last_seq":
                    continue
                peak[k] = max(peak[k], v)
                if v == 0:
                    reached.setdefault(k, now)
                else:
                    reached.pop(k, None)
            # Read models count once the router has finished appending too.
            if left["router"] == 0 and all(left[p] == 0 for p in projection_names()):
                reached.setdefault("read models", now)
                if left["agency_fanout"] == 0 or not fanout:
                    break
            else:
                reached.pop("read models", None)
            await asyncio.sleep(0.05)
        return {
            "reached": reached,
            "peak_backlog": dict(peak),
            "left": left,
            "samples": samples[::20],
        }
    finally:
        await conn.close()
        await nc.close()


async def py_spy(
    report: Report, args: argparse.Namespace, name: str, pid: int, delay: float = 2.0
) -> None:
    """Record ``pid`` for ``--profile-seconds`` and keep its hot spots in the report."""
    if not args.py_spy:
        return
    await asyncio.sleep(delay)
    out = args.profile_dir / f"{name}.txt"
    proc = await asyncio.create_subprocess_exec(
        args.py_spy,
        *("record", "--nonblocking", "--function", "--format", "raw", "--rate", "100"),
        "--subprocesses",  # intake may run several worker processes
        *("--duration", str(args.profile_seconds), "--pid", str(pid), "--output", str(out)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await proc.wait()
    if out.exists():
        report.details.setdefault("profiles", {})[name] = hot_spots(out)


def hot_spots(path: Path, top: int = 15) -> dict[str, Any]:
    """From py-spy's collapsed stacks: the functions most often on top of the stack (self)
    and most often anywhere on it (inclusive), as shares of the samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    activities: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        packages[_package(frames[-1])] += n
        activities[_activity(frames)] += n
        for frame in set(frames):
            inclusive[frame] += n
    share = lambda c: [(f, round(100 * n / total, 1)) for f, n in c.most_common(top)]  # noqa: E731
    return {
        "samples": total,
        "by_activity_pct": share(activities),
        "self_by_package_pct": share(packages),
        "self_pct": share(own),
        "inclusive_pct": share(inclusive),
    }


ACTIVITIES: list[tuple[str, tuple[str, ...]]] = [
    # (activity, markers: a sample belongs to the first activity any of whose markers is
    # in one of its frames). Waiting is the event loop's poll on top of the stack.
    ("log reads (get_msg)", ("JetStreamManager.get_msg",)),
    ("appends (publish, await ack)", ("EventStore.append", "EventStore.publish")),
    ("acks", ("Msg.ack ", "Msg.nak ")),
    ("fetch", ("PullSubscription.fetch", "PullSubscription._fetch_n")),
    ("envelope parse + decode", ("StoredEvent.from_msg", "parse (shared/", "decode (shared/")),
    ("PostgreSQL statements (asyncpg)", ("asyncpg/",)),
    (
        "projection/domain code",
        ("domain.py", "read_model.py", "calendar.py", "deadlines.py", "timers.py", "text.py"),
    ),
    ("logging", ("structlog/", "logging/")),
    ("FastStream", ("faststream/", "fast_depends/")),
    (
        "HTTP stack",
        ("starlette/", "fastapi/", "h11", "anyio/", "uvicorn/protocols", "threading.py"),
    ),
    ("nats client", ("nats/",)),
]


def _activity(frames: list[str]) -> str:
    if "EpollSelector.select" in frames[-1]:
        return "waiting for I/O (epoll)"
    for name, markers in ACTIVITIES:
        if any(m in f for f in frames for m in markers):
            return name
    return "asyncio loop, other"


def _package(frame: str) -> str:
    """``write (asyncio/selector_events.py:1037)`` -> ``asyncio``; lapor's own code is
    named by its workspace member (``shared``, ``services``, ``tracker`` ...)."""
    where = frame.rpartition(" (")[2].rstrip(")")
    path = where.rpartition(":")[0] or where
    head = path.split("/", 1)[0]
    return head.removesuffix(".py") or "?"


# --- phases ------------------------------------------------------------------------------


async def phase_baselines(settings: Settings, args: argparse.Namespace, report: Report) -> None:
    raw = await scoped(settings, "bench_raw")
    stream, root = raw.subjects.events_stream, raw.subject_root
    payload = received_envelope_json()
    url = raw.nats_url
    assert url is not None

    say(f"baseline: JetStream publish, Nats-Msg-Id, 256 in flight ({args.publish_count:,})")
    await publish_in_flight(url, root, stream, payload, 2000, 256)  # warm-up
    r256 = await publish_in_flight(url, root, stream, payload, args.publish_count, 256)
    report.add(
        Figure(
            "b.publish256",
            "JetStream publish, Nats-Msg-Id, 256 in flight",
            r256.per_second,
            "msg/s",
        )
    )
    say(f"baseline: the same, {args.concurrency} in flight (ack latency)")
    rc = await publish_in_flight(
        url, root, stream, payload, args.publish_count // 2, args.concurrency
    )
    report.add(
        Figure(
            f"b.publish{args.concurrency}.p50",
            f"JetStream publish ack p50, {args.concurrency} in flight",
            percentile(rc.latencies, 50) * 1000,
            "ms",
        )
    )
    report.add(
        Figure(
            f"b.publish{args.concurrency}.p99",
            f"JetStream publish ack p99, {args.concurrency} in flight",
            percentile(rc.latencies, 99) * 1000,
            "ms",
        )
    )
    say("baseline: publish_async (client-side pipelining, 256 pending)")
    ra = await publish_async(url, root, stream, payload, args.publish_count, 256)
    report.add(
        Figure(
            "b.publish_async",
            "JetStream publish_async, Nats-Msg-Id, 256 pending",
            ra.per_second,
            "msg/s",
        )
    )
    say(f"baseline: publish ack latency at {args.rate:g}/s offered")
    rp = await publish_paced(url, root, stream, payload, args.rate, 10)
    report.add(
        Figure(
            "b.paced.p50",
            f"JetStream publish ack p50 at {args.rate:g}/s",
            percentile(rp.latencies, 50) * 1000,
            "ms",
        )
    )
    report.add(
        Figure(
            "b.paced.p99",
            f"JetStream publish ack p99 at {args.rate:g}/s",
            percentile(rp.latencies, 99) * 1000,
            "ms",
        )
    )
    say("baseline: PostgreSQL upsert, 500 rows per transaction (unnest) + checkpoint")
    assert raw.database_url is not None
    await pg_batched_upsert(raw.database_url, 5000)  # warm-up
    ru = await pg_batched_upsert(raw.database_url, args.upsert_rows)
    report.add(
        Figure(
            "b.upsert", "PostgreSQL upsert 500/tx (unnest) + checkpoint", ru.per_second, "rows/s"
        )
    )


async def phase_intake(
    settings: Settings, args: argparse.Namespace, report: Report, cpu: CpuMeter
) -> None:
    scope = await scoped(settings, "bench_intake")
    subs = Submissions()
    workers = {"intake": args.intake_workers}
    async with services(scope, ["intake"], args.log_dir, args.log_level, workers) as running:
        intake = running["intake"]
        cpu.watch("intake", intake.pid)
        async with http_client(intake.url, args.concurrency) as client:
            say(
                f"intake: warm-up, then {args.complaints:,} complaints"
                f" at {args.concurrency} concurrent"
            )
            await closed_loop(client, subs, 1000, args.concurrency)
            before, began = cpu.snapshot(), time.perf_counter()
            profile = asyncio.create_task(py_spy(report, args, "intake", intake.pid))
            done = await closed_loop(client, subs, args.complaints, args.concurrency, offset=1000)
            seconds = time.perf_counter() - began
            spent = cpu.spent(before, cpu.snapshot())
            await profile
        httpx_run = None
        if args.httpx_complaints:
            say(
                f"intake: {args.httpx_complaints:,} more through httpx.AsyncClient,"
                " same concurrency"
            )
            async with http_client(intake.url, args.concurrency, "httpx") as client:
                await closed_loop(client, subs, 200, args.concurrency, offset=10**6)
                h_before, h_began = cpu.snapshot(), time.perf_counter()
                h_done = await closed_loop(
                    client, subs, args.httpx_complaints, args.concurrency, offset=2 * 10**6
                )
                h_seconds = time.perf_counter() - h_began
                httpx_run = (h_done, h_seconds, cpu.spent(h_before, cpu.snapshot()))
        cpu.forget("intake")
    accepted = [s for s in done if s.status == 202]
    lat = latencies_ms(done)
    key_p50, key_p99 = f"b.publish{args.concurrency}.p50", f"b.publish{args.concurrency}.p99"
    report.add(
        Figure(
            "intake.rate",
            f"intake: accepted complaints/s ({args.concurrency} concurrent)",
            len(accepted) / seconds,
            "/s",
            *report.against("b.publish256"),
            target=">= 2,000/s",
            met=len(accepted) / seconds >= 2000,
        )
    )
    report.add(
        Figure(
            "intake.p50",
            "intake: latency p50",
            percentile(lat, 50),
            "ms",
            *report.against(key_p50),
            higher_is_better=False,
        )
    )
    report.add(
        Figure(
            "intake.p99",
            "intake: latency p99",
            percentile(lat, 99),
            "ms",
            *report.against(key_p99),
            higher_is_better=False,
        )
    )
    report.details["intake"] = {
        "workers": args.intake_workers,
        "complaints": len(done),
        "accepted": len(accepted),
        "statuses": dict(Counter(s.status for s in done)),
        "with_reporter_contact": round(subs.with_reporter, 3),
        "client": "lean keep-alive HTTP/1.1 client (tests/bench/loadgen.py)",
        **busy(spent, seconds),
    }
    if httpx_run:
        h_done, h_seconds, h_spent = httpx_run
        h_accepted = sum(1 for s in h_done if s.status == 202)
        report.add(
            Figure(
                "intake.httpx",
                f"intake driven by httpx.AsyncClient instead ({args.concurrency} concurrent)",
                h_accepted / h_seconds,
                "/s",
                *report.against("b.publish256"),
            )
        )
        report.details["intake_httpx"] = {
            "complaints": len(h_done),
            "accepted": h_accepted,
            "latency_ms": _quantiles(latencies_ms(h_done)),
            "driver_cpu_ms_per_request": round(1000 * h_spent["bench driver"] / len(h_done), 2),
            "lean_driver_cpu_ms_per_request": round(1000 * spent["bench driver"] / len(done), 2),
            **busy(h_spent, h_seconds),
        }


async def paced_run(
    client: Client,
    subs: Submissions,
    seen: Visibility,
    scope: Settings,
    cpu: CpuMeter,
    rate: float,
    seconds: float,
    offset: int,
    fanout: bool = True,
) -> tuple[list[Submitted], dict[str, Any]]:
    """Submit at ``rate`` for ``seconds``; wait until every complaint shows in the tracker
    routed and the read models (and, with ``fanout``, the agency copies: at most 10 min)
    have caught up; latencies in ms."""
    before, began = cpu.snapshot(), time.perf_counter()
    paced = await open_loop(client, subs, rate, seconds, offset=offset)
    submitted = time.perf_counter()
    missing = await seen.wait_for(paced, "complaint.routed", 1800)
    caught = await wait_caught_up(scope, 600, began, fanout=fanout)
    spent = cpu.spent(before, cpu.snapshot())
    tracked = seen.latencies_ms(paced, "complaint.received")
    routed = seen.latencies_ms(paced, "complaint.routed")
    accept = latencies_ms(paced)
    return paced, {
        "offered_per_second": rate,
        "complaints": len(paced),
        "statuses": dict(Counter(s.status for s in paced)),
        "submissions_answered_per_second": round(len(paced) / (submitted - began), 1),
        "not_routed_in_tracker": missing,
        "accepted_ms": _quantiles(accept),
        "tracked_ms": _quantiles(tracked),
        "routed_in_tracker_ms": _quantiles(routed),
        "peak_backlog": caught["peak_backlog"],
        "log_last_seq": caught["left"]["last_seq"],
        **busy(spent, time.perf_counter() - began),
    }


def _quantiles(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values, default=None),
    }


async def phase_pipeline(
    settings: Settings, args: argparse.Namespace, report: Report, cpu: CpuMeter
) -> None:
    scope = await scoped(settings, "bench_pipe")
    assert scope.database_url is not None
    subs = Submissions()
    details: dict[str, Any] = {}
    submitted_total = 0
    workers = {"intake": args.intake_workers}
    async with services(scope, SERVICES, args.log_dir, args.log_level, workers) as running:
        for name, s in running.items():
            cpu.watch(name, s.pid)
        intake = running["intake"]
        async with http_client(intake.url, 256) as client, Visibility(scope.database_url) as seen:
            say("pipeline: warm-up")
            submitted_total += len(await closed_loop(client, subs, 300, 8))
            await wait_caught_up(scope, 300)

            say(
                f"pipeline: {args.complaints:,} complaints flat out ({args.concurrency} concurrent)"
            )
            before, began = cpu.snapshot(), time.perf_counter()
            profiles = [
                asyncio.create_task(py_spy(report, args, f"pipeline-{name}", s.pid))
                for name, s in running.items()
            ]
            flat = await closed_loop(client, subs, args.complaints, args.concurrency, offset=10**6)
            submitted_total += len(flat)
            submitted = time.perf_counter()
            caught = await wait_caught_up(scope, 3600, began, fanout=False)
            spent = cpu.spent(before, cpu.snapshot())
            await asyncio.gather(*profiles)
            reached = caught["reached"]
            accepted = sum(1 for s in flat if s.status == 202)
            done_at = reached.get("read models", float("nan"))
            capacity = accepted / (done_at - began)
            details["flat_out"] = {
                "complaints": len(flat),
                "statuses": dict(Counter(s.status for s in flat)),
                "submissions_seconds": round(submitted - began, 2),
                "intake_accepted_per_second": round(accepted / (submitted - began), 1),
                "caught_up_after_seconds": {k: round(v - began, 2) for k, v in reached.items()},
                "peak_backlog": caught["peak_backlog"],
                "left_when_read_models_caught_up": caught["left"],
                "backlog_samples": caught["samples"],
                **busy(spent, done_at - began),
            }
            say("pipeline: letting the agency fan-out catch up")
            fanout = await wait_caught_up(scope, 1800, time.perf_counter())
            fanout_done = fanout["reached"].get("agency_fanout", float("nan"))
            details["flat_out"]["agency_fanout_caught_up_after_seconds"] = round(
                fanout_done - began, 2
            )
            with_fanout = accepted / (fanout_done - began)

            say(f"pipeline: {args.rate:g} complaints/s offered for {args.pace_seconds:g} s")
            paced, details["paced"] = await paced_run(
                client, subs, seen, scope, cpu, args.rate, args.pace_seconds, 2 * 10**6
            )
            submitted_total += len(paced)
            half = math.floor(capacity / 2)
            if 0 < half < args.rate:
                say(f"pipeline: {half} complaints/s offered (half the flat-out rate)")
                extra, details["paced_half_capacity"] = await paced_run(
                    client, subs, seen, scope, cpu, half, args.pace_seconds, 3 * 10**6, False
                )
                submitted_total += len(extra)
        for name in running:
            cpu.forget(name)
    report.details["pipeline"] = details
    # What each complaint costs in appends to the log and its copies (measured).
    async with _js(scope) as js:
        subjects = scope.subjects
        msgs = {
            s: (await js.stream_info(s)).state.messages
            for s in (subjects.events_stream, subjects.agency_stream, subjects.reporters_stream)
        }
    appends = sum(msgs.values()) / submitted_total
    details["acknowledged_appends_per_complaint"] = round(appends, 2)
    details["log_events_per_complaint"] = round(msgs[subjects.events_stream] / submitted_total, 2)
    base = report.get("b.publish256")
    report.add(
        Figure(
            "b.publish_per_complaint",
            f"[{baseline_labels(report).get('b.publish256', '?')}] / {appends:.2f} appends"
            " per complaint",
            base.value / appends if base else float("nan"),
            "/s",
        )
    )
    report.add(
        Figure(
            "pipeline.rate",
            "pipeline: complaints/s until read models caught up",
            capacity,
            "/s",
            *report.against("b.publish_per_complaint"),
            target=">= 1,000/s",
            met=capacity >= 1000,
        )
    )
    report.add(
        Figure(
            "pipeline.rate_fanout",
            "pipeline: the same, until the agency copies caught up too",
            with_fanout,
            "/s",
            *report.against("b.publish_per_complaint"),
        )
    )
    p = details["paced"]["tracked_ms"]
    label = f"pipeline: submission->tracked %s at {args.rate:g}/s"
    report.add(
        Figure(
            "pipeline.p50",
            label % "p50",
            p["p50"],
            "ms",
            *report.against("b.paced.p50"),
            higher_is_better=False,
        )
    )
    report.add(
        Figure(
            "pipeline.p99",
            label % "p99",
            p["p99"],
            "ms",
            *report.against("b.paced.p99"),
            target="< 250 ms",
            met=p["p99"] < 250,
            higher_is_better=False,
        )
    )
    if "paced_half_capacity" in details:
        h = details["paced_half_capacity"]
        report.add(
            Figure(
                "pipeline.half.p99",
                f"pipeline: submission->tracked p99 at {h['offered_per_second']:g}/s",
                h["tracked_ms"]["p99"],
                "ms",
                *report.against("b.paced.p99"),
                higher_is_better=False,
            )
        )


@contextlib.asynccontextmanager
async def _js(settings: Settings):
    nc = await nats.connect(settings.nats_url)
    try:
        yield nc.jetstream(timeout=30)
    finally:
        await nc.close()


async def generate_log(
    scope: Settings,
    events: int,
    first: int = 0,
    stride: int = 0,
    log: EventLog | None = None,
) -> tuple[Rate, list[str]]:
    """Append ``events`` (rounded up to whole lives) to the scope's log, the lives numbered
    on from ``first``, through the lean publisher (``natswire``: 8,192 acknowledgements
    outstanding at most); returns the rate and the ids of every ``stride``-th complaint
    (by default ~30 spread over what was appended)."""
    complaints = math.ceil(events / EVENTS_PER_COMPLAINT)
    stride = stride or max(1, complaints // 30)
    sample: list[str] = []
    log = log or EventLog()
    stream, root = scope.subjects.events_stream, scope.subject_root
    head = (
        b"NATS/1.0\r\nNats-Msg-Id: %s\r\nLapor-Event-Type: %s\r\nNats-Expected-Stream: "
        + stream.encode()
        + b"\r\n%s\r\n"
    )
    prefix = f"{root}.complaint.".encode()
    async with _js(scope) as js:
        before = (await js.stream_info(stream)).state
    count = started = 0
    began = time.perf_counter()
    assert scope.nats_url is not None
    lives = log.complaints(complaints, first=first, first_seq=before.last_seq + 1)
    async with LeanPublisher(scope.nats_url) as pub:
        for complaint_id, event_type, event_id, data, headers in lives:
            kind = event_type.encode()
            await pub.publish(
                prefix + complaint_id.encode() + b"." + kind,
                head % (event_id.encode(), kind, headers),
                data,
            )
            count += 1
            if event_type == "complaint.received":
                if (first + started) % stride == 0:
                    sample.append(complaint_id)
                started += 1
            if count % 1_000_000 == 0:
                say(f"  {count:,} events appended ({count / (time.perf_counter() - began):,.0f}/s)")
        await pub.flush()
    seconds = time.perf_counter() - began
    async with _js(scope) as js:
        after = (await js.stream_info(stream)).state
    if after.messages - before.messages != count or after.last_seq != before.last_seq + count:
        # The writers' headers name sequences: nothing else may append meanwhile.
        raise RuntimeError(
            f"the log took {after.messages - before.messages} events (up to sequence "
            f"{after.last_seq}), {count} were appended after sequence {before.last_seq}"
        )
    return Rate(count, seconds), sample


def loads_mean(rate: Rate) -> float:
    return rate.seconds / rate.count if rate.count else float("nan")


async def rebuild_in_child(
    scope: Settings,
    name: str,
    report: Report,
    args: argparse.Namespace,
    cpu: CpuMeter,
    profile_it: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "rebuild_child.py"),
        *(scope.nats_url, settings_db(scope), scope.subject_root, name),
        stdout=asyncio.subprocess.PIPE,
    )
    cpu.watch(f"rebuild {name}", proc.pid)
    before, began = cpu.snapshot(), time.perf_counter()
    profile = asyncio.create_task(
        py_spy(report, args, f"rebuild-{name}", proc.pid, delay=10)
        if profile_it
        else asyncio.sleep(0)
    )
    out, _ = await proc.communicate()
    after = cpu.snapshot()
    seconds = time.perf_counter() - began
    cpu.forget(f"rebuild {name}")
    profile.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await profile
    if proc.returncode != 0:
        raise RuntimeError(f"rebuild of {name} failed ({proc.returncode})")
    result = json.loads(out.decode().strip().splitlines()[-1])
    # The child has ended when the second snapshot is taken: count what it reported.
    after[f"rebuild {name}"] = before.get(f"rebuild {name}", 0) + result["process_cpu_seconds"]
    return result, busy(cpu.spent(before, after), seconds)


def settings_db(settings: Settings) -> str:
    assert settings.database_url is not None
    return settings.database_url


async def phase_replay(
    settings: Settings, args: argparse.Namespace, report: Report, cpu: CpuMeter
) -> None:
    scope = await scoped(settings, "bench_replay")
    stream, subject = scope.subjects.events_stream, scope.subjects.all_events
    url = scope.nats_url
    assert url is not None
    say(f"replay: appending a log of {args.events:,} events (6 per complaint)")
    gen, sample_ids = await generate_log(scope, args.events)
    report.details["replay_log"] = {
        "events": gen.count,
        "complaints": gen.count // EVENTS_PER_COMPLAINT,
        "append_seconds": round(gen.seconds, 1),
        "publish_async_per_second": round(gen.per_second),
    }
    say("baseline: ordered-consumer replay of the whole log")
    raw = await ordered_replay(url, stream, subject)
    report.add(
        Figure(
            "b.ordered", f"ordered-consumer replay ({raw.count:,} events)", raw.per_second, "msg/s"
        )
    )
    sample = min(args.events, 200_000)
    say(f"baseline: ordered replay + parse/decode, and pull fetch 500 + ack ({sample:,} each)")
    dec = await ordered_replay(url, stream, subject, limit=sample, decoded=True)
    report.add(
        Figure(
            "b.ordered_decoded", "ordered replay + envelope parse + decode", dec.per_second, "msg/s"
        )
    )
    pull = await pull_fetch_ack(url, stream, subject, sample)
    report.add(Figure("b.pull_ack", "pull consumer, fetch 500, ack each", pull.per_second, "msg/s"))

    say(f"reading {len(sample_ids)} complaints' histories from the log (EventStore.load)")
    before = cpu.snapshot()
    loads, literal = await history_reads(url, scope.subjects, sample_ids)
    spent = cpu.spent(before, cpu.snapshot())
    report.add(
        Figure(
            "b.get_literal",
            f"get_msg, one literal subject, on the {gen.count:,}-event log",
            1000 * loads_mean(literal),
            "ms",
            higher_is_better=False,
        )
    )
    report.add(
        Figure(
            "replay.load",
            f"EventStore.load of one complaint ({EVENTS_PER_COMPLAINT} events) on that log",
            1000 * loads_mean(loads),
            "ms",
            *report.against("b.get_literal"),
            higher_is_better=False,
        )
    )
    report.details["history_reads"] = {
        "complaints": len(sample_ids),
        "load_ms": _quantiles([1000 * x for x in loads.latencies]),
        "literal_get_ms": _quantiles([1000 * x for x in literal.latencies]),
        "nats_server_cpu_ms_per_load": round(
            1000 * spent.get("nats-server", 0) / max(1, len(sample_ids)), 1
        ),
    }

    results = {}
    for name in sorted(installed_projections()):
        say(f"replay: rebuilding {name} (its own process)")
        result, used = await rebuild_in_child(scope, name, report, args, cpu)
        result["events_per_second"] = result["events"] / result["seconds"]
        used["cpu_seconds_by_part"] = used.pop("cpu_seconds")
        results[name] = {**result, **used}
        say(
            f"  {name}: {result['events_per_second']:,.0f} events/s, peak RSS "
            f"{result['peak_rss_bytes'] / 2**20:,.0f} MB"
        )
        rate = result["events_per_second"]
        report.add(
            Figure(
                f"replay.{name}",
                f"replay: {name} events/s",
                rate,
                "ev/s",
                *report.against("b.ordered"),
                target=">= 25,000 & >= 0.40x",
                met=rate >= 25_000 and rate / raw.per_second >= 0.4,
            )
        )
    names = sorted(installed_projections())
    say(f"replay: rebuilding all {len(names)} together from one read of the log (lapor replay)")
    together, used = await rebuild_in_child(scope, ",".join(names), report, args, cpu)
    together["events_per_second"] = together["events"] / together["seconds"]
    used["cpu_seconds_by_part"] = used.pop("cpu_seconds")
    say(
        f"  all: {together['events_per_second']:,.0f} events/s, peak RSS "
        f"{together['peak_rss_bytes'] / 2**20:,.0f} MB"
    )
    both = together["events_per_second"]
    report.add(
        Figure(
            "replay.all",
            f"replay: all {len(names)} read models together (one read of the log)",
            both,
            "ev/s",
            *report.against("b.ordered"),
            target=">= 25,000 & >= 0.40x",
            met=both >= 25_000 and both / raw.per_second >= 0.4,
        )
    )
    log_events = gen.count
    total_events = sum(r["events"] for r in results.values())
    results["all"] = {**together, **used}
    peak = max(r["peak_rss_bytes"] for r in results.values()) / 2**20
    idle = max(r["rss_before_bytes"] for r in results.values()) / 2**20
    report.add(
        Figure(
            "b.rss_idle",
            "rebuild process RSS before the first event",
            idle,
            "MB",
            higher_is_better=False,
        )
    )
    report.add(
        Figure(
            "replay.peak_rss",
            "replay: peak memory (RSS) of a rebuild process",
            peak,
            "MB",
            *report.against("b.rss_idle"),
            target="< 500 MB",
            met=peak < 500,
            higher_is_better=False,
        )
    )
    report.details["replay"] = {
        "log_events": log_events,
        "events_applied": total_events,
        "projections": results,
    }
    await check_rebuilt(scope, results, log_events // EVENTS_PER_COMPLAINT)


# --- replay: the curve ----------------------------------------------------------------------


def rebuild_target(rate: float, raw: float, each: bool) -> tuple[str, bool]:
    """The rebuild targets: each read model >= 25,000 events/s and >= 0.40x the raw ordered
    replay of the same log; all of them together >= 25,000 events/s."""
    if each:
        return ">= 25,000 & >= 0.40x", rate >= 25_000 and rate / raw >= 0.4
    return ">= 25,000", rate >= 25_000


async def phase_curve(
    settings: Settings, args: argparse.Namespace, report: Report, cpu: CpuMeter
) -> None:
    """The replay phase at each size of ``--curve``: one log, grown to the next size by
    appending (never rebuilt from scratch), and at each size the raw ordered replay, every
    rebuild (each alone, then all together), ``EventStore.load`` beside a literal get, the
    router's decision path and a tracker action. The figures of every size go in the table
    (a row per size under each figure), the curves in ``details["curve"]``."""
    sizes: list[int] = args.curve
    largest = sizes[-1]
    scope = await scoped(settings, "bench_replay")
    stream, subject = scope.subjects.events_stream, scope.subjects.all_events
    url = scope.nats_url
    assert url is not None
    names = sorted(installed_projections())
    # Every stride-th complaint's id, in log order: the samples spread over the whole log.
    stride = max(1, math.ceil(sizes[0] / EVENTS_PER_COMPLAINT) // 400)
    # The lives' times: 30 s apart, all in the past (a year or more before now).
    span = timedelta(seconds=30 * min(math.ceil(largest / EVENTS_PER_COMPLAINT), 10**7))
    log = EventLog(start=datetime.now(UTC) - max(timedelta(days=365), span + timedelta(days=30)))
    curve: dict[str, Any] = {"sizes": sizes, "sample_stride": stride, "points": []}
    report.details["curve"] = curve
    ids: list[str] = []
    used: set[str] = set()
    lives = 0  # complaints with a whole life in the log (others: routed by the bench)
    bytes_per_event: dict[str, float] = {}
    smallest_peak = math.inf
    first_figure = len(report.figures)
    try:
        for size in sizes:
            point: dict[str, Any] = {"size": size}
            curve["points"].append(point)
            began_size = time.perf_counter()
            async with _js(scope) as js:
                have = (await js.stream_info(stream)).state.messages
            curve["disk"] = check_disk(
                settings.data_dir,
                have,
                largest,
                bytes_per_event.get("log", PRIOR_LOG_BYTES_PER_EVENT),
                bytes_per_event.get("database", PRIOR_DATABASE_BYTES_PER_EVENT),
                bytes_per_event.get("measured_at"),
            )
            if size > have:
                say(f"curve: growing the log from {have:,} to {size:,} events")
                disk_before = disk_usage(settings.data_dir)
                gen, sampled = await generate_log(scope, size - have, lives, stride, log)
                lives += gen.count // EVENTS_PER_COMPLAINT
                ids += sampled
                grown = disk_usage(settings.data_dir) - disk_before
                bytes_per_event.setdefault("log", grown / gen.count)
                point["append"] = {
                    "events": gen.count,
                    "seconds": round(gen.seconds, 2),
                    "events_per_second": round(gen.per_second),
                    "disk_bytes_per_event": round(grown / gen.count, 1),
                }
                say(f"  appended {gen.count:,} events at {gen.per_second:,.0f}/s")
            async with _js(scope) as js:
                state = (await js.stream_info(stream)).state
            events = state.messages
            point.update(events=events, whole_lives=lives, stream_bytes=state.bytes)
            at = f"@ {human(size)}"

            say(f"curve {human(size)}: ordered-consumer replay of the whole log ({events:,})")
            raw = await ordered_replay(url, stream, subject)
            point["ordered_replay"] = {"events": raw.count, "seconds": round(raw.seconds, 2)}
            report.add(
                Figure(
                    curve_key("b.ordered", size),
                    f"ordered-consumer replay {at} ({raw.count:,} events)",
                    raw.per_second,
                    "msg/s",
                )
            )
            if size == sizes[0]:
                sample = min(events, 200_000)
                say(f"baseline: ordered replay + parse/decode, and pull fetch + ack ({sample:,})")
                dec = await ordered_replay(url, stream, subject, limit=sample, decoded=True)
                report.add(
                    Figure(
                        "b.ordered_decoded",
                        f"ordered replay + envelope parse + decode {at}",
                        dec.per_second,
                        "msg/s",
                    )
                )
                pull = await pull_fetch_ack(url, stream, subject, sample)
                report.add(
                    Figure(
                        "b.pull_ack",
                        f"pull consumer, fetch 500, ack each {at}",
                        pull.per_second,
                        "msg/s",
                    )
                )

            rebuilds: dict[str, Any] = {}
            point["rebuilds"] = rebuilds
            # Above --each-until, only all together: at 10 million events each rebuild
            # alone would take most of an hour more (bench-scale).
            each = names if args.each_until is None or size <= args.each_until else []
            for name in [*each, ",".join(names)]:
                label = "all" if "," in name else name
                say(f"curve {human(size)}: rebuilding {label} (its own process)")
                result, used_cpu = await rebuild_in_child(
                    scope, name, report, args, cpu, profile_it=size == largest
                )
                result["events_per_second"] = result["events"] / result["seconds"]
                used_cpu["cpu_seconds_by_part"] = used_cpu.pop("cpu_seconds")
                result = rebuilds[label] = {**result, **used_cpu}
                checked = (
                    {n: result for n in (TRACKER, ANALYTICS)} if label == "all" else {name: result}
                )
                await check_rebuilt(scope, checked, lives)
                result["database_bytes"] = await drop_database(scope, result["target"])
                bytes_per_event["database"] = max(
                    bytes_per_event.get("database", 0), result["database_bytes"] / events
                )
                say(
                    f"  {label}: {result['events_per_second']:,.0f} events/s, peak RSS "
                    f"{result['peak_rss_bytes'] / 2**20:,.0f} MB, "
                    f"{result['seconds']:,.0f} s"
                )
                rate = result["events_per_second"]
                target, met = rebuild_target(rate, raw.per_second, label != "all")
                report.add(
                    Figure(
                        curve_key(f"replay.{label}", size),
                        f"replay: {label} events/s {at}"
                        if label != "all"
                        else f"replay: all {len(names)} together (one read of the log) {at}",
                        rate,
                        "ev/s",
                        *report.against(curve_key("b.ordered", size)),
                        target=target,
                        met=met,
                    )
                )
            bytes_per_event.setdefault("measured_at", size)
            together = rebuilds["all"]
            if size >= 10_000_000:
                minutes = together["seconds"] / 60
                per_10m = minutes * 10_000_000 / together["events"]
                report.add(
                    Figure(
                        curve_key("replay.all.minutes", size),
                        f"replay: minutes to rebuild all together {at}",
                        minutes,
                        "min",
                        target="< 7 min per 10M",
                        met=per_10m < 7,
                        higher_is_better=False,
                    )
                )
            peak = max(r["peak_rss_bytes"] for r in rebuilds.values()) / 2**20
            idle = max(r["rss_before_bytes"] for r in rebuilds.values()) / 2**20
            if size == sizes[0]:
                report.add(
                    Figure(
                        "b.rss_idle",
                        "rebuild process RSS before the first event",
                        idle,
                        "MB",
                        higher_is_better=False,
                    )
                )
                smallest_peak = peak
            report.add(
                Figure(
                    curve_key("replay.peak_rss", size),
                    f"replay: peak RSS of a rebuild process {at}",
                    peak,
                    "MB",
                    *report.against(
                        "b.rss_idle" if size == sizes[0] else curve_key("replay.peak_rss", sizes[0])
                    ),
                    target="< 500 MB, flat",
                    met=peak < 500 and peak <= 1.25 * smallest_peak,
                    higher_is_better=False,
                )
            )

            unused = [i for i in ids if i not in used]  # still six events each
            loads_of = spread(unused, args.load_complaints, 0.25)
            say(f"curve {human(size)}: EventStore.load of {len(loads_of)} complaints")
            before = cpu.snapshot()
            loads, literal = await history_reads(url, scope.subjects, loads_of)
            spent = cpu.spent(before, cpu.snapshot())
            reads = {
                "complaints": len(loads_of),
                "load_ms": _quantiles([1000 * x for x in loads.latencies]),
                "literal_get_ms": _quantiles([1000 * x for x in literal.latencies]),
                "nats_server_cpu_ms_per_load": round(
                    1000 * spent.get("nats-server", 0) / max(1, len(loads_of)), 2
                ),
            }
            point["history_reads"] = reads
            report.add(
                Figure(
                    curve_key("b.get_literal", size),
                    f"get_msg, one literal subject, p50 {at}",
                    reads["literal_get_ms"]["p50"],
                    "ms",
                    higher_is_better=False,
                )
            )
            for q in ("p50", "p99"):
                report.add(
                    Figure(
                        curve_key("replay.load" if q == "p50" else "replay.load.p99", size),
                        f"EventStore.load of one complaint, {q} of {len(loads_of)} {at}",
                        reads["load_ms"][q],
                        "ms",
                        *report.against(curve_key("b.get_literal", size)),
                        higher_is_better=False,
                    )
                )

            say(f"curve {human(size)}: the router's decision path on {args.route_complaints} new")
            before = cpu.snapshot()
            routed = await route_costs(scope, args.route_complaints)
            point["router"] = per_call(routed, cpu.spent(before, cpu.snapshot()))
            actions_of = spread(unused, args.action_complaints, 0.75)
            taken = {*loads_of, *actions_of}
            warm_up = [i for i in spread(unused, 10, 0.5) if i not in taken]
            used.update(actions_of, warm_up)
            say(f"curve {human(size)}: a tracker action on {len(actions_of)} old complaints")
            before = cpu.snapshot()
            acted = await action_costs(scope, actions_of, warm_up)
            point["tracker_action"] = per_call(acted, cpu.spent(before, cpu.snapshot()))
            for base, what, data in (
                ("router", "router: route_complaint, new complaint", point["router"]),
                ("action", "tracker action, old complaint", point["tracker_action"]),
            ):
                first_at = curve_key(f"{base}.cpu", sizes[0])
                for q in ("p50", "p99"):
                    report.add(
                        Figure(
                            curve_key(f"{base}.{q}", size),
                            f"{what}, {q} {at}",
                            data["wall_ms"][q],
                            "ms",
                            *(
                                report.against(curve_key(f"{base}.{q}", sizes[0]))
                                if size != sizes[0]
                                else (None, None)
                            ),
                            higher_is_better=False,
                        )
                    )
                cost = data["cpu_ms_per_call"]
                first_cost = report.get(first_at)
                report.add(
                    Figure(
                        curve_key(f"{base}.cpu", size),
                        f"{what.split(',')[0]}: CPU per call (its process + nats-server) {at}",
                        cost,
                        "ms",
                        *(report.against(first_at) if size != sizes[0] else (None, None)),
                        target="flat: <= 1.25x smallest" if base == "router" else None,
                        met=(cost <= 1.25 * first_cost.value if first_cost else True)
                        if base == "router"
                        else None,
                        higher_is_better=False,
                    )
                )
            point["seconds"] = round(time.perf_counter() - began_size, 1)
            say(f"curve {human(size)}: done in {point['seconds']:,.0f} s")
            write(report, args.json)  # a long run keeps what it measured so far
    finally:
        report.figures[first_figure:] = order_curve(report.figures[first_figure:], lambda f: f.key)
        last = next((p for p in reversed(curve["points"]) if "history_reads" in p), None)
        if last:  # the largest size measured, where the notes look (as for --events)
            report.details["replay_log"] = {"events": last["events"]}
            report.details["history_reads"] = last["history_reads"]
            report.details["replay"] = {
                "log_events": last["events"],
                "projections": last["rebuilds"],
                "size": last["size"],
            }


def per_call(measured: dict[str, Any], spent: dict[str, float]) -> dict[str, Any]:
    """A decision path's figures with nats-server's (and PostgreSQL's) CPU shared among its
    calls: ``cpu_ms_per_call`` is the process's own plus nats-server's."""
    calls = max(1, measured["calls"])
    server = 1000 * spent.get("nats-server", 0) / calls
    return {
        **measured,
        "nats_server_cpu_ms_per_call": round(server, 3),
        "cpu_ms_per_call": measured["process_cpu_ms_per_call"] + server,
        "cpu_seconds": spent,
    }


async def drop_database(scope: Settings, url: str) -> int:
    """Drop a rebuilt database (the curve keeps one at a time on disk); its size first."""
    conn = await asyncpg.connect(url)
    try:
        name, size = await conn.fetchrow(
            "SELECT current_database(), pg_database_size(current_database())"
        )
    finally:
        await conn.close()
    admin = await asyncpg.connect(settings_db(scope))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    return int(size or 0)


async def check_rebuilt(scope: Settings, results: dict[str, Any], complaints: int) -> None:
    """The rebuilt read models hold what the log says (so the speed is of real work)."""
    tracker = results.get(TRACKER)
    if tracker:
        conn = await asyncpg.connect(tracker["target"])
        try:
            closed = await conn.fetchval(
                "SELECT count(*) FROM tracker.complaints WHERE status = 'closed'"
            )
            history = await conn.fetchval("SELECT count(*) FROM tracker.history")
        finally:
            await conn.close()
        tracker.setdefault("check", {}).update(closed_complaints=closed, history_rows=history)
        if closed != complaints:
            say(f"WARNING: tracker rebuilt {closed} closed complaints, expected {complaints}")
    analytics = results.get(ANALYTICS)
    if analytics:
        conn = await asyncpg.connect(analytics["target"])
        try:
            resolved = await conn.fetchval(
                "SELECT count(*) FROM analytics.complaints WHERE closed_at IS NOT NULL"
            )
        finally:
            await conn.close()
        analytics.setdefault("check", {}).update(resolved_complaints=resolved)
        if resolved != complaints:
            say(f"WARNING: analytics rebuilt {resolved} resolved complaints, expected {complaints}")


# --- notes ---------------------------------------------------------------------------------


def profiled(report: Report, name: str, top: int = 4) -> str:
    """`` py-spy (name): 43% waiting for I/O, ...`` when the run was profiled."""
    profile = report.details.get("profiles", {}).get(name)
    if not profile:
        return ""
    parts = ", ".join(f"{pct:.0f}% {what}" for what, pct in profile["by_activity_pct"][:top])
    return f" py-spy ({name}): {parts}."


CAUSES = {
    "router": "per complaint it takes the complaint's state from the Lapor-State snapshot its "
    "trigger carries (no read while the trigger is the complaint's last event), decides with "
    "the rules and the model (most of its CPU: the text model's features), and makes two "
    "checked appends under FastStream's per-message handler; its agency fan-out then "
    "publishes each event's copies",
    "nats-server": "every append, delivery and ack of five consumers",
    "intake": "its web stack per request (see intake)",
    "tracker": "per batch: the pull loop's delivery of each message (nats-py's Msg, its "
    "subscription queue), decode, fold in memory, COPY and upsert",
    "analytics": "the same as the tracker, for two projections",
    "postgresql": "the projections' statements (a few per batch) and their COPY",
}

LIFTS = {
    "router": "route a batch of triggers at once (one pull, decisions side by side, their "
    "appends pipelined) instead of one FastStream handler per message",
    "nats-server": "fewer consumers of the whole log (the tracker and analytics from one follower)",
    "intake": "as for intake",
    "tracker": "fewer Python steps per message: the messages of a pulled batch parsed "
    "from the connection's buffer together instead of one nats-py Msg each",
    "analytics": "as for the tracker",
    "postgresql": "larger batches when behind",
}


def notes(report: Report) -> list[str]:
    """For each missed target: what bounds it (from this run's measurements, and from the
    profiles when run with ``--py-spy``) and what would lift it."""
    out: list[str] = []
    missed = {f.key for f in report.figures if f.met is False}
    lbl = baseline_labels(report)
    d = report.details
    pipe = d.get("pipeline", {})
    # Curve mode: the replay figures of the largest size measured (keys "...@SIZE").
    at = f"@{d['replay']['size']}" if "size" in d.get("replay", {}) else ""
    if d.get("refused"):
        out.append(f"The run stopped early: {d['refused']}")
    others = {}
    if "intake" in d:
        others["intake"] = d["intake"].get("cores_busy_other_processes")
    for run_name in ("flat_out", "paced"):
        if run_name in pipe:
            others[f"pipeline {run_name}"] = pipe[run_name].get("cores_busy_other_processes")
    for name, r in d.get("replay", {}).get("projections", {}).items():
        others[f"rebuild {name}"] = r.get("cores_busy_other_processes")
    loaded = {k: v for k, v in others.items() if v and v >= 0.1}
    if loaded:
        out.append(
            "Other processes on this machine (not this benchmark) kept "
            + ", ".join(f"{v:.2f} cores busy during {k}" for k, v in loaded.items())
            + f" (of {report.machine.get('cpus')}): those figures are lower than on an idle"
            " machine."
        )
    if "intake.rate" in missed and "intake" in d:
        i = d["intake"]
        n = max(1, i["accepted"])
        ms = {k: 1000 * v / n for k, v in i["cpu_seconds"].items()}
        core = i["cpu_seconds"].get("intake", 0) / i["wall_seconds"]
        out.append(
            f"intake ({value(report, 'intake.rate'):,.0f}/s, target 2,000/s): bound by CPU: "
            f"its processes spent {ms.get('intake', 0):.2f} ms of CPU per complaint, "
            f"{core:.2f} cores busy, and the load generator "
            f"{ms.get('bench driver', 0):.2f} ms. The log is not the limit "
            f"(nats-server spent {ms.get('nats-server', 0):.2f} ms per complaint; "
            f"{lbl.get('b.publish256', 'the publish baseline')} took "
            f"{value(report, 'b.publish256'):,.0f} appends/s)."
            + profiled(report, "intake")
            + (
                f" (Driven by httpx.AsyncClient instead it reached "
                f"{value(report, 'intake.httpx'):,.0f}/s: httpx itself used "
                f"{d['intake_httpx']['driver_cpu_ms_per_request']:.1f} ms of CPU per request,"
                f" the lean client {d['intake_httpx']['lean_driver_cpu_ms_per_request']:.2f}.)"
                if "intake_httpx" in d
                else ""
            )
            + " Already done: a plain-ASGI correlation middleware, async dependencies (no "
            "thread-pool hop per request), uvicorn with uvloop and httptools, and "
            f"{i.get('workers', 1)} intake processes (it is stateless: lapor serve --workers, "
            "or replicas). What each request still costs: FastAPI's validation of the "
            "request and response models, the envelope, and two acknowledged publishes (most "
            "demo reports carry contact details: ReporterIdentified goes to its own stream). "
            "The intake processes, the log and the load generator share the 2 cores: 2,000/s "
            "needs under ~1 ms of CPU per complaint for all of them together. Lift: more "
            "cores or replicas (it scales out), then a leaner request path (one publish for "
            "both events; a response built without a second validation)."
        )
    if "pipeline.rate" in missed and "flat_out" in pipe:
        fo = pipe["flat_out"]
        statuses = fo["statuses"]
        n = max(1, statuses.get("202", statuses.get(202, 0)))
        ms = {
            k: 1000 * v / n
            for k, v in fo["cpu_seconds"].items()
            if k not in ("other processes", "bench driver")
        }
        total = sum(ms.values())
        order = sorted(ms, key=lambda k: -ms[k])
        parts = ", ".join(f"{k} {ms[k]:.1f}" for k in order)
        left = fo.get("left_when_read_models_caught_up", {}).get("agency_fanout", 0)
        text = (
            f"pipeline ({value(report, 'pipeline.rate'):,.0f}/s, target 1,000/s): CPU-bound: "
            f"each complaint cost {total:.1f} ms of CPU ({parts} ms), so {fo['cores']} cores "
            f"cannot pass ~{fo['cores'] * 1000 / total:,.0f}/s even alone; "
            f"{fo['cores_busy_benchmark']:.2f} cores were busy with it"
            f" and {fo['cores_busy_other_processes']:.2f} with other processes. "
        )
        if left:
            text += (
                f"The agency fan-out (in the router process) still had {left:,} events to copy "
                "when the read models had caught up: its work falls partly outside this "
                "window, so the router's true cost per complaint is higher. "
            )
        for k in order[:3]:
            if k in CAUSES:
                text += f"{k} ({ms[k]:.1f} ms): {CAUSES[k]}.{profiled(report, f'pipeline-{k}', 3)} "
        reads = d.get("history_reads")
        paced = pipe.get("paced")
        if reads or paced:
            text += "It also gets slower as the log grows: "
            if paced and paced.get("log_last_seq"):
                pn = max(1, paced["complaints"])
                text += (
                    f"nats-server spent {ms.get('nats-server', 0):.1f} ms per complaint flat "
                    f"out (log up to {fo['left_when_read_models_caught_up']['last_seq']:,} "
                    f"events) and {1000 * paced['cpu_seconds']['nats-server'] / pn:.1f} ms in "
                    f"the paced run after it (log up to {paced['log_last_seq']:,}); "
                )
            if reads:
                # No decision loads a history any more: the load is a figure of the log,
                # not a bound on the router.
                text += (
                    f"(A whole history, EventStore.load, which no decision reads any more, "
                    f"took {value(report, 'replay.load' + at):,.0f} ms on the "
                    f"{d['replay_log']['events']:,}-event replay log, against "
                    f"{value(report, 'b.get_literal' + at):,.1f} ms for a literal-subject get.) "
                )
        text += "Lift: " + "; ".join(LIFTS[k] for k in order[:3] if k in LIFTS)
        if "router" not in order[:3]:
            text += "; " + LIFTS["router"]
        fan = value(report, "pipeline.rate_fanout")
        if not math.isnan(fan):
            text += (
                f". Counting the agency copies, the pipeline sustained {fan:,.0f}/s: the "
                "fan-out, starved of CPU by routing, is the slowest stage"
            )
        out.append(text + ".")
    if "pipeline.p99" in missed and "paced" in pipe:
        p = pipe["paced"]
        half = pipe.get("paced_half_capacity")
        text = (
            f"pipeline latency at {p['offered_per_second']:g}/s offered (p99 "
            f"{p['tracked_ms']['p99']:,.0f} ms, target 250 ms): "
        )
        if p["offered_per_second"] > value(report, "pipeline.rate"):
            text += (
                "the offered rate is above what the pipeline sustains "
                f"({value(report, 'pipeline.rate'):,.0f}/s flat out; intake answered "
                f"{p['submissions_answered_per_second']:,.0f}/s), so requests queue and the "
                "latency is the queue's, not the path's. "
            )
        if half:
            text += (
                f"At {half['offered_per_second']:g}/s (half the flat-out rate) p50/p99 were "
                f"{half['tracked_ms']['p50']:,.0f}/{half['tracked_ms']['p99']:,.0f} ms: "
                "intake's append, then the tracker's fetch and transaction. "
            )
        text += "Lift: the throughput work above, until 500/s is well under capacity."
        out.append(text)
    replay = d.get("replay", {}).get("projections", {})
    for name, r in replay.items():
        key = ("replay.all" if name == "all" else f"replay.{name}") + at
        if key not in missed:
            continue
        target = report.get(key).target  # type: ignore[union-attr]
        events = max(1, r["events"])
        wall_us = 1e6 * r["seconds"] / events
        own_us = 1e6 * r["cpu_seconds"] / events
        by_part = r.get("cpu_seconds_by_part", {})
        pg_us = 1e6 * by_part.get("postgresql", 0) / events
        nats_us = 1e6 * by_part.get("nats-server", 0) / events
        decoded = value(report, "b.ordered_decoded")
        out.append(
            f"replay {name} ({r['events_per_second']:,.0f} events/s on {events:,} events, "
            f"target {target}, x being {lbl.get('b.ordered' + at, 'the ordered replay')}): "
            f"{wall_us:,.0f} us per event, "
            f"of which the rebuild process was on CPU {own_us:,.0f} us "
            f"({own_us / wall_us:.0%}), PostgreSQL {pg_us:,.0f} us, nats-server "
            f"{nats_us:,.0f} us: one Python process, on one core, is the bound. Each batch "
            "of 1,000 events costs one read of the rows it touches, a fold in memory and one "
            "COPY + upsert per table, so PostgreSQL is a small share; the rest is Python per "
            "event: nats-py's delivery, the envelope's parse and decode (the ordered replay "
            f"with decoding alone ran at {decoded:,.0f}/s, {lbl.get('b.ordered_decoded', '')})"
            ", and the projection's fold."
            + profiled(report, f"rebuild-{name}")
            + " The log is read with the batch pull loop (lapor.services.pull: one pull "
            "request per batch, the reader woken once); what is left per event is Python: "
            "nats-py's building of each message and its subscription queue (the 'asyncio "
            "loop' and 'nats client' shares above), the envelope's parse and decode "
            "(pydantic; validating envelope and payload in one pass was measured no faster), "
            "and the projection's fold. Lift: more cores for partitioned rebuilds "
            "(lapor replay --partitions: each partition reads the whole log and applies its "
            "share, so they pay only where cores are left beside PostgreSQL and NATS); then "
            "a batch's messages parsed together from the connection's buffer."
        )
    out += curve_notes(report, missed)
    return out


def curve_notes(report: Report, missed: set[str]) -> list[str]:
    """For the curve's missed targets: how the figure moved from the smallest log to the
    largest, and what grows with the log."""
    curve = report.details.get("curve")
    points = [p for p in (curve or {}).get("points", []) if "router" in p]
    if len(points) < 1:
        return []
    out = []
    small, large = points[0], points[-1]
    sizes = f"{human(small['size'])} -> {human(large['size'])} events"
    if any(k.startswith("router.cpu@") for k in missed):
        a, b = small["router"], large["router"]
        out.append(
            f"router's cost per complaint ({sizes}): {a['cpu_ms_per_call']:.2f} -> "
            f"{b['cpu_ms_per_call']:.2f} ms of CPU (its process {a['process_cpu_ms_per_call']:.2f}"
            f" -> {b['process_cpu_ms_per_call']:.2f}, nats-server "
            f"{a['nats_server_cpu_ms_per_call']:.2f} -> {b['nats_server_cpu_ms_per_call']:.2f}),"
            f" p50 {a['wall_ms']['p50']:.1f} -> {b['wall_ms']['p50']:.1f} ms. route_complaint "
            "reads nothing of a new complaint (it decides on the state its trigger carries); "
            "per call it makes two appends, which nats-server checks against the complaint's "
            "last sequence on a larger stream (the nats-server share above), and the rest is "
            "this process's own work per call (decision, envelopes, publish). For reference, "
            "a whole history (EventStore.load), which nothing on this path reads: "
            f"{small['history_reads']['load_ms']['p50']:.1f} -> "
            f"{large['history_reads']['load_ms']['p50']:.1f} ms at p50. Lift: "
            + LIFTS["router"]
            + "."
        )
    if any(k.startswith("replay.peak_rss@") for k in missed):
        peaks = {
            p["size"]: {n: r["peak_rss_bytes"] / 2**20 for n, r in p["rebuilds"].items()}
            for p in points
        }
        out.append(
            "rebuild peak RSS by log size (MB): "
            + "; ".join(
                f"{human(size)}: " + ", ".join(f"{n} {v:,.0f}" for n, v in per.items())
                for size, per in peaks.items()
            )
            + ". Memory that grows with the log is held per complaint or per event "
            "(a cache without a bound, or rows kept until the end of the rebuild)."
        )
    for k in sorted(missed):
        if k.startswith("replay.all.minutes@"):
            r = large["rebuilds"]["all"]
            out.append(
                f"all read models together took {r['seconds'] / 60:,.1f} min for "
                f"{r['events']:,} events ({r['events_per_second']:,.0f} events/s); 7 minutes "
                "per 10M events needs 23,810 events/s: the bound is the rebuild process's "
                "own CPU (see the replay notes above)."
            )
    return out


# --- main ------------------------------------------------------------------------------------


async def run(settings: Settings, args: argparse.Namespace, report: Report) -> None:
    cpu = CpuMeter(settings.data_dir)
    phases = set(args.phases.split(","))
    if "baselines" in phases:
        await phase_baselines(settings, args, report)
    if "intake" in phases:
        await phase_intake(settings, args, report, cpu)
    if "pipeline" in phases:
        await phase_pipeline(settings, args, report, cpu)
    if "replay" in phases:
        if args.curve:
            await phase_curve(settings, args, report, cpu)
        else:
            await phase_replay(settings, args, report, cpu)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=1_000_000, help="replay log size")
    p.add_argument(
        "--curve",
        type=parse_sizes,
        metavar="SIZES",
        help="replay at each of these log sizes (events, e.g. 100000,1000000), growing one "
        "log; instead of --events",
    )
    p.add_argument("--load-complaints", type=int, default=100, help="curve: EventStore.load sample")
    p.add_argument(
        "--each-until",
        type=int,
        help="curve: rebuild each read model alone only up to this size (above: all together)",
    )
    p.add_argument("--route-complaints", type=int, default=200, help="curve: new complaints routed")
    p.add_argument(
        "--action-complaints", type=int, default=100, help="curve: old complaints acted on"
    )
    p.add_argument("--complaints", type=int, default=20_000, help="intake and flat-out runs")
    p.add_argument(
        "--httpx-complaints",
        type=int,
        default=3000,
        help="then this many through httpx.AsyncClient, for comparison (0: skip)",
    )
    p.add_argument("--concurrency", type=int, default=64, help="HTTP clients in closed loop")
    p.add_argument("--intake-workers", type=int, default=2, help="intake processes (stateless)")
    p.add_argument("--rate", type=float, default=500, help="offered complaints/s (latency)")
    p.add_argument("--pace-seconds", type=float, default=20)
    p.add_argument("--publish-count", type=int, default=50_000)
    p.add_argument("--upsert-rows", type=int, default=200_000)
    p.add_argument("--json", type=Path, default=Path("bench-results.json"))
    p.add_argument("--log-level", default="INFO", help="of the services (INFO as deployed)")
    p.add_argument("--phases", default="baselines,intake,pipeline,replay")
    p.add_argument("--py-spy", help="path of py-spy: profile services and rebuilds")
    p.add_argument("--profile-seconds", type=int, default=20)
    p.add_argument("--profile-dir", type=Path, help="keep py-spy's raw output there")
    p.add_argument("--keep", action="store_true", help="keep the data folder (and logs)")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to this long for the machine to be idle (others' load skews it)",
    )
    p.add_argument("--report", type=Path, help="only print the table and notes of a JSON file")
    return p.parse_args(argv)


def load(path: Path) -> Report:
    data = json.loads(path.read_text())
    figures = [Figure(**{k: v for k, v in f.items() if k != "ratio"}) for f in data["figures"]]
    return Report(**{**data, "figures": figures})


def show(report: Report, path: Path) -> None:
    print()
    print(table(report))
    if report.notes:
        print("\nNotes")
        for n in report.notes:
            print(f"- {n}")
    print(f"\n(written to {path})")


def wait_quiet(seconds: float, idle_cores: float = 0.25) -> None:
    """Wait (up to ``seconds``) until the machine's other work stays under ``idle_cores``
    for 5 s: the figures assume the cores are this benchmark's."""
    deadline = time.monotonic() + seconds
    while True:
        busy_cores = psutil.cpu_percent(interval=5) / 100 * (psutil.cpu_count() or 1)
        if busy_cores < idle_cores:
            return
        if time.monotonic() > deadline:
            say(f"machine still busy ({busy_cores:.2f} cores used by others): going on")
            return
        say(f"waiting for a quiet machine: {busy_cores:.2f} cores busy")


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    args = parse_args(argv)
    if args.report:
        report = load(args.report)
        report.notes = notes(report)
        show(report, args.report)
        return 0
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    configure_logging("WARNING", "console")
    status = 0
    data_dir = Path(tempfile.mkdtemp(prefix="lapor-bench-"))
    args.log_dir = data_dir / "logs"
    args.log_dir.mkdir()
    if args.py_spy:
        args.profile_dir = args.profile_dir or data_dir / "profiles"
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    report = Report(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        parameters={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    )
    try:
        base = Settings(
            data_dir=data_dir,
            subject_root="bench",
            infra="embedded",
            auth_secret=f"bench-{uuid.uuid4().hex}",
            log_level="WARNING",
        )
        say(f"starting embedded nats-server and PostgreSQL in {data_dir}")
        with infrastructure(base) as infra:
            settings = base.model_copy(
                update={"nats_url": infra.nats_url, "database_url": infra.database_url}
            )
            try:
                asyncio.run(run(settings, args, report))
            except DiskTooSmall as e:
                say(f"refused: {e}")
                report.details["refused"] = str(e)
                status = 2
            finally:
                report.notes = notes(report)
                write(report, args.json)
    finally:
        if args.keep:
            say(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    show(report, args.json)
    return status


def write(report: Report, path: Path) -> None:
    data = asdict(report)
    for f, d in zip(report.figures, data["figures"], strict=True):
        d["ratio"] = f.ratio
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
