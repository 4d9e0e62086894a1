"""The status projection on real JetStream and PostgreSQL: exactly-once effect under
redelivery and replay, and agency actions appended with optimistic concurrency."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from lapor.devtools.testing import bearer, eventually, serving
from lapor.services.eventstore import EventStore
from lapor.services.settings import Settings
from lapor.shared.envelope import envelope
from lapor.shared.events import (
    Actor,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintRouted,
    FollowUpPosted,
)
from lapor.shared.tracking import new_tracking_id
from lapor.tracker.app import create_app
from lapor.tracker.read_model import StatusProjection

DURABLE = StatusProjection.name.replace(".", "_")
ADMIN = Actor(role="admin")


async def seed(settings: Settings, complaints: int = 3) -> tuple[list[str], int]:
    """Append received -> routed -> disposed -> followed_up for each complaint; returns the
    ids and the last sequence."""
    nc = await nats.connect(settings.nats_url)
    store = EventStore(nc.jetstream(), settings.subjects)
    ids, seq = [], 0
    for i in range(complaints):
        cid = new_tracking_id()
        ids.append(cid)
        corr = uuid.uuid4()
        last = 0
        for event in (
            ComplaintReceived(title=f"Jalan rusak {i}", body="Jalan berlubang di depan pasar"),
            ComplaintRouted(
                opd="dpupr",
                opd_name="DPUPR",
                rule="category:jalan",
                reason="jalan kota",
                confidence=0.9,
                rules_version="t",
            ),
            ComplaintDisposed(opd="dpupr", opd_name="DPUPR", by=ADMIN, automatic=False),
            FollowUpPosted(opd="dpupr", message="Tim sudah meninjau lokasi"),
        ):
            last = seq = await store.append(
                envelope(event, complaint_id=cid, correlation_id=corr), expected_last_seq=last
            )
    await nc.close()
    return ids, seq


async def snapshot(settings: Settings) -> tuple[list, list, int]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        complaints = await conn.fetch("SELECT * FROM tracker.complaints ORDER BY tracking_id")
        history = await conn.fetch("SELECT * FROM tracker.history ORDER BY seq")
        checkpoint = await conn.fetchval(
            "SELECT last_seq FROM projection_checkpoints WHERE projection = $1",
            StatusProjection.name,
        )
        return [dict(r) for r in complaints], [dict(r) for r in history], checkpoint or 0
    finally:
        await conn.close()


async def run_until_caught_up(settings: Settings, last_seq: int) -> tuple[list, list, int]:
    async with serving(create_app(settings)):

        async def caught_up():
            snap = await snapshot(settings)
            return snap if snap[2] == last_seq else None

        return await eventually(caught_up)


async def forget_consumer(settings: Settings) -> None:
    """As if the consumer's acks were lost: the next start redelivers the whole log."""
    nc = await nats.connect(settings.nats_url)
    await nc.jetstream().delete_consumer(settings.subjects.events_stream, DURABLE)
    await nc.close()


async def test_projection_applied_twice_gives_the_same_rows(settings):
    _, last_seq = await seed(settings)
    complaints, history, _ = await run_until_caught_up(settings, last_seq)
    assert [c["status"] for c in complaints] == ["in_progress"] * 3, (complaints, history, _)
    assert len(history) == 12

    # Redelivery of everything: every event is at or below the checkpoint.
    await forget_consumer(settings)
    assert await run_until_caught_up(settings, last_seq) == (complaints, history, last_seq)

    # Restart from an older checkpoint: events above it are applied a second time.
    conn = await asyncpg.connect(settings.database_url)
    await conn.execute("UPDATE projection_checkpoints SET last_seq = 2")
    await conn.close()
    await forget_consumer(settings)
    assert await run_until_caught_up(settings, last_seq) == (complaints, history, last_seq)


async def test_follow_up_is_appended_and_projected(settings):
    ids, last_seq = await seed(settings, complaints=1)
    async with serving(create_app(settings)) as client:
        base = f"/agencies/dpupr/complaints/{ids[0]}"
        officer = bearer(settings, "agency", "dpupr")
        unauthenticated = await client.post(f"{base}/resolution", json={"resolution": "x"})
        assert unauthenticated.status_code == 401
        r = await client.post(
            f"{base}/resolution", json={"resolution": "Sudah diperbaiki"}, headers=officer
        )
        assert r.status_code == 202, r.text

        async def resolved():
            r = await client.get(f"/complaints/{ids[0]}")
            return r.json() if r.status_code == 200 and r.json()["status"] == "answered" else None

        body = await eventually(resolved)
        assert body["history"][-1]["note"] == "Sudah diperbaiki"

        again = await client.post(
            f"{base}/resolution", json={"resolution": "lagi"}, headers=officer
        )
        assert again.status_code == 409, again.text
        assert again.json()["status"] == "answered" and again.json()["allowed_actions"] == []
        other_unit = bearer(settings, "agency", "dlh")
        other = await client.post(
            f"/agencies/dlh/complaints/{ids[0]}/follow-ups",
            json={"message": "bukan kami"},
            headers=other_unit,
        )
        assert other.status_code == 404
        wrong_token = await client.post(
            f"{base}/follow-ups", json={"message": "menyamar"}, headers=other_unit
        )
        assert wrong_token.status_code == 403
        reporter_only = await client.post(f"/complaints/{ids[0]}/confirmation", headers=officer)
        assert reporter_only.status_code == 403
        assert (await client.get("/complaints/not-an-id")).status_code == 422
        typed = ids[0].lower().replace("-", " ")
        assert (await client.get(f"/complaints/{typed}")).json()["tracking_id"] == ids[0]
    nc = await nats.connect(settings.nats_url)
    info = await nc.jetstream().stream_info(settings.subjects.events_stream)
    await nc.close()
    assert info.state.messages == last_seq + 1  # the refused actions appended nothing


async def test_racing_actions_on_one_complaint_exactly_one_wins(settings):
    ids, last_seq = await seed(settings, complaints=1)
    officer = bearer(settings, "agency", "dpupr")
    base = f"/agencies/dpupr/complaints/{ids[0]}"
    async with serving(create_app(settings)) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{base}/resolution", json={"resolution": f"versi {i}"}, headers=officer
                )
                for i in range(4)
            ),
            *(
                client.post(f"{base}/declination", json={"reason": f"alasan {i}"}, headers=officer)
                for i in range(4)
            ),
        )
    codes = [r.status_code for r in answers]
    assert codes.count(202) == 1, [r.text for r in answers]
    # The losers are refused: a conflict, or, once a declination has won, "not yours".
    assert set(codes) - {202} <= {409, 404}, [r.text for r in answers]
    nc = await nats.connect(settings.nats_url)
    info = await nc.jetstream().stream_info(settings.subjects.events_stream)
    await nc.close()
    assert info.state.messages == last_seq + 1


async def test_consumer_of_an_earlier_ack_policy_is_replaced_after_its_ack_floor(settings):
    _, first_seq = await seed(settings, complaints=2)
    await run_until_caught_up(settings, first_seq)
    # As an earlier version left it: explicit acks, everything so far acknowledged.
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    stream = settings.subjects.events_stream
    await js.delete_consumer(stream, DURABLE)
    old = await js.pull_subscribe(
        settings.subjects.all_events,
        durable=DURABLE,
        stream=stream,
        config=ConsumerConfig(
            durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL
        ),
    )
    for msg in await old.fetch(batch=first_seq, timeout=5):
        await msg.ack()
    await old.unsubscribe()
    _, last_seq = await seed(settings, complaints=1)

    complaints, history, _ = await run_until_caught_up(settings, last_seq)
    assert len(complaints) == 3 and len(history) == 12
    info = await js.consumer_info(stream, DURABLE)
    await nc.close()
    assert info.config.ack_policy == AckPolicy.ALL
    assert info.delivered.consumer_seq == last_seq - first_seq  # only what followed
    assert info.num_ack_pending == 0
