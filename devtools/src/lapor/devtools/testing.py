"""pytest plugin: real NATS JetStream and PostgreSQL for the suite, isolated per test.

One embedded nats-server and one PostgreSQL per test session (or the servers named by
NATS_URL / DATABASE_URL, or Docker containers); each test gets its own subject root (so
its own streams) and its own database, both removed afterwards.

Tests that need them are marked ``connected``; the marker is added automatically to any
test that uses the ``settings`` fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import nats
import pytest
from fastapi import FastAPI

from lapor.devtools.infra import Infrastructure, infrastructure
from lapor.services.auth import issue_token, reporter_secret
from lapor.services.bootstrap import bootstrap
from lapor.services.database import with_database
from lapor.services.discovery import installed_services
from lapor.services.settings import Settings
from lapor.services.topology import key_value_configs, object_store_configs, stream_configs

T = TypeVar("T")


ROAD = {
    "title": "Jalan berlubang di Jl. Tanjungpura",
    "body": "Lubang besar di depan pasar sudah dua minggu, membahayakan pengendara motor.",
    "category": "jalan",
    "anonymous": True,
}
"""A complaint as a citizen submits it: the router sends it to public works (dpupr)."""


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    # Not under pytest's basetemp: pytest deletes older basetemps when another run starts,
    # which would pull the data folder from under a PostgreSQL still in use.
    data_dir = Path(tempfile.mkdtemp(prefix="lapor-test-"))
    try:
        with infrastructure(Settings(data_dir=data_dir)) as running:
            yield running
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def servers_dir() -> Iterator[Path]:
    """A folder for servers a test starts and stops itself (its own nats-server,
    PostgreSQL, or a whole ``lapor run``), removed afterwards. Not under pytest's basetemp,
    for the reason given in ``infra``."""
    path = Path(tempfile.mkdtemp(prefix="lapor-servers-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def settings(infra: Infrastructure) -> AsyncIterator[Settings]:
    """Settings for one test: a fresh subject root and database, bootstrapped."""
    name = f"t{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infra.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    test_settings = Settings(
        nats_url=infra.nats_url,
        database_url=with_database(infra.database_url, name),
        subject_root=name,
        retry_base_delay_seconds=0.1,
        auth_secret=f"test-{uuid.uuid4().hex}",
        log_format="console",
    )
    await bootstrap(test_settings)
    yield test_settings
    nc = await nats.connect(infra.nats_url)
    js = nc.jetstream()
    for config in stream_configs(test_settings):
        with contextlib.suppress(Exception):
            await js.delete_stream(config.name)
    for kv in key_value_configs(test_settings):
        with contextlib.suppress(Exception):
            await js.delete_key_value(kv.bucket)
    for bucket in object_store_configs(test_settings):
        with contextlib.suppress(Exception):
            await js.delete_object_store(bucket)
    await nc.close()
    admin = await asyncpg.connect(infra.database_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}_replay" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan (broker, subscribers, pool) and talk to it over ASGI."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@dataclass
class Faces:
    """intake, router, tracker and analytics in process, and the portal over them."""

    intake: httpx.AsyncClient
    tracker: httpx.AsyncClient
    analytics: httpx.AsyncClient
    portal: httpx.AsyncClient
    portal_app: FastAPI
    """Its lifespan running (NATS connected): serve it over TCP for a browser."""


@contextlib.asynccontextmanager
async def faces(settings: Settings) -> AsyncIterator[Faces]:
    """The services the portal is a client of, each served over ASGI with its lifespan
    (the router too: it routes what intake accepts), and the portal made with their
    clients: what the portal's, Open311's and the browser tests run against."""
    found = installed_services()
    async with contextlib.AsyncExitStack() as stack:

        async def serve(name: str) -> httpx.AsyncClient:
            return await stack.enter_async_context(serving(found[name].create_app(settings)))

        intake, _, tracker, analytics = [
            await serve(name) for name in ("intake", "router", "tracker", "analytics")
        ]
        module, _, function = found["portal"].app.partition(":")
        make_portal = getattr(import_module(module), function)
        app = make_portal(settings, intake=intake, tracker=tracker, analytics=analytics)
        portal = await stack.enter_async_context(serving(app))
        yield Faces(intake, tracker, analytics, portal, app)


async def disposed_and_answered(
    settings: Settings,
    tracker: httpx.AsyncClient,
    tracking_id: str,
    resolution: str,
    opd: str = "dpupr",
) -> None:
    """As the coordinator and the unit would: dispose the complaint to ``opd`` (or find
    the router did), answer it as ``opd``, and wait until the tracker shows it answered."""

    async def disposed() -> bool:
        r = await tracker.post(
            f"/complaints/{tracking_id}/disposition",
            json={"opd": opd},
            headers=bearer(settings, "admin"),
        )
        return r.status_code in (202, 409)  # 409: the router disposed it already

    async def answered() -> bool:
        r = await tracker.post(
            f"/agencies/{opd}/complaints/{tracking_id}/resolution",
            json={"resolution": resolution},
            headers=bearer(settings, "agency", opd),
        )
        return r.status_code == 202

    async def shows_answered() -> bool:
        r = await tracker.get(f"/complaints/{tracking_id}")
        return r.status_code == 200 and r.json()["status"] == "answered"

    for step in (disposed, answered, shows_answered):
        await eventually(step)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "settings" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.connected)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], within: float = 15.0, interval: float = 0.05
) -> T:
    """Await ``probe()`` until it returns something truthy (read models are eventually
    consistent); fail with its last answer after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {within}s; last: {result!r}")
        await asyncio.sleep(interval)


async def read_models_caught_up(settings: Settings, within: float = 15.0) -> int:
    """Wait until every installed read model has applied the whole log (its checkpoint is
    the events stream's last sequence); that sequence. A verify or a comparison made
    before then sees a read model still behind, not a difference."""
    names = sorted(ep.name for ep in entry_points(group="lapor.projections"))
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()

        async def probe() -> int | None:
            end = (await js.stream_info(settings.subjects.events_stream)).state.last_seq
            conn = await asyncpg.connect(settings.database_url)
            try:
                rows = await conn.fetch("SELECT projection, last_seq FROM projection_checkpoints")
            finally:
                await conn.close()
            at = {r["projection"]: r["last_seq"] for r in rows}
            return end if all(at.get(n) == end for n in names) else None

        return await eventually(probe, within)
    finally:
        await nc.close()


def bearer(settings: Settings, role: str, opd: str | None = None) -> dict[str, str]:
    """Authorization header of an admin (``role="admin"``) or an officer of ``opd``."""
    assert settings.auth_secret is not None
    token = issue_token(settings.auth_secret.get_secret_value(), role, opd, name=f"test {role}")
    return {"Authorization": f"Bearer {token}"}


def as_reporter(settings: Settings, tracking_id: str) -> dict[str, str]:
    """The header that proves the reporter's ownership of ``tracking_id``."""
    assert settings.auth_secret is not None
    return {
        "X-Reporter-Secret": reporter_secret(settings.auth_secret.get_secret_value(), tracking_id)
    }


class CountingJetStream:
    """A JetStream context that counts its reads of single messages (``get_msg``), for
    tests that a path reads the log no more than it must; everything else is the real
    context's."""

    def __init__(self, js: nats.js.JetStreamContext) -> None:
        self.js, self.gets = js, 0

    async def get_msg(self, *args: object, **kwargs: object) -> object:
        self.gets += 1
        return await self.js.get_msg(*args, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.js, name)
