"""``lapor migrate --check``: what the services' initContainers wait on (real NATS and
PostgreSQL). It changes nothing, fails naming what is missing, and passes once
``lapor migrate`` has run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid

import asyncpg
import nats
import nats.js.errors

from lapor.ops.commands.migrate import run
from lapor.services.database import with_database
from lapor.services.topology import stream_configs


def check(settings) -> int:
    return run(settings, argparse.Namespace(check=True))


async def admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def streams_of(settings, root: str) -> list[str]:
    nc = await nats.connect(settings.nats_url)
    try:
        names = [s.config.name for s in await nc.jetstream().streams_info()]
    finally:
        await nc.close()
    return [n for n in names if n.startswith(root.upper())]


async def migrations_table(url: str):
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT to_regclass('schema_migrations')")
    finally:
        await conn.close()


async def delete_streams(settings) -> None:
    nc = await nats.connect(settings.nats_url)
    try:
        for config in stream_configs(settings):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await nc.jetstream().delete_stream(config.name)
    finally:
        await nc.close()


def test_the_check_names_what_is_missing_and_changes_nothing(settings, infra, capsys):
    root = f"fresh{uuid.uuid4().hex[:8]}"
    database = f"c{uuid.uuid4().hex[:12]}"
    asyncio.run(admin(infra.database_url, f'CREATE DATABASE "{database}"'))
    url = with_database(infra.database_url, database)
    fresh = settings.model_copy(update={"subject_root": root, "database_url": url})
    try:
        assert check(fresh.model_copy(update={"database_url": None})) == 1
        said = capsys.readouterr().err
        assert f"stream {stream_configs(fresh)[0].name}" in said
        assert "bucket" in said and "migration" not in said  # no database given
        assert check(fresh) == 1
        assert "migration services/001_chassis.sql" in capsys.readouterr().err
        # Nothing was declared or migrated by checking.
        assert asyncio.run(streams_of(settings, root)) == []
        assert asyncio.run(migrations_table(url)) is None

        assert run(fresh, argparse.Namespace(check=False)) == 0
        assert check(fresh) == 0
        assert check(fresh.model_copy(update={"database_url": None})) == 0
    finally:
        asyncio.run(delete_streams(fresh))
        asyncio.run(admin(infra.database_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
