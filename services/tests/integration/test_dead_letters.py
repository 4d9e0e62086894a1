"""A message a handler cannot process is parked with its reason, never dropped, and never
blocks the messages behind it; a read model stops in front of it instead (real JetStream,
real PostgreSQL)."""

from __future__ import annotations

import contextlib

import asyncpg
import nats

from lapor.devtools.testing import eventually, serving
from lapor.intake.app import create_app as intake_app
from lapor.ops import projection_admin
from lapor.ops.replay import replay
from lapor.router.app import create_app as router_app
from lapor.services.eventstore import EventStore
from lapor.services.settings import Settings
from lapor.tracker.app import create_app as tracker_app

COMPLAINT = {
    "title": "Sampah menumpuk di TPS",
    "body": "Sampah tidak diangkut sejak seminggu, bau menyengat sampai ke rumah warga.",
    "category": "sampah",
}
POISON_ID = "POIS0-N0000"


async def dead_letters(settings: Settings) -> list[nats.aio.msg.Msg]:
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(settings.subjects.dead_letter_stream)
        return [
            await js.get_msg(settings.subjects.dead_letter_stream, seq)
            for seq in range(1, info.state.last_seq + 1)
        ]
    finally:
        await nc.close()


async def publish_poison(settings: Settings) -> None:
    nc = await nats.connect(settings.nats_url)
    subject = settings.subjects.complaint(POISON_ID, "complaint.received")
    await nc.jetstream().publish(subject, b"{not json", stream=settings.subjects.events_stream)
    await nc.close()


async def test_poison_message_is_parked_by_handlers_and_stops_the_read_model(settings):
    """Handlers (router, fan-out) park what they cannot process and go on; a read model
    never leaves a log event out on its own: it stops in front of it, says so in its
    health, and goes on once an operator has recorded the decision to skip it."""
    await publish_poison(settings)
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        await stack.enter_async_context(serving(router_app(settings)))
        tracker = await stack.enter_async_context(serving(tracker_app(settings)))
        tracking_id = (await intake.post("/complaints", json=COMPLAINT)).json()["tracking_id"]

        async def parked_by_each_handler():
            letters = await dead_letters(settings)
            return letters if len(letters) == 2 else None

        letters = await eventually(parked_by_each_handler)

        async def stopped():
            health = (await tracker.get("/health/ready")).json()
            return health if health["status"] == "degraded" else None

        health = await eventually(stopped)
        model = health["projections"]["tracker.status"]
        assert (model["status"], model["stopped_at"], model["checkpoint"]) == ("stopped", 1, 0)
        assert "cannot be read" in model["reason"]
        assert (await tracker.get(f"/complaints/{tracking_id}")).status_code == 404

        conn = await asyncpg.connect(settings.database_url)
        try:
            await projection_admin.record_skip(
                conn, "tracker.status", 1, "not an event: garbage in the log", "ops on duty"
            )
        finally:
            await conn.close()

        async def routed():
            r = await tracker.get(f"/complaints/{tracking_id}")
            return r.status_code == 200 and r.json()["opd"] == "dlh"

        await eventually(routed, within=30)  # the next attempt after the growing delay
        health = (await tracker.get("/health/ready")).json()
        assert health["status"] == "ready"
        assert health["projections"]["tracker.status"]["status"] == "ok"

    consumers = sorted(m.headers["Lapor-Consumer"] for m in letters)
    assert consumers == ["agency_fanout", "router"]
    for letter in letters:
        assert letter.data == b"{not json"
        assert letter.headers["Lapor-Original-Sequence"] == "1"
        assert "ValidationError" in letter.headers["Lapor-Reason"]
    nc = await nats.connect(settings.nats_url)
    store = EventStore(nc.jetstream(), settings.subjects)
    assert [e.envelope.type for e in await store.load(tracking_id)] == [
        "complaint.received",
        "complaint.routed",
        "complaint.disposed",
    ]
    await nc.close()

    report = await replay(settings, ["tracker.status"], mode="verify", show_progress=False)
    verdict = report["tracker.status"]
    assert verdict.clean, verdict.describe()  # the rebuild honours the same decision
    [skip] = verdict.skipped
    assert (skip.seq, skip.decided_by) == (1, "ops on duty")
    assert "skipped by decision of ops on duty" in verdict.describe()[0]


async def test_services_report_ready_when_nats_and_postgresql_answer(settings):
    async with serving(tracker_app(settings)) as tracker:
        r = await tracker.get("/health/ready")
        assert r.status_code == 200
        assert r.json()["checks"] == {"nats": "ok", "postgresql": "ok"}
        assert (await tracker.get("/health/live")).status_code == 200
