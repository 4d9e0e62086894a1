"""Replay rebuilds read models from the real log: verify finds a planted difference,
swap repairs it, and a second verify finds none; in production into a database the
operator provisioned, as a role without CREATEDB, creating nothing on the live server."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from lapor.analytics.app import create_app as analytics_app
from lapor.devtools.testing import eventually, read_models_caught_up, serving
from lapor.intake.app import create_app as intake_app
from lapor.ops.replay import (
    REBUILD_LOCK,
    REBUILD_MARKER,
    NotARebuildDatabase,
    RebuildBusy,
    replay,
)
from lapor.router.app import create_app as router_app
from lapor.services.database import migrate, with_database
from lapor.services.settings import Settings
from lapor.tracker.app import create_app as tracker_app

COMPLAINTS = [
    {
        "title": f"Sampah menumpuk di TPS {i}",
        "body": "Sampah tidak diangkut sejak seminggu, bau menyengat sampai ke rumah warga.",
        "category": "sampah",
    }
    for i in range(5)
]


async def disposed_complaints(settings: Settings) -> list[str]:
    """Five complaints through the four services, until the tracker shows them disposed and
    every read model has applied the whole log (a verify compares a rebuild to the log's
    end with the live tables: one still behind would differ)."""
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        await stack.enter_async_context(serving(router_app(settings)))
        await stack.enter_async_context(serving(tracker_app(settings)))
        await stack.enter_async_context(serving(analytics_app(settings)))
        ids = [(await intake.post("/complaints", json=c)).json()["tracking_id"] for c in COMPLAINTS]

        async def all_disposed():
            rows = await _fetch(
                settings, "SELECT count(*) AS n FROM tracker.complaints WHERE status = 'disposed'"
            )
            return rows[0]["n"] == len(ids)

        await eventually(all_disposed)
        await read_models_caught_up(settings)
    return ids


async def test_replay_verifies_then_swaps_away_a_planted_difference(settings):
    ids = await disposed_complaints(settings)

    # Someone changed a read model behind the log's back.
    await _fetch(
        settings, f"UPDATE tracker.complaints SET status = 'closed' WHERE tracking_id = '{ids[0]}'"
    )
    await _fetch(settings, "DELETE FROM analytics.opds")

    report = await replay(settings, [], mode="verify", show_progress=False)
    [changed] = report["tracker.status"].differences
    assert changed.kind == "changed" and changed.key == (ids[0],)
    assert changed.live["status"] == "closed" and changed.rebuilt["status"] == "disposed"
    assert [d.kind for d in report["analytics.completion"].differences] == ["extra"]
    assert not report["tracker.status"].clean

    await replay(
        settings, ["tracker.status", "analytics.completion"], mode="swap", show_progress=False
    )
    again = await replay(settings, [], mode="verify", show_progress=False)
    assert sorted(again) == ["analytics.completion", "analytics.facts", "tracker.status"]
    assert all(v.clean and not v.skipped for v in again.values()), again
    rows = await _fetch(
        settings, f"SELECT status FROM tracker.complaints WHERE tracking_id = '{ids[0]}'"
    )
    assert rows[0]["status"] == "disposed"


async def _fetch(settings, sql: str):
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def as_role(url: str, role: str) -> str:
    """The same server and database, signed in as ``role`` (the test server trusts its
    socket: no password)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname or ''}"))


@contextlib.asynccontextmanager
async def provisioned(settings: Settings) -> AsyncIterator[Settings]:
    """What an operator provisions for replay in production: a role without CREATEDB,
    allowed to read and replace the live read models, and a database of its own for
    rebuilds. Yields the replay Job's settings, both URLs signed in as that role."""
    assert settings.database_url is not None
    role = f"replay_{uuid.uuid4().hex[:10]}"
    live_name = urlsplit(settings.database_url).path.lstrip("/")
    rebuild_name = f"{live_name}_rebuild"
    admin = await asyncpg.connect(settings.database_url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN NOCREATEDB NOCREATEROLE NOSUPERUSER")
        for schema in ("public", "tracker", "analytics"):
            await admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
            await admin.execute(
                f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA "
                f"{schema} TO {role}"
            )
            await admin.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
        await admin.execute(f'CREATE DATABASE "{rebuild_name}" OWNER {role}')
        yield settings.model_copy(
            update={
                "database_url": as_role(settings.database_url, role),
                "rebuild_database_url": as_role(
                    with_database(settings.database_url, rebuild_name), role
                ),
            }
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{rebuild_name}" WITH (FORCE)')
        await admin.execute(f"DROP OWNED BY {role}")  # its grants on the live tables
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def test_replay_into_a_provisioned_database_needs_no_createdb(settings):
    ids = await disposed_complaints(settings)
    await _fetch(
        settings, f"UPDATE tracker.complaints SET status = 'closed' WHERE tracking_id = '{ids[0]}'"
    )
    live_name = urlsplit(settings.database_url).path.lstrip("/")

    async with provisioned(settings) as job:
        # The premise: this role cannot create a database.
        conn = await asyncpg.connect(job.database_url)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute('CREATE DATABASE "should_not_exist"')
        finally:
            await conn.close()

        report = await replay(job, [], mode="verify", show_progress=False)
        [changed] = report["tracker.status"].differences
        assert changed.key == (ids[0],) and changed.rebuilt["status"] == "disposed"

        swapped = await replay(job, ["tracker.status"], mode="swap", show_progress=False)
        assert swapped["tracker.status"].stopped is None
        rows = await _fetch(
            settings, f"SELECT status FROM tracker.complaints WHERE tracking_id = '{ids[0]}'"
        )
        assert rows[0]["status"] == "disposed"

        # Again into the same database: emptied first, so the rebuild is not doubled.
        again = await replay(job, [], mode="verify", show_progress=False)
        assert all(v.clean for v in again.values()), again
        rebuilt = await _fetch(
            job.model_copy(update={"database_url": job.rebuild_database_url}),
            "SELECT count(*) AS n FROM tracker.complaints",
        )
        assert rebuilt[0]["n"] == len(ids)

        # Nothing was created beside the live database.
        created = await _fetch(
            settings, f"SELECT datname FROM pg_database WHERE datname = '{live_name}_replay'"
        )
        assert created == []

        # Held by another replay: this one stops at once, touching nothing.
        holder = await asyncpg.connect(job.rebuild_database_url)
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", REBUILD_LOCK)
            with pytest.raises(RebuildBusy):
                await replay(job, [], mode="verify", show_progress=False)
        finally:
            await holder.close()


async def test_replay_refuses_to_empty_a_database_it_did_not_make(settings):
    async with provisioned(settings) as job:
        # The live database itself, even signed in as another role.
        live = job.model_copy(update={"rebuild_database_url": job.database_url})
        with pytest.raises(NotARebuildDatabase, match="the live database"):
            await replay(live, [], mode="verify", show_progress=False)

        # Another database with lapor tables (another deployment's live one, say).
        assert job.rebuild_database_url is not None
        conn = await asyncpg.connect(job.rebuild_database_url)
        try:
            await migrate(conn)
            await conn.execute("INSERT INTO projection_checkpoints (projection) VALUES ('kept')")
        finally:
            await conn.close()
        with pytest.raises(NotARebuildDatabase, match="replay did not make"):
            await replay(job, [], mode="verify", show_progress=False)
        conn = await asyncpg.connect(job.rebuild_database_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM projection_checkpoints") == 1
            assert await conn.fetchval("SELECT to_regclass($1)", REBUILD_MARKER) is None
        finally:
            await conn.close()
