"""Replay rebuilds read models from the real log: verify finds a planted difference,
swap repairs it, and a second verify finds none."""

from __future__ import annotations

import contextlib

import asyncpg

from lapor.analytics.app import create_app as analytics_app
from lapor.devtools.testing import eventually, serving
from lapor.intake.app import create_app as intake_app
from lapor.ops.replay import replay
from lapor.router.app import create_app as router_app
from lapor.tracker.app import create_app as tracker_app

COMPLAINTS = [
    {
        "title": f"Sampah menumpuk di TPS {i}",
        "body": "Sampah tidak diangkut sejak seminggu, bau menyengat sampai ke rumah warga.",
        "category": "sampah",
    }
    for i in range(5)
]


async def test_replay_verifies_then_swaps_away_a_planted_difference(settings):
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
