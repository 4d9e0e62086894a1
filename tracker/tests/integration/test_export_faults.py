"""Complaint exports under bad input and faults: every parameter is checked before the first
byte goes out, and a failure after it cuts the stream short instead of ending it like a
complete file."""

from __future__ import annotations

import asyncpg
import pytest

from lapor.devtools.testing import bearer, serving
from lapor.services.settings import Settings
from lapor.tracker.app import create_app

from .test_exports import CHUNK_ROWS, insert, insert_generated, streaming

PATHS = ["/exports/complaints.csv", "/exports/complaints.ndjson"]


@pytest.mark.parametrize("path", PATHS)
async def test_every_parameter_is_checked_before_the_stream_starts(
    settings: Settings, path: str
) -> None:
    refused = [
        ({"received_from": "0001-01-01"}, "received_from", "must not be before 1970-01-01"),
        ({"received_to": "0001-01-01"}, "received_to", "must not be before 1970-01-01"),
        (
            {"received_from": "2026-02-01", "received_to": "2026-02-01"},
            "received_to",
            "must be after received_from (the period is [from, to))",
        ),
    ]
    admin = bearer(settings, "admin")
    async with serving(create_app(settings)) as client:
        for params, field, reason in refused:
            r = await client.get(path, headers=admin, params=params)
            assert r.status_code == 422, (params, r.text)
            assert r.json()["errors"] == [{"field": field, "reason": reason}]


async def test_the_extremes_of_the_period_export_everything(settings: Settings) -> None:
    await insert(settings, {"tracking_id": "AAAAA-00001"}, {"tracking_id": "AAAAA-00002"})
    period = {"received_from": "1970-01-01", "received_to": "9999-12-31"}
    async with serving(create_app(settings)) as client:
        r = await client.get(
            "/exports/complaints.ndjson", headers=bearer(settings, "admin"), params=period
        )
    assert r.status_code == 200
    assert len(r.text.splitlines()) == 2


async def export_backends(settings: Settings) -> list[int]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            """SELECT pid FROM pg_stat_activity
                WHERE datname = current_database() AND query LIKE '/* tracker export */%'"""
        )
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


@pytest.mark.parametrize("path", PATHS)
async def test_a_failure_after_the_stream_started_cuts_it_short(
    settings: Settings, path: str
) -> None:
    total = 20 * CHUNK_ROWS
    await insert_generated(settings, total)
    received = b""
    async with (
        streaming(settings) as client,
        client.stream("GET", path, headers=bearer(settings, "admin")) as response,
    ):
        assert response.status_code == 200
        parts = response.aiter_bytes()
        while received.count(b"\n") < CHUNK_ROWS:  # the export is well under way
            received += await anext(parts)
        # PostgreSQL goes away under the running export.
        killer = await asyncpg.connect(settings.database_url)
        try:
            for pid in await export_backends(settings):
                await killer.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await killer.close()
        # Not a clean end of the body: the error reaches the server, which drops the line.
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
            async for part in parts:
                received += part
    assert received.count(b"\n") < total
