"""The router on real NATS JetStream: one ComplaintRouted per complaint however often
ComplaintReceived is delivered, and each agency's topic carries its complaints only."""

from __future__ import annotations

import contextlib
import uuid

import nats

from lapor.devtools.testing import CountingJetStream, eventually, serving
from lapor.intake.app import create_app as intake_app
from lapor.router.app import create_app as router_app
from lapor.router.domain import RoutingTable
from lapor.router.handlers import route_complaint
from lapor.services.eventstore import EventStore
from lapor.services.settings import Settings
from lapor.shared.envelope import decode, envelope, parse
from lapor.shared.events import (
    Actor,
    AuthorityDeclined,
    ComplaintAssigned,
    ComplaintReceived,
    ComplaintRouted,
    FollowUpPosted,
)

ROAD = {
    "title": "Jalan berlubang di Jl. Tanjungpura",
    "body": "Lubang besar di depan pasar sudah dua minggu, membahayakan pengendara.",
    "category": "jalan",
    "anonymous": True,
    "reporter": {"name": "Siti Rahmawati", "phone": "+6281234567890", "email": "siti@example.com"},
}
WASTE = {
    "title": "Sampah menumpuk di TPS",
    "body": "Sampah tidak diangkut sejak seminggu, bau menyengat sampai ke rumah warga.",
    "category": "sampah",
    "reporter": {"name": "Budi Santoso", "phone": "+6281311122233"},
}


async def read_all(settings: Settings, stream: str, subject: str) -> list[tuple[str, bytes]]:
    """What a consumer filtered on ``subject`` receives from the start of ``stream``."""
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(subject, stream=stream)
        received: list[tuple[str, bytes]] = []
        # nats-py raises its own TimeoutError, or a plain one when the deadline ran out
        # between its two requests: both are TimeoutError.
        with contextlib.suppress(TimeoutError):
            while True:
                for m in await sub.fetch(batch=100, timeout=0.5):
                    received.append((m.subject, m.data))
                    await m.ack()
        return received
    finally:
        await nc.close()


async def test_redelivered_received_event_produces_one_routed_event(settings):
    async with serving(intake_app(settings)) as intake:
        tracking_id = (await intake.post("/complaints", json=ROAD)).json()["tracking_id"]
    nc = await nats.connect(settings.nats_url)
    store = EventStore(nc.jetstream(), settings.subjects)
    [received] = await store.load(tracking_id)
    event = decode(received.envelope)
    assert isinstance(event, ComplaintReceived)
    table = RoutingTable.load()
    for _ in range(3):  # the same delivery, handled three times
        await route_complaint(store, table, received, auto_dispose=0.8)
    history = await store.load(tracking_id)
    await nc.close()
    assert [e.envelope.type for e in history] == [
        "complaint.received",
        "complaint.routed",
        "complaint.disposed",
    ]
    routed = decode(history[1].envelope)
    assert isinstance(routed, ComplaintRouted) and routed.opd == "dpupr"
    assert history[1].envelope.causation_id == received.envelope.event_id


async def test_a_new_complaint_is_routed_on_what_its_trigger_carries_without_a_read(settings):
    async with serving(intake_app(settings)) as intake:
        tracking_id = (await intake.post("/complaints", json=WASTE)).json()["tracking_id"]
    nc = await nats.connect(settings.nats_url)
    store = EventStore(nc.jetstream(), settings.subjects)
    [received] = await store.load(tracking_id)  # as the router's consumer is delivered it
    counting = CountingJetStream(store.js)
    decision = await route_complaint(
        EventStore(counting, settings.subjects), RoutingTable.load(), received, auto_dispose=0.8
    )
    history = await store.load(tracking_id)
    await nc.close()
    assert counting.gets == 0  # not the complaint's last event, nor its chain's tip
    assert decision is not None and decision.opd == "dlh"
    assert [e.envelope.type for e in history] == [
        "complaint.received",
        "complaint.routed",
        "complaint.disposed",
    ]


async def test_router_service_survives_a_restart_without_routing_twice(settings):
    async with serving(intake_app(settings)) as intake:
        ids = [
            (await intake.post("/complaints", json=c)).json()["tracking_id"] for c in (ROAD, WASTE)
        ]
    nc = await nats.connect(settings.nats_url)
    store = EventStore(nc.jetstream(), settings.subjects)
    for _ in range(2):  # second start: a new process reading the same durable consumer
        async with serving(router_app(settings)):
            for tracking_id in ids:
                await eventually(lambda tid=tracking_id: store.last(tid, "complaint.disposed"))
    # Forget the consumer's acknowledgements: everything is delivered again.
    await nc.jetstream().delete_consumer(settings.subjects.events_stream, "router")
    async with serving(router_app(settings)):
        await eventually(lambda: _consumer_done(nc, settings), within=10)
    for tracking_id in ids:
        types = [e.envelope.type for e in await store.load(tracking_id)]
        assert types == ["complaint.received", "complaint.routed", "complaint.disposed"]
    await nc.close()


async def _consumer_done(nc, settings: Settings) -> bool:
    info = await nc.jetstream().consumer_info(settings.subjects.events_stream, "router")
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_agency_topic_carries_only_its_complaints_and_no_identity(settings):
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        await stack.enter_async_context(serving(router_app(settings)))
        road = (await intake.post("/complaints", json=ROAD)).json()["tracking_id"]
        waste = (await intake.post("/complaints", json=WASTE)).json()["tracking_id"]
        subjects = settings.subjects

        async def copies(opd: str):
            found = await read_all(settings, subjects.agency_stream, subjects.agency_all(opd))
            return found or None

        dpupr = await eventually(lambda: copies("dpupr"))
        dlh = await eventually(lambda: copies("dlh"))

    assert [parse(data).complaint_id for _, data in dpupr] == [road]
    assert [parse(data).complaint_id for _, data in dlh] == [waste]
    for _, data in dpupr + dlh:
        copy = decode(parse(data))
        assert isinstance(copy, ComplaintAssigned)
        for secret in (b"Siti", b"Budi", b"+62813", b"+62812", b"example.com"):
            assert secret not in data


async def test_agency_topic_follows_the_complaint_in_order_and_loses_it_on_decline(settings):
    officer = Actor(role="agency", opd="dpupr")
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        await stack.enter_async_context(serving(router_app(settings)))
        road = (await intake.post("/complaints", json=ROAD)).json()["tracking_id"]
        nc = await nats.connect(settings.nats_url)
        store = EventStore(nc.jetstream(), settings.subjects)
        await eventually(lambda: store.last(road, "complaint.disposed"))
        for event in (
            FollowUpPosted(opd="dpupr", message="Tim sudah meninjau lokasi"),
            AuthorityDeclined(opd="dpupr", reason="Ini jalan provinsi", by=officer),
        ):
            last = await store.last(road)
            env = envelope(event, complaint_id=road, correlation_id=uuid.uuid4())
            await store.append(env, expected_last_seq=last.seq)
        subjects = settings.subjects

        async def copies(opd: str, n: int):
            found = await read_all(settings, subjects.agency_stream, subjects.agency_all(opd))
            return found if len(found) >= n else None

        dpupr = await eventually(lambda: copies("dpupr", 3))
        province = await eventually(lambda: copies("pemprov_kalbar", 1))
        await nc.close()

    assert [parse(data).type for _, data in dpupr] == [
        "agency.complaint_assigned",
        "complaint.followed_up",
        "complaint.authority_declined",
    ]
    assert [parse(data).type for _, data in province] == ["agency.complaint_assigned"]
    assert all(parse(data).complaint_id == road for _, data in dpupr + province)
