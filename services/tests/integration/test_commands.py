"""One way to change a complaint (``decide_and_append``), on a real JetStream server: a
writer that loses a race hears of it, or reads again and decides again."""

from __future__ import annotations

import uuid

import nats
import pytest

from lapor.services.commands import decide_and_append
from lapor.services.eventstore import ConcurrencyError, EventStore
from lapor.shared.envelope import envelope
from lapor.shared.events import ComplaintReceived, FollowUpPosted
from lapor.shared.tracking import new_tracking_id


@pytest.fixture
async def store(settings):
    nc = await nats.connect(settings.nats_url)
    yield EventStore(nc.jetstream(), settings.subjects)
    await nc.close()


def follow_up(cid: str, text: str):
    return envelope(
        FollowUpPosted(opd="dpupr", message=text), complaint_id=cid, correlation_id=uuid.uuid4()
    )


async def a_complaint(store: EventStore) -> str:
    cid = new_tracking_id()
    received = ComplaintReceived(title="Jalan rusak", body="Jalan berlubang di depan pasar")
    env = envelope(received, complaint_id=cid, correlation_id=uuid.uuid4())
    await store.append(env, expected_last_seq=0)
    return cid


def racing(store: EventStore, cid: str, times: int):
    """A loader under which another writer appends, the first ``times`` reads."""
    reads = 0

    async def load():
        nonlocal reads
        history = await store.load(cid)
        reads += 1
        if reads <= times:
            await store.append(follow_up(cid, f"another writer {reads}"), history[-1].seq)
        return history

    return load


async def test_the_loser_of_a_race_hears_of_it_and_appends_nothing(store):
    cid = await a_complaint(store)
    with pytest.raises(ConcurrencyError):
        await decide_and_append(
            store, cid, lambda h: [follow_up(cid, "mine")], load=racing(store, cid, 1)
        )
    texts = [e.envelope.payload.get("message") for e in await store.load(cid)]
    assert texts == [None, "another writer 1"]


async def test_with_attempts_the_loser_decides_again_on_what_came_first(store):
    cid = await a_complaint(store)
    seen: list[int] = []

    def decide(history):
        seen.append(len(history))
        return [follow_up(cid, "mine"), follow_up(cid, "mine, second")]

    done = await decide_and_append(store, cid, decide, attempts=3, load=racing(store, cid, 2))
    assert seen == [1, 2, 3]  # each attempt decided on the history as it then was
    assert [s.envelope.payload["message"] for s in done.appended] == ["mine", "mine, second"]
    history = await store.load(cid)
    assert [s.seq for s in history[-2:]] == [s.seq for s in done.appended]
    assert len(history) == 5


async def test_deciding_nothing_appends_nothing(store):
    cid = await a_complaint(store)
    done = await decide_and_append(store, cid, lambda history: [])
    assert done.appended == [] and len(done.history) == 1
