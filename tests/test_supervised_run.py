"""``lapor run`` heals itself: the real command, in a subprocess with its own data folder
and ports; a service process, the nats-server and the postmaster are each killed with
SIGKILL, each comes back on its own, every service is ready again, what was stored before
is still there, and a complaint submitted afterwards reaches the tracker."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from lapor.devtools.chaos import LocalSystem
from lapor.devtools.testing import ROAD, eventually

pytestmark = pytest.mark.connected


async def submit(client: httpx.AsyncClient, intake: str) -> str:
    key = {"Idempotency-Key": uuid.uuid4().hex}

    async def accepted() -> str | None:
        r = await client.post(f"{intake}/complaints", json=ROAD, headers=key)
        return r.json()["tracking_id"] if r.status_code == 202 else None

    return await eventually(accepted, within=20, interval=0.2)


async def status(client: httpx.AsyncClient, tracker: str, tracking_id: str) -> str | None:
    r = await client.get(f"{tracker}/complaints/{tracking_id}")
    return r.json()["status"] if r.status_code == 200 else None


async def disposed(client: httpx.AsyncClient, tracker: str, tracking_id: str) -> None:
    async def probe() -> bool:
        return await status(client, tracker, tracking_id) == "disposed"

    await eventually(probe, within=30, interval=0.1)


async def test_lapor_run_restarts_a_killed_service_nats_server_and_postmaster(servers_dir):
    system = LocalSystem.start(servers_dir / "run")
    children: dict[str, int] = {}
    try:
        await system.up()
        services = system.services
        intake, tracker = services["intake"], services["tracker"]
        async with httpx.AsyncClient(timeout=5) as client:
            before = await submit(client, intake)
            await disposed(client, tracker, before)

            recovery = {}
            for victim in ("tracker", "nats-server", "postgresql"):
                pid = system.pids()[victim]
                recovery[victim] = await system.recovery(victim, within=30)
                said = f"[supervisor] {victim} (pid {pid}) killed by SIGKILL"
                assert any(line.startswith(said) for line in system.supervisor_lines())
            print("recovery (s):", {k: round(v, 2) for k, v in recovery.items()})

            # Stored before the crashes: in JetStream's store and through PostgreSQL's
            # crash recovery.
            assert await status(client, tracker, before) == "disposed"
            await disposed(client, tracker, await submit(client, intake))
        children = system.pids()
    finally:
        code = await asyncio.to_thread(system.stop)
    assert code == 0
    assert set(children) == {"nats-server", "postgresql", "gateway", *services}
    assert not any(system.owns(pid) for pid in children.values()), "children left running"
