"""A message no consumer can process is parked with its reason, never dropped, and never
blocks the messages behind it (real JetStream, real PostgreSQL)."""

from __future__ import annotations

import contextlib

import nats

from lapor.intake.app import create_app as intake_app
from lapor.router.app import create_app as router_app
from lapor.services.eventstore import EventStore
from lapor.services.settings import Settings
from lapor.services.testing import eventually, serving
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


async def test_poison_message_is_parked_and_the_rest_flow_on(settings):
    await publish_poison(settings)
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        await stack.enter_async_context(serving(router_app(settings)))
        tracker = await stack.enter_async_context(serving(tracker_app(settings)))
        tracking_id = (await intake.post("/complaints", json=COMPLAINT)).json()["tracking_id"]

        async def routed():
            r = await tracker.get(f"/complaints/{tracking_id}")
            return r.status_code == 200 and r.json()["opd"] == "dlh"

        await eventually(routed)

        async def parked_by_each_consumer():
            letters = await dead_letters(settings)
            return letters if len(letters) == 3 else None

        letters = await eventually(parked_by_each_consumer)
    consumers = sorted(m.headers["Lapor-Consumer"] for m in letters)
    assert consumers == ["agency_fanout", "router", "tracker.status"]
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


async def test_services_report_ready_when_nats_and_postgresql_answer(settings):
    async with serving(tracker_app(settings)) as tracker:
        r = await tracker.get("/health/ready")
        assert r.status_code == 200
        assert r.json()["checks"] == {"nats": "ok", "postgresql": "ok"}
        assert (await tracker.get("/health/live")).status_code == 200
