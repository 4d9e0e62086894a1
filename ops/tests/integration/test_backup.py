"""Backups restored on real NATS JetStream and PostgreSQL: the system runs, a backup is
taken, the streams are wiped, the backup is restored; then every stream holds what it
held (sequences, headers, storage times, consumers), the audit finds nothing, the rules
and the model are back, a rebuild of every read model equals the live ones of before,
and the system carries on. A damaged backup, and one that would overwrite streams, are
refused before anything changes; read models ahead of a restored log are found and
rebuilt."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any

import asyncpg
import nats
import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from lapor.analytics.app import create_app as analytics_app
from lapor.devtools import sample_files
from lapor.devtools.testing import (
    as_reporter,
    bearer,
    eventually,
    read_models_caught_up,
    serving,
)
from lapor.intake.app import create_app as intake_app
from lapor.ops import backup
from lapor.ops.audit import verify
from lapor.ops.commands.backup import COMMAND
from lapor.ops.replay import installed_projections, replay
from lapor.router.app import create_app as router_app
from lapor.router.domain import RoutingTable
from lapor.router.model import shipped_model
from lapor.router.model_store import ModelStore
from lapor.router.rules_store import RulesStore
from lapor.services.database import with_database
from lapor.tracker.app import create_app as tracker_app

ROAD = {
    "title": "Jalan berlubang di Jl. Tanjungpura",
    "body": "Lubang besar di depan pasar sudah dua minggu, membahayakan pengendara motor.",
    "category": "jalan",
    "reporter": {"name": "Siti Rahmawati", "phone": "+6281234567890"},
}
WASTE = {
    "title": "Sampah menumpuk di TPS Jl. Merdeka",
    "body": "Sampah tidak diangkut sejak seminggu, bau menyengat sampai ke rumah warga.",
    "category": "sampah",
    "anonymous": True,
}
LIGHT = {
    "title": "Lampu jalan mati di Jl. Gajah Mada",
    "body": "Tiga lampu penerangan jalan mati sejak sebulan, jalan gelap dan rawan.",
    "category": "jalan",
    "confidential": True,
    "reporter": {"name": "Budi Santoso", "email": "budi@example.org"},
}


@pytest.fixture
async def js(settings) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(settings.nats_url)
    yield nc.jetstream()
    await nc.close()


@contextlib.asynccontextmanager
async def system(settings):
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        await stack.enter_async_context(serving(router_app(settings)))
        tracker = await stack.enter_async_context(serving(tracker_app(settings)))
        await stack.enter_async_context(serving(analytics_app(settings)))
        yield intake, tracker


async def submit(intake, complaint: dict) -> str:
    r = await intake.post("/complaints", json=complaint)
    assert r.status_code == 202, r.text
    return r.json()["tracking_id"]


async def disposed(tracker, tracking_id: str) -> dict:
    async def probe():
        r = await tracker.get(f"/complaints/{tracking_id}")
        return r.json() if r.status_code == 200 and r.json()["opd"] else None

    return await eventually(probe)


async def fetch(settings, sql: str, *args: Any, database: str | None = None):
    url = (
        settings.database_url
        if database is None
        else with_database(settings.database_url, database)
    )
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def read_models(settings, database: str | None = None) -> dict[str, list[dict]]:
    """Every row of every read model's tables, in key order."""
    dump = {}
    for projection in installed_projections().values():
        for table, keys in projection.tables:
            rows = await fetch(
                settings, f"SELECT * FROM {table} ORDER BY {', '.join(keys)}", database=database
            )
            dump[table] = [dict(r) for r in rows]
    return dump


async def contents(js: JetStreamContext, stream: str) -> list[tuple]:
    """Every message of a stream as stored: sequence, subject, headers, data, time."""
    state = (await js.stream_info(stream)).state
    found: list[tuple] = []
    if not state.messages:
        return found
    for seq in range(state.first_seq, state.last_seq + 1):
        with contextlib.suppress(NotFoundError):
            m = await js.get_msg(stream, seq)
            found.append((m.seq, m.subject, m.headers, m.data, m.time))
    return found


async def consumers(js: JetStreamContext, stream: str) -> dict[str, tuple]:
    """Each durable consumer's configuration essentials and position."""
    found = {}
    for info in await js.consumers_info(stream):
        if info.config.durable_name:
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            found[info.name] = (info.config.filter_subject, info.config.ack_policy, floor)
    return found


async def everything(js: JetStreamContext, settings) -> dict[str, Any]:
    """What a stream holds and who reads it, for every stream a backup covers."""
    found = {}
    for c in backup.covered(settings.subjects):
        info = await js.stream_info(c.stream)
        found[c.stream] = (
            info.created,  # the stream itself: unchanged unless deleted and made again
            await contents(js, c.stream),
            await consumers(js, c.stream),
        )
    return found


async def wipe(js: JetStreamContext, settings) -> None:
    for c in backup.covered(settings.subjects):
        await js.delete_stream(c.stream)
    for c in backup.covered(settings.subjects):
        with pytest.raises(NotFoundError):
            await js.stream_info(c.stream)


async def test_a_backup_restored_after_a_wipe_gives_back_every_stream_and_the_same_read_models(
    settings, js, tmp_path
):
    table = files("lapor.router").joinpath("routing_table.toml").read_text(encoding="utf-8")
    bucket = settings.subjects.routing_rules_bucket
    await RulesStore.publish(js, table, bucket=bucket, author="Admin Diskominfo")
    models = ModelStore(
        js, rules_bucket=bucket, models_bucket=settings.subjects.routing_models_bucket
    )
    model = await models.publish(shipped_model(), author="Admin Diskominfo")

    async with system(settings) as (intake, tracker):
        road, waste, light = [await submit(intake, c) for c in (ROAD, WASTE, LIGHT)]
        # A complaint with a photo: its file is in the attachments' store, backed up too.
        photo = ("lubang.jpg", sample_files.phone_photo(), "image/jpeg")
        anonymous = {k: v for k, v in ROAD.items() if k != "reporter"}
        parts = [("complaint", (None, json.dumps(anonymous).encode(), "application/json"))]
        r = await intake.post("/complaints", files=[*parts, ("attachments", photo)])
        assert r.status_code == 202, r.text
        store = await js.object_store(settings.subjects.attachments_bucket)
        [stored] = await store.list()
        photo_bytes = (await store.get(stored.name)).data
        for tracking_id in (road, waste, light):
            await disposed(tracker, tracking_id)
        opd = (await tracker.get(f"/complaints/{road}")).json()["opd"]
        officer, base = bearer(settings, "agency", opd), f"/agencies/{opd}/complaints/{road}"
        r = await tracker.post(
            f"{base}/follow-ups", json={"message": "Tim meninjau."}, headers=officer
        )
        assert r.status_code == 202, r.text
        r = await tracker.post(
            f"{base}/resolution", json={"resolution": "Sudah ditambal."}, headers=officer
        )
        assert r.status_code == 202, r.text
        r = await tracker.post(
            f"/complaints/{road}/rating", json={"stars": 4}, headers=as_reporter(settings, road)
        )
        assert r.status_code == 202, r.text
        await read_models_caught_up(settings)
    # Something an operator must still see after a disaster.
    await js.publish(
        settings.subjects.dead_letter("test"),
        b'{"reason": "undecodable"}',
        headers={"Lapor-Consumer": "test", "Lapor-Original-Seq": "7"},
    )

    # The services are stopped, as for a restore. What there is:
    before = await everything(js, settings)
    audit = await verify(js, settings.subjects.events_stream, settings.subjects)
    assert audit.ok and audit.events == len(before[settings.subjects.events_stream][1]) >= 12
    live = await read_models(settings)
    assert len(live["tracker.complaints"]) == 4

    folder, manifest = await backup.create(settings, tmp_path / "backups")
    assert backup.verify_backup(folder) == manifest
    assert [s.role for s in manifest.streams] == [
        "events",
        "attachments",
        "reporters",
        "agency",
        "dead_letters",
        "routing_rules",
        "routing_models",
        "staff_accounts",
        "signins",
    ]
    assert manifest.absent == []
    for entry in manifest.streams:
        held = before[entry.stream][1]
        last = held[-1][0] if held else entry.last_seq  # an empty stream keeps its last_seq
        assert (entry.messages, entry.last_seq) == (len(held), last), entry.stream

    await wipe(js, settings)
    report = await backup.restore(settings, folder)
    assert [r.stream for r in report.streams] == [s.stream for s in manifest.streams]
    assert not any(r.replaced for r in report.streams)
    assert report.checked and report.stale == [] and report.skips == []

    after = await everything(js, settings)
    for c in backup.covered(settings.subjects):
        _, held, read_by = before[c.stream]
        assert after[c.stream][1] == held, f"{c.stream}: messages differ"
        assert after[c.stream][2] == read_by, f"{c.stream}: consumers differ"

    # The log's chains are whole, and the anchor of before still holds.
    again = await verify(
        js, settings.subjects.events_stream, settings.subjects, anchors=[audit.anchor]
    )
    assert again.ok and again.findings == [], again.describe()
    assert again.anchor == audit.anchor
    # Every reporter is back (the anonymous complaint has none).
    reporters = after[settings.subjects.reporters_stream][1]
    assert sorted(m[1] for m in reporters) == sorted(
        settings.subjects.reporter(t) for t in (road, light)
    )
    # The photo is back, whole (the store checks its digest as it reads).
    store = await js.object_store(settings.subjects.attachments_bucket)
    [stored] = await store.list()
    assert (await store.get(stored.name)).data == photo_bytes
    # The rules and the model in force are back.
    current = await RulesStore.current(js, bucket)
    assert current is not None and current.version == RoutingTable.from_text(table).version
    assert [c.revision for c in await RulesStore.changes(js, bucket)] == [1]
    restored_model = await models.current()
    assert restored_model is not None and restored_model.version == model.version

    # A rebuild of every read model from the restored log equals the live ones of before.
    verdicts = await replay(settings, [], mode="verify", show_progress=False)
    assert all(v.clean for v in verdicts.values()), {n: v.describe() for n, v in verdicts.items()}
    live_name = settings.database_url.rsplit("/", 1)[1]
    assert await read_models(settings, database=f"{live_name}_replay") == live
    assert await read_models(settings) == live

    # A damaged file is refused before anything is touched, even with --replace.
    archive = folder / manifest.stream("events").archive.path
    good = archive.read_bytes()
    archive.write_bytes(good[:100] + bytes([good[100] ^ 1]) + good[101:])
    with pytest.raises(backup.BackupCorrupt, match=r"\.s2: SHA-256"):
        await backup.restore(settings, folder, replace=True)
    assert await everything(js, settings) == after
    archive.write_bytes(good)
    # So is a restore over streams that hold messages, without --replace.
    with pytest.raises(backup.StreamsNotEmpty, match=settings.subjects.events_stream):
        await backup.restore(settings, folder)
    assert await everything(js, settings) == after

    # The system carries on from the restored log and consumers.
    async with system(settings) as (intake, tracker):
        late = await submit(intake, WASTE | {"title": "Sampah di Jl. Sultan Abdurrahman"})
        await disposed(tracker, late)
        await read_models_caught_up(settings)
    final = await verify(
        js, settings.subjects.events_stream, settings.subjects, anchors=[audit.anchor]
    )
    assert final.ok and final.events > audit.events
    verdicts = await replay(settings, [], mode="verify", show_progress=False)
    assert all(v.clean for v in verdicts.values())


async def test_read_models_ahead_of_a_restored_log_are_found_and_rebuilt(
    settings, js, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(backup.URL_ENV, (tmp_path / "backups").as_uri())
    async with system(settings) as (intake, tracker):
        kept = [await submit(intake, c) for c in (ROAD, WASTE)]
        for tracking_id in kept:
            await disposed(tracker, tracking_id)
        await read_models_caught_up(settings)
        assert await command(settings, "create", "--keep", "1") == 0
        lost = await submit(intake, LIGHT)  # after the backup: lost with the disaster
        await disposed(tracker, lost)
        ahead = await read_models_caught_up(settings)

    # The log is lost; PostgreSQL is not. The restored log ends before what the read
    # models applied.
    assert await command(settings, "restore", "latest") == 1  # the streams hold messages
    assert await command(settings, "restore", "latest", "--replace") == 3
    [(backup_id, folder)] = backup.complete_backups(tmp_path / "backups")
    manifest = backup.verify_backup(folder)
    capsys.readouterr()
    assert await command(settings, "list", "--check") == 0
    assert capsys.readouterr().out.startswith(f"{backup_id}: ")
    end = manifest.stream("events").last_seq
    assert end < ahead
    check = await backup.check_read_models(settings)
    assert sorted(check.stale) == sorted(
        f"{name}: ahead: applied up to seq {ahead}, the restored log ends at {end} "
        "(its rows hold events that are no longer in the log)"
        for name in installed_projections()
    )

    assert await command(settings, "read-models", "--rebuild") == 0
    rows = await fetch(settings, "SELECT tracking_id FROM tracker.complaints ORDER BY 1")
    assert [r["tracking_id"] for r in rows] == sorted(kept)
    assert await backup.check_read_models(settings) == backup.ReadModelCheck(end, [], [])

    # The next complaint takes a sequence the lost ones had: it is applied, not skipped.
    async with system(settings) as (intake, tracker):
        await disposed(tracker, await submit(intake, LIGHT | {"title": "Lampu mati lagi"}))
        await read_models_caught_up(settings)
    verdicts = await replay(settings, [], mode="verify", show_progress=False)
    assert all(v.clean for v in verdicts.values())
    assert len(await fetch(settings, "SELECT 1 FROM tracker.complaints")) == 3


async def command(settings, *argv: str) -> int:
    """``lapor backup ARGV`` in its own thread (it runs its own event loop)."""
    parser = argparse.ArgumentParser()
    COMMAND.arguments(parser)
    args = parser.parse_args(list(argv))
    return await asyncio.to_thread(COMMAND.run, settings, args)
