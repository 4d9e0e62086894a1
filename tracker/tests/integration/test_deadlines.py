"""Durable deadline timers on real JetStream and PostgreSQL: a warning before the due
time, a breach at it with escalation, each exactly once across restarts; working days
skip weekends and Indonesian public holidays."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import nats

from lapor.devtools.testing import eventually, serving
from lapor.services.eventstore import EventStore
from lapor.services.observability import DEADLINE_BREACHES
from lapor.services.settings import DeadlineSettings
from lapor.shared.envelope import decode, envelope
from lapor.shared.events import (
    Actor,
    ComplaintClosed,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintResolved,
    DeadlineBreached,
    DeadlineWarned,
)
from lapor.shared.tracking import new_tracking_id
from lapor.tracker.app import create_app

WIB = ZoneInfo("Asia/Pontianak")
# Friday 14 August 2026; Monday the 17th is Independence Day (Hari Kemerdekaan).
RECEIVED_AT = datetime(2026, 8, 14, 10, 0, tzinfo=WIB)
# Three working days: Tue 18, Wed 19, Thu 20 (not Mon 17, a holiday).
DUE = datetime(2026, 8, 20, 23, 59, 59, 999999, tzinfo=WIB)


async def deadline_events(store: EventStore, tracking_id: str) -> list:
    return [
        e
        for e in (decode(s.envelope) for s in await store.load(tracking_id))
        if isinstance(e, DeadlineWarned | DeadlineBreached)
    ]


async def run_tracker_at(settings, now: datetime, store: EventStore, tracking_id: str, n: int):
    """Run a tracker whose clock says ``now`` until ``n`` deadline events are in the log."""
    config = DeadlineSettings(check_seconds=0.05)
    async with serving(create_app(settings, deadlines=config, now=lambda: now)) as client:

        async def fired():
            found = await deadline_events(store, tracking_id)
            return found if len(found) >= n else None

        await eventually(fired)
        # Let the scheduler run several more rounds (every 0.05 s): nothing more may fire.
        await asyncio.sleep(0.5)
        status = (await client.get(f"/complaints/{tracking_id}")).json()
        return await deadline_events(store, tracking_id), status


async def test_deadline_warns_then_breaches_once_across_restarts(settings):
    nc = await nats.connect(settings.nats_url)
    store = EventStore(nc.jetstream(), settings.subjects)
    tracking_id = new_tracking_id()
    received = ComplaintReceived(title="Jalan rusak", body="Jalan berlubang di depan pasar")
    await store.append(
        envelope(
            received,
            complaint_id=tracking_id,
            correlation_id=uuid.uuid4(),
            occurred_at=RECEIVED_AT,
        ),
        expected_last_seq=0,
    )

    # Thursday morning: one working day left, a warning.
    thursday = datetime(2026, 8, 20, 9, 0, tzinfo=WIB)
    events, status = await run_tracker_at(settings, thursday, store, tracking_id, 1)
    assert [type(e) for e in events] == [DeadlineWarned]
    assert events[0].due_at == DUE
    assert datetime.fromisoformat(status["due_at"]) == DUE

    # The tracker restarts on Friday: the deadline has passed, a breach escalated, and
    # counted for the alert on rising breaches.
    breaches = DEADLINE_BREACHES.labels(step="disposition")
    counted = breaches._value.get()
    friday = datetime(2026, 8, 21, 8, 0, tzinfo=WIB)
    events, status = await run_tracker_at(settings, friday, store, tracking_id, 2)
    assert [type(e) for e in events] == [DeadlineWarned, DeadlineBreached]
    assert breaches._value.get() == counted + 1
    assert events[1].escalated_to == "diskominfo" and events[1].due_at == DUE
    assert status["overdue"] is True

    # Restart again, later still: nothing fires twice.
    later = datetime(2026, 8, 25, 8, 0, tzinfo=WIB)
    events, _ = await run_tracker_at(settings, later, store, tracking_id, 2)
    assert len(events) == 2
    assert len(await deadline_events(store, tracking_id)) == 2
    assert breaches._value.get() == counted + 1  # fired once, counted once
    await nc.close()


async def test_an_answer_without_reply_closes_itself_after_ten_working_days(settings):
    nc = await nats.connect(settings.nats_url)
    store = EventStore(nc.jetstream(), settings.subjects)
    tracking_id = new_tracking_id()
    officer = Actor(role="agency", opd="dpupr")
    answered_at = datetime(2026, 9, 1, 10, 0, tzinfo=WIB)  # a Tuesday
    last = 0
    for event, at in (
        (
            ComplaintReceived(title="Jalan rusak", body="Jalan berlubang di depan pasar"),
            RECEIVED_AT,
        ),
        (ComplaintDisposed(opd="dpupr", opd_name="DPUPR", by=officer, automatic=True), RECEIVED_AT),
        (ComplaintResolved(opd="dpupr", resolution="Sudah ditambal"), answered_at),
    ):
        env = envelope(event, complaint_id=tracking_id, correlation_id=uuid.uuid4(), occurred_at=at)
        last = await store.append(env, expected_last_seq=last)

    config = DeadlineSettings(check_seconds=0.05)
    # Ten working days after 1 September 2026 end on 15 September.
    for now, closed in (
        (datetime(2026, 9, 15, 20, 0, tzinfo=WIB), False),
        (datetime(2026, 9, 16, 0, 30, tzinfo=WIB), True),
    ):
        async with serving(create_app(settings, deadlines=config, now=lambda n=now: n)) as c:

            async def status(client=c):
                r = await client.get(f"/complaints/{tracking_id}")
                return r.json() if r.status_code == 200 else None

            body = await eventually(status)
            if closed:
                body = await eventually(lambda: _when(status, lambda b: b["status"] == "closed"))
                assert body["history"][-1]["note"].startswith("Closed: no reply")
            else:
                await asyncio.sleep(0.3)
                assert (await status())["status"] == "answered"
    closes = [
        e
        for e in (decode(s.envelope) for s in await store.load(tracking_id))
        if isinstance(e, ComplaintClosed)
    ]
    assert [c.reason for c in closes] == ["no_reply"]
    await nc.close()


async def _when(probe, check):
    body = await probe()
    return body if body and check(body) else None
