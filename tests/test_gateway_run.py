"""``lapor run``'s one address: the real command, in a subprocess with its own data folder
and ports; through the gateway alone the portal answers, a complaint is submitted and read
back, an export streams to the admin whose token reached the tracker, Open311 answers, and
the tracker's ``/docs`` loads its assets from behind its prefix."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from lapor.devtools.chaos import LocalSystem
from lapor.devtools.infra import free_port
from lapor.devtools.testing import ROAD, bearer, eventually

pytestmark = pytest.mark.connected


async def test_everything_is_served_on_one_address(servers_dir):
    system = LocalSystem.start(
        servers_dir / "gateway", env={"LAPOR_GATEWAY_PORT": str(free_port())}
    )
    try:
        await system.up()
        one = system.described()["gateway"]
        assert f"Open {one}/" in system.output.read_text()
        assert "gateway" in system.pids()
        admin = bearer(system.settings(), "admin")
        async with httpx.AsyncClient(base_url=one, timeout=10) as client:
            home = await client.get("/")
            assert home.status_code == 200 and "text/html" in home.headers["content-type"]

            key = {"Idempotency-Key": uuid.uuid4().hex}

            async def accepted() -> str | None:
                r = await client.post("/api/intake/complaints", json=ROAD, headers=key)
                return r.json()["tracking_id"] if r.status_code == 202 else None

            tracking_id = await eventually(accepted, within=20, interval=0.2)

            async def readable() -> dict | None:
                r = await client.get(f"/api/tracker/complaints/{tracking_id}")
                return r.json() if r.status_code == 200 else None

            assert (await eventually(readable, within=30, interval=0.1))["tracking_id"] == (
                tracking_id
            )

            # The Authorization header reaches the tracker: without it, no export.
            refused = await client.get("/api/tracker/exports/complaints.csv")
            assert refused.status_code in (401, 403)
            async with client.stream(
                "GET", "/api/tracker/exports/complaints.csv", headers=admin
            ) as export:
                assert export.status_code == 200
                assert "content-length" not in export.headers  # streamed, not buffered
                body = b"".join([chunk async for chunk in export.aiter_bytes()])
            assert tracking_id.encode() in body

            services = await client.get("/open311/v2/services.json")
            assert services.status_code == 200 and services.json()

            docs = await client.get("/api/tracker/docs")
            assert docs.status_code == 200
            assert "/api/tracker/docs/static/swagger-ui-bundle.js" in docs.text
            for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
                r = await client.get(f"/api/tracker/docs/static/{asset}")
                assert r.status_code == 200, asset
            spec = await client.get("/api/tracker/openapi.json")
            assert spec.json()["servers"] == [{"url": "/api/tracker"}]
    finally:
        code = await asyncio.to_thread(system.stop)
    assert code == 0
