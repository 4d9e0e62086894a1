"""The cluster for real: a three-node JetStream cluster on loopback (three nats-server
processes, ``lapor.devtools.cluster``), the streams at three replicas
(``LAPOR_STREAM_REPLICAS=3``), ``NATS_URL`` naming all three nodes, and the four services
as production runs them (``lapor serve`` processes) under a steady load of complaints from
clients that retry with their Idempotency-Key until they get a 202.

Faults, each once the previous one has healed:

1. kill -9 the node leading the events stream; the services carry on by themselves (no
   service is restarted): every one is ready again and a complaint submitted after the
   kill is acknowledged;
2. that node is started again and catches up (its ``/healthz`` says so);
3. kill -9 the node that leads the events stream now (elected while the first was down;
   if leadership went back to the first, a follower instead). Its replicas' quorum is now
   the restarted node and the third: the restarted node must really have caught up. It
   stays down to the end: the checks run on two of three nodes.

Then the load stops and, once the log is quiet: every acknowledged complaint is in the log
exactly once and was routed exactly once, nothing else is, nothing was dead-lettered,
analytics counts exactly the acknowledged complaints, and every read model equals a fresh
rebuild from the log (``lapor replay --verify``). The figures are printed (run with
``-s``): how many were acknowledged, and seconds to recover from each fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from lapor.devtools.chaos import (
    Load,
    all_ready,
    dead_letters,
    events_in_log,
    free_port_block,
    logged_warnings,
    quiet,
    received_in_log,
)
from lapor.devtools.cluster import LocalCluster, local_cluster
from lapor.devtools.commands.run import service_child
from lapor.devtools.infra import Infrastructure
from lapor.devtools.supervisor import Supervised, stop_process, wait_ready
from lapor.devtools.testing import ROAD, eventually
from lapor.ops.replay import Verdict, replay
from lapor.services.bootstrap import bootstrap
from lapor.services.database import with_database
from lapor.services.discovery import installed_services, local_ports
from lapor.services.settings import Settings
from lapor.shared.events import ComplaintRouted

pytestmark = pytest.mark.connected

SERVICES = ("intake", "router", "tracker", "analytics")
RATE = 15.0
"""Complaints offered per second: a steady load that two busy cores carry with three
nats-servers, PostgreSQL and four services beside the test."""
SETTLE_SECONDS = 2.0
"""Load flows this long before the first fault and between one fault healing and the
next."""
DRAIN_SECONDS = 60.0
"""How long the clients may take to get their last complaints acknowledged once the load
stops."""
RECOVERY_SECONDS = 45.0
"""At most this long from a kill until the services carry on: a stream's new leader is
elected within seconds (an election timeout), generous for a loaded machine."""


@contextlib.asynccontextmanager
async def own_database(infra: Infrastructure) -> AsyncIterator[str]:
    """A fresh database on the suite's PostgreSQL (and its replay twin dropped too)."""
    name = f"t{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infra.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(infra.database_url, name)
    finally:
        admin = await asyncpg.connect(infra.database_url)
        try:
            for database in (name, f"{name}_replay"):
                await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()


def cluster_settings(cluster: LocalCluster, database_url: str) -> Settings:
    return Settings(
        nats_url=cluster.nats_url,
        database_url=database_url,
        stream_replicas=3,
        auth_secret=f"test-{uuid.uuid4().hex}",
        log_format="console",
    )


def service_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    """What a deployment gives each service (the ConfigMap and Secret): every URL of the
    cluster, three replicas; the retry delays are production's."""
    assert settings.nats_url and settings.database_url and settings.auth_secret
    return {
        **os.environ,
        "NATS_URL": settings.nats_url,
        "DATABASE_URL": settings.database_url,
        "LAPOR_STREAM_REPLICAS": str(settings.stream_replicas),
        "LAPOR_SUBJECT_ROOT": settings.subject_root,
        "LAPOR_AUTH_SECRET": settings.auth_secret.get_secret_value(),
        "LAPOR_LOG_FORMAT": "json",
        "LAPOR_DATA_DIR": str(data_dir),
    }


@contextlib.contextmanager
def services(
    settings: Settings, logs: Path, within: float = 120
) -> Iterator[dict[str, tuple[str, subprocess.Popen]]]:
    """``lapor serve NAME`` for each of ``SERVICES``, started together, each ready before
    the block starts; nobody restarts one that dies. Yields {name: (URL, process)}."""
    ports = local_ports(installed_services(), free_port_block())
    env = service_env(settings, logs)
    children: dict[str, Supervised] = {
        name: dataclasses.replace(
            service_child(name, "127.0.0.1", ports[name], env), output=logs / f"{name}.log"
        )
        for name in SERVICES
    }
    running: dict[str, subprocess.Popen] = {}
    try:
        for name, child in children.items():
            running[name] = child.spawn()
        for name, child in children.items():
            if not wait_ready(child, running[name], timeout=within):
                raise RuntimeError(f"{name} not ready within {within}s; see {logs / name}.log")
        yield {name: (f"http://127.0.0.1:{ports[name]}", running[name]) for name in SERVICES}
    finally:
        for name in reversed(list(running)):
            stop_process(running[name], children[name].stop_signal, children[name].stop_timeout)


async def carries_on(load: Load, urls: list[str], since: float) -> float:
    """Seconds from ``since`` until a complaint submitted now is acknowledged (it retries
    with its key, as every client does) and every service answers ready."""
    async with httpx.AsyncClient(timeout=5) as client:
        try:
            await asyncio.wait_for(load.submit(client, uuid.uuid4().hex, ROAD), RECOVERY_SECONDS)
        except TimeoutError:
            raise AssertionError(f"none acknowledged {RECOVERY_SECONDS}s after the kill") from None

        async def ready() -> bool:
            return await all_ready(client, urls)

        await eventually(ready, within=RECOVERY_SECONDS, interval=0.1)
    return time.monotonic() - since


async def test_a_three_node_cluster_loses_and_doubles_nothing_when_nodes_die(
    infra: Infrastructure, servers_dir: Path
):
    figures: dict[str, object] = {}
    logs = servers_dir / "logs"
    logs.mkdir()
    try:
        async with contextlib.AsyncExitStack() as stack:
            cluster = await asyncio.to_thread(
                stack.enter_context, local_cluster(servers_dir / "nats", size=3)
            )
            database_url = await stack.enter_async_context(own_database(infra))
            settings = cluster_settings(cluster, database_url)
            await bootstrap(settings)
            running = await asyncio.to_thread(stack.enter_context, services(settings, logs))
            outcome = await faults_under_load(cluster, settings, running, figures)
    finally:
        figures["warnings in the logs"] = logged_warnings(
            *(logs / f"{name}.log" for name in SERVICES)
        )
        print("\ncluster figures:\n" + json.dumps(figures, indent=2, default=str))

    load, in_log, routed, report = outcome
    assert not load.refused, load.refused[:5]
    assert figures["acknowledged after recovering from the last"], "submissions stopped"
    tracking_ids = set(load.acknowledged.values())
    assert len(tracking_ids) == len(load.acknowledged), "two keys got one tracking ID"
    assert set(in_log) == tracking_ids, set(in_log) ^ tracking_ids
    assert all(n == 1 for n in in_log.values()), [i for i, n in in_log.items() if n > 1]
    assert routed == in_log, {i: routed.get(i) for i in in_log if routed.get(i) != 1}
    assert figures["dead letters"] == 0
    assert not any(v.stopped for v in report.values()), {n: v.stopped for n, v in report.items()}
    assert all(not v.differences for v in report.values()), {
        n: v.describe(5) for n, v in report.items()
    }
    assert figures["analytics received"] == len(tracking_ids)


async def faults_under_load(
    cluster: LocalCluster,
    settings: Settings,
    running: dict[str, tuple[str, subprocess.Popen]],
    figures: dict[str, object],
) -> tuple[Load, Counter[str], Counter[str], dict[str, Verdict]]:
    """The faults under load, then what the quiet system holds; the figures on the way."""
    events = settings.subjects.events_stream
    urls = [url for url, _ in running.values()]
    load, stop = Load(running["intake"][0], RATE), asyncio.Event()
    submitting = asyncio.create_task(load.run(stop))
    try:
        await asyncio.sleep(SETTLE_SECONDS)

        first = await cluster.stream_leader(events)
        figures["1. killed: the events stream's leader"] = first
        killed_at = time.monotonic()
        cluster.kill(first)
        figures["1. recovery (s)"] = round(await carries_on(load, urls, killed_at), 2)
        figures["1. new leader"] = await cluster.stream_leader(events)
        await asyncio.sleep(SETTLE_SECONDS)

        restarted_at = time.monotonic()
        await asyncio.to_thread(cluster.restart, first)
        figures[f"2. {first} restarted, caught up (s)"] = round(time.monotonic() - restarted_at, 2)
        await asyncio.sleep(SETTLE_SECONDS)

        # The leader elected while the first was down; a follower should the first lead again.
        leader = await cluster.stream_leader(events)
        second = (
            leader
            if leader != first
            else next(n.name for n in cluster.running() if n.name not in (first, leader))
        )
        figures["3. killed: " + ("the new leader" if second == leader else "a follower")] = second
        killed_at = time.monotonic()
        cluster.kill(second)
        figures["3. recovery (s)"] = round(await carries_on(load, urls, killed_at), 2)
        recovered = len(load.acknowledged)
        figures["3. new leader"] = await cluster.stream_leader(events)
        await asyncio.sleep(SETTLE_SECONDS)
    finally:
        stop.set()
        drained = await asyncio.wait({submitting}, timeout=DRAIN_SECONDS)
        figures.update(load.figures())
        if not drained[0]:
            submitting.cancel()
            raise AssertionError(f"complaints offered still not acknowledged {DRAIN_SECONDS}s on")
    figures["acknowledged after recovering from the last"] = len(load.acknowledged) - recovered

    stopped_load = time.monotonic()
    figures["log length"] = await quiet(settings, within=120)
    figures["quiet after the load stopped (s)"] = round(time.monotonic() - stopped_load, 1)
    in_log = await received_in_log(settings)
    routed = await events_in_log(settings, ComplaintRouted.TYPE)
    figures["in log (complaint.received)"] = sum(in_log.values())
    figures["routed (complaint.routed)"] = sum(routed.values())
    report = await replay(settings, [], mode="verify", show_progress=False)
    figures["read model differences"] = {name: len(v.differences) for name, v in report.items()}
    figures["dead letters"] = await dead_letters(settings)
    async with httpx.AsyncClient(timeout=10) as client:
        completion = (await client.get(f"{running['analytics'][0]}/metrics/completion")).json()
    figures["analytics received"] = completion["overall"]["received"]

    # The services carried on by themselves: each is still the process started first.
    died = {name: proc.returncode for name, (_, proc) in running.items() if proc.poll() is not None}
    assert not died, f"services died: {died}"
    return load, in_log, routed, report
