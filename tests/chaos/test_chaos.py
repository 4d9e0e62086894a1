"""Chaos: the real system under its supervisor (``lapor run`` in a subprocess, loopback
only) takes a steady load of complaints while each of its processes is killed with
SIGKILL in turn: every service, the nats-server and the postmaster, each after the
previous fault has healed. Clients retry with the same Idempotency-Key until they get a
202, as the API asks them to.

Afterwards, once the system is quiet: every acknowledged complaint is in the log exactly
once, every read model equals a fresh rebuild from the log, nothing was dead-lettered, and
analytics counts what the log holds. The figures are printed (run with ``-s``).

``make chaos`` runs a longer soak of the same: ``LAPOR_CHAOS_SECONDS`` (how long the
faults go on, round after round; default one round), ``LAPOR_CHAOS_RATE`` (complaints
offered per second; default 30).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from importlib.resources import files

import asyncpg
import httpx
import nats
import pytest
from nats.js.api import ConsumerInfo

from lapor.devtools.chaos import LocalSystem
from lapor.ops.replay import replay
from lapor.services.settings import Settings
from lapor.shared.events import ComplaintReceived

pytestmark = pytest.mark.connected

RATE = float(os.environ.get("LAPOR_CHAOS_RATE", "30"))
SOAK_SECONDS = float(os.environ.get("LAPOR_CHAOS_SECONDS", "0"))
FAULTS = ("intake", "tracker", "analytics", "router", "nats-server", "postgresql")
SETTLE_SECONDS = 1.5
"""Load flows this long between one fault healing and the next."""


def complaints() -> list[dict]:
    demo = files("lapor.devtools") / "demo_complaints.json"
    return json.loads(demo.read_text())


@dataclass
class Load:
    """Clients submitting ``rate`` complaints a second; each retries on any failure with
    its Idempotency-Key until intake answers 202, and records the tracking ID."""

    intake: str
    rate: float
    acknowledged: dict[str, str] = field(default_factory=dict)  # key -> tracking ID
    answers: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    longest_wait: float = 0.0

    async def run(self, stop: asyncio.Event, clients: int = 32) -> None:
        """Offer complaints until ``stop``; return once every one offered is acknowledged
        (or refused, which the test reports)."""
        queue: asyncio.Queue[tuple[str, dict] | None] = asyncio.Queue()
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(timeout=5, limits=limits) as client:
            workers = [asyncio.create_task(self._client(client, queue)) for _ in range(clients)]
            await self._offer(queue, stop)
            for _ in workers:
                queue.put_nowait(None)
            await asyncio.gather(*workers)

    async def _offer(self, queue: asyncio.Queue, stop: asyncio.Event) -> None:
        bodies = itertools.cycle(complaints())
        started = time.monotonic()
        for n in itertools.count():
            if stop.is_set():
                return
            queue.put_nowait((uuid.uuid4().hex, next(bodies)))
            await asyncio.sleep(max(0.0, started + (n + 1) / self.rate - time.monotonic()))

    async def _client(self, client: httpx.AsyncClient, queue: asyncio.Queue) -> None:
        while (item := await queue.get()) is not None:
            await self._submit(client, *item)

    async def _submit(self, client: httpx.AsyncClient, key: str, body: dict) -> None:
        started, delay = time.monotonic(), 0.1
        while True:
            try:
                r = await client.post(
                    f"{self.intake}/complaints", json=body, headers={"Idempotency-Key": key}
                )
                self.answers[str(r.status_code)] += 1
                if r.status_code == 202:
                    self.acknowledged[key] = r.json()["tracking_id"]
                    self.longest_wait = max(self.longest_wait, time.monotonic() - started)
                    return
                if 400 <= r.status_code < 500 and r.status_code != 429:
                    self.refused.append(f"{r.status_code} {r.text[:200]}")
                    return
            except httpx.HTTPError as e:
                self.answers[type(e).__name__] += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def figures(self) -> dict[str, object]:
        return {
            "offered per second": self.rate,
            "acknowledged": len(self.acknowledged),
            "answers": dict(self.answers),
            "longest wait for an acknowledgement (s)": round(self.longest_wait, 2),
        }


async def inject_faults(system: LocalSystem, soak_seconds: float) -> list[tuple[str, float]]:
    """Kill each process in turn, each once the previous fault has healed; go round
    again until ``soak_seconds`` have passed. Returns (victim, seconds to recover)."""
    recoveries: list[tuple[str, float]] = []
    started = time.monotonic()
    while not recoveries or time.monotonic() - started < soak_seconds:
        for victim in FAULTS:
            recoveries.append((victim, await system.recovery(victim, within=60)))
            await asyncio.sleep(SETTLE_SECONDS)
    return recoveries


async def quiet(settings: Settings, within: float = 90) -> int:
    """Wait until the log stops growing and every consumer of it and every read model
    has caught up with it; returns the log's last sequence."""
    subjects = settings.subjects
    nc = await nats.connect(settings.nats_url)
    db = await asyncpg.connect(settings.database_url)
    try:
        js, deadline, last, state = nc.jetstream(), time.monotonic() + within, -1, {}
        while time.monotonic() < deadline:
            seq = (await js.stream_info(subjects.events_stream)).state.last_seq
            consumers = await js.consumers_info(subjects.events_stream)
            checkpoints = await db.fetch("SELECT projection, last_seq FROM projection_checkpoints")
            state = {
                **{c.name: _consumer_state(c) for c in consumers},
                **{r["projection"]: r["last_seq"] for r in checkpoints},
            }
            settled = all(not c.num_pending and not c.num_ack_pending for c in consumers)
            if settled and seq == last and all(r["last_seq"] == seq for r in checkpoints):
                return seq
            last = seq
            await asyncio.sleep(1)
        raise AssertionError(f"not quiet within {within}s: log at {last}, {state}")
    finally:
        await db.close()
        await nc.close()


def _consumer_state(c: ConsumerInfo) -> dict[str, int]:
    return {
        "pending": c.num_pending,
        "ack pending": c.num_ack_pending,
        "redelivered": c.num_redelivered,
        "delivered": c.delivered.stream_seq if c.delivered else 0,
        "ack floor": c.ack_floor.stream_seq if c.ack_floor else 0,
    }


async def received_in_log(settings: Settings) -> Counter[str]:
    """How often each complaint's ComplaintReceived is in the log, by tracking ID."""
    subjects = settings.subjects
    nc = await nats.connect(settings.nats_url)
    try:
        info = await nc.jetstream().stream_info(
            subjects.events_stream, subjects_filter=subjects.of_type(ComplaintReceived.TYPE)
        )
    finally:
        await nc.close()
    # <root>.complaint.<tracking_id>.complaint.received
    return Counter({subject.split(".")[2]: n for subject, n in (info.state.subjects or {}).items()})


async def dead_letters(settings: Settings) -> int:
    nc = await nats.connect(settings.nats_url)
    try:
        info = await nc.jetstream().stream_info(settings.subjects.dead_letter_stream)
        return info.state.messages
    finally:
        await nc.close()


async def test_no_acknowledged_complaint_is_lost_or_doubled_under_faults(servers_dir):
    system = LocalSystem.start(servers_dir / "run")
    figures: dict[str, object] = {}
    try:
        await system.up()
        settings = system.settings()
        services = system.services
        load, stop = Load(services["intake"], RATE), asyncio.Event()
        submitting = asyncio.create_task(load.run(stop))
        try:
            await asyncio.sleep(2)  # a steady load before the first fault
            recoveries = await inject_faults(system, SOAK_SECONDS)
            figures["recovery (s)"] = {
                f"{i + 1}. {v}": round(t, 2) for i, (v, t) in enumerate(recoveries)
            }
        finally:
            stop.set()
            await asyncio.wait_for(submitting, 120)
            figures.update(load.figures())
        stopped_load = time.monotonic()
        try:
            figures["log length"] = await quiet(settings)
            not_quiet = None
        except AssertionError as e:  # checked below, after gathering the other figures
            not_quiet = str(e)
        figures["quiet after the load stopped (s)"] = round(time.monotonic() - stopped_load, 1)

        in_log = await received_in_log(settings)
        figures["in log (complaint.received)"] = sum(in_log.values())
        report = await replay(settings, [], mode="verify", show_progress=False)
        differences = {name: len(v.differences) for name, v in report.items()}
        stops = {name: v.stopped for name, v in report.items() if v.stopped is not None}
        figures["read model differences"] = differences
        figures["dead letters"] = parked = await dead_letters(settings)
        async with httpx.AsyncClient(timeout=10) as client:
            completion = (await client.get(f"{services['analytics']}/metrics/completion")).json()
        figures["analytics received"] = completion["overall"]["received"]
    finally:
        figures["warnings in the logs"] = system.warnings()
        print("\nchaos figures:\n" + json.dumps(figures, indent=2, default=str))
        print("\n".join(system.supervisor_lines()))
        await asyncio.to_thread(system.stop)

    assert not load.refused, load.refused[:5]
    tracking_ids = set(load.acknowledged.values())
    assert len(tracking_ids) == len(load.acknowledged), "two keys got one tracking ID"
    assert set(in_log) == tracking_ids, set(in_log) ^ tracking_ids
    assert all(n == 1 for n in in_log.values()), [i for i, n in in_log.items() if n > 1]
    assert parked == 0
    assert not_quiet is None, not_quiet
    assert not stops, stops
    assert all(n == 0 for n in differences.values()), {n: v.describe(5) for n, v in report.items()}
    assert completion["overall"]["received"] == len(in_log)
