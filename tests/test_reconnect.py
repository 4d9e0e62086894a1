"""Services reconnect by themselves when NATS or PostgreSQL come back on the same address
(what a pod restart looks like): readiness says 503 while one is away and 200 once it is
back, and a complaint submitted afterwards is accepted, routed and tracked.

Each test runs its own nats-server and PostgreSQL (not the session's), since it stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from lapor.devtools.infra import EmbeddedServer, embedded_nats, free_port, postgres_child
from lapor.devtools.supervisor import running_once
from lapor.devtools.testing import ROAD, eventually, serving
from lapor.intake.app import create_app as intake_app
from lapor.router.app import create_app as router_app
from lapor.services.bootstrap import bootstrap
from lapor.services.database import create_pool
from lapor.services.settings import Settings
from lapor.tracker.app import create_app as tracker_app

pytestmark = pytest.mark.connected


def own_settings(nats_url: str, database_url: str) -> Settings:
    return Settings(
        nats_url=nats_url,
        database_url=database_url,
        subject_root=f"t{uuid.uuid4().hex[:12]}",
        retry_base_delay_seconds=0.1,
        auth_secret=f"test-{uuid.uuid4().hex}",
        log_format="console",
    )


@contextlib.asynccontextmanager
async def system(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """Intake, router and tracker in this process, on the given servers."""
    await bootstrap(settings)
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        await stack.enter_async_context(serving(router_app(settings)))
        tracker = await stack.enter_async_context(serving(tracker_app(settings)))
        yield intake, tracker


def reconnect_attempts(client: httpx.AsyncClient) -> int:
    """How often the service behind ``client`` tries to reach NATS again."""
    app = client._transport.app  # type: ignore[attr-defined]
    return app.state.runtime.broker.connection.options["max_reconnect_attempts"]


async def readiness(client: httpx.AsyncClient) -> int:
    return (await client.get("/health/ready")).status_code


async def ready_is(client: httpx.AsyncClient, status: int, within: float = 10) -> None:
    async def probe() -> bool:
        return await readiness(client) == status

    await eventually(probe, within=within, interval=0.1)


async def submit(intake: httpx.AsyncClient) -> str:
    """Submit until accepted, with one idempotency key (a 503 may still have stored it)."""
    key = {"Idempotency-Key": uuid.uuid4().hex}

    async def accepted() -> str | None:
        r = await intake.post("/complaints", json=ROAD, headers=key)
        return r.json()["tracking_id"] if r.status_code == 202 else None

    return await eventually(accepted, within=15, interval=0.2)


async def disposed(tracker: httpx.AsyncClient, tracking_id: str) -> None:
    """The complaint reached the tracker and the router disposed it."""

    async def probe() -> bool:
        r = await tracker.get(f"/complaints/{tracking_id}")
        return r.status_code == 200 and r.json()["status"] == "disposed"

    await eventually(probe, within=15, interval=0.1)


@contextlib.contextmanager
def postgres(pgdata: Path) -> Iterator[EmbeddedServer]:
    server = postgres_child(pgdata)
    with running_once(server.child):
        yield server


async def test_services_reconnect_when_nats_restarts_on_the_same_port(servers_dir):
    port = free_port()
    with postgres(servers_dir / "pg") as pg, contextlib.ExitStack() as servers:
        first_nats = contextlib.ExitStack()
        url = first_nats.enter_context(embedded_nats(servers_dir / "nats", port))
        async with system(own_settings(url, pg.url)) as (intake, tracker):
            await disposed(tracker, await submit(intake))
            # A longer outage too: nats-py would give up after 60 attempts (two minutes).
            assert reconnect_attempts(intake) < 0  # for ever

            first_nats.close()  # the nats-server stops
            await ready_is(intake, 503)
            await ready_is(tracker, 503)

            servers.enter_context(embedded_nats(servers_dir / "nats", port))  # same port, store
            await ready_is(intake, 200)
            await ready_is(tracker, 200)
            await disposed(tracker, await submit(intake))


@pytest.mark.parametrize("how", ["stopped", "killed"])
async def test_services_reconnect_when_postgresql_restarts_on_the_same_data(servers_dir, how):
    with contextlib.ExitStack() as servers:
        url = servers.enter_context(embedded_nats(servers_dir / "nats"))
        server = postgres_child(servers_dir / "pg")
        first_pg = contextlib.ExitStack()
        postmaster = first_pg.enter_context(running_once(server.child))
        async with system(own_settings(url, server.url)) as (intake, tracker):
            await disposed(tracker, await submit(intake))

            if how == "killed":
                os.kill(postmaster.pid, signal.SIGKILL)
            first_pg.close()
            await ready_is(tracker, 503)
            # The log is the source of truth: intake takes complaints meanwhile.
            assert await readiness(intake) == 200
            meanwhile = await submit(intake)

            await asyncio.to_thread(servers.enter_context, running_once(server.child))
            await ready_is(tracker, 200)
            await disposed(tracker, meanwhile)
            await disposed(tracker, await submit(intake))


async def test_a_pool_replaces_connections_broken_by_a_postgresql_crash(servers_dir):
    server = postgres_child(servers_dir / "pg")
    with contextlib.ExitStack() as servers:
        first = contextlib.ExitStack()
        postmaster = first.enter_context(running_once(server.child))
        pool = await create_pool(server.url, min_size=3, max_size=3)
        try:
            async with pool.acquire() as a, pool.acquire() as b, pool.acquire() as c:
                before = {await con.fetchval("SELECT pg_backend_pid()") for con in (a, b, c)}
            os.kill(postmaster.pid, signal.SIGKILL)
            first.close()
            await asyncio.sleep(0.2)  # the client notices the closed sockets meanwhile
            await asyncio.to_thread(servers.enter_context, running_once(server.child))
            outcomes = [await _backend_or_error(pool) for _ in range(4)]
        finally:
            await pool.close()
    # At most the first statement fails, on a dead connection; the rest run on new ones.
    assert all(isinstance(o, int) and o not in before for o in outcomes[1:]), outcomes


async def _backend_or_error(pool: asyncpg.Pool) -> int | str:
    try:
        return await pool.fetchval("SELECT pg_backend_pid()")
    except Exception as e:
        return type(e).__name__
