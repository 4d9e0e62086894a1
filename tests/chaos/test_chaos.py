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
import json
import os
import time

import httpx
import pytest

from lapor.devtools.chaos import Load, LocalSystem, dead_letters, quiet, received_in_log
from lapor.ops.replay import replay

pytestmark = pytest.mark.connected

RATE = float(os.environ.get("LAPOR_CHAOS_RATE", "30"))
SOAK_SECONDS = float(os.environ.get("LAPOR_CHAOS_SECONDS", "0"))
FAULTS = ("intake", "tracker", "analytics", "router", "nats-server", "postgresql")
SETTLE_SECONDS = 1.5
"""Load flows this long between one fault healing and the next."""


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
