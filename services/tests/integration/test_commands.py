"""One way to change a complaint (``decide_and_append``), on a real JetStream server: a
writer that loses a race hears of it, or reads again and decides again."""

from __future__ import annotations

import uuid

import nats
import pytest

from lapor.devtools.testing import CountingJetStream
from lapor.services.commands import decide_and_append, latest
from lapor.services.eventstore import ConcurrencyError, EventStore
from lapor.shared import snapshot as snapshots
from lapor.shared.envelope import decode, envelope
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
        now = await latest(store, cid)
        reads += 1
        if reads <= times:
            await store.append(follow_up(cid, f"another writer {reads}"), now.seq)
        return now

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

    def decide(now):
        seen.append(now.seq)
        return [follow_up(cid, "mine"), follow_up(cid, "mine, second")]

    done = await decide_and_append(store, cid, decide, attempts=3, load=racing(store, cid, 2))
    assert [s.envelope.payload["message"] for s in done.appended] == ["mine", "mine, second"]
    history = await store.load(cid)
    # Each attempt decided on the complaint as it then stood: its last event then.
    assert seen == [s.seq for s in history[:3]]
    assert [s.seq for s in history[-2:]] == [s.seq for s in done.appended]
    assert len(history) == 5


async def test_deciding_nothing_appends_nothing(store):
    cid = await a_complaint(store)
    done = await decide_and_append(store, cid, lambda now: [])
    assert done.appended == [] and done.before.seq == (await store.last(cid)).seq


def folded(history):
    return snapshots.fold((s.seq, decode(s.envelope), s.envelope) for s in history)


async def test_every_append_carries_the_snapshot_and_a_decision_reads_one_event(store):
    cid = await a_complaint(store)
    for i in range(8):
        await decide_and_append(store, cid, lambda now, i=i: [follow_up(cid, f"step {i}")])
    history = await store.load(cid)
    for i in range(2, len(history) + 1):  # each event carries the state after it
        assert snapshots.from_headers(history[i - 1].headers) == folded(history[:i])
    counting = CountingJetStream(store.js)
    reader = EventStore(counting, store.subjects)
    now = await latest(reader, cid)
    assert counting.gets == 1  # however long the complaint's history
    assert now.seq == history[-1].seq and now.snapshot == folded(history)
    assert now.snapshot.life.status == "in_progress"


async def test_a_last_event_without_a_snapshot_has_the_history_folded_once(store):
    """Events written before snapshots existed (or around decide_and_append) carry none."""
    cid = await a_complaint(store)  # appended without a snapshot
    bare = await store.append(follow_up(cid, "written around"), (await store.last(cid)).seq)
    now = await latest(store, cid)
    history = await store.load(cid)
    assert now.seq == bare and now.snapshot == folded(history)
    done = await decide_and_append(store, cid, lambda now: [follow_up(cid, "then")])
    [appended] = done.appended
    assert done.snapshot == folded(await store.load(cid))
    assert snapshots.from_headers((await store.last(cid)).headers) == done.snapshot
    assert appended.seq == (await store.last(cid)).seq


async def test_a_writer_that_holds_the_last_event_decides_and_appends_without_a_read(store):
    cid = await a_complaint(store)
    await decide_and_append(store, cid, lambda now: [follow_up(cid, "first")])
    trigger = await latest(store, cid)  # as a consumer is delivered it
    counting = CountingJetStream(store.js)
    writer = EventStore(counting, store.subjects)
    done = await decide_and_append(writer, cid, lambda now: [follow_up(cid, "next")], first=trigger)
    assert counting.gets == 0  # neither the complaint nor its chain's tip is read
    assert done.before == trigger
    history = await store.load(cid)
    assert [s.seq for s in done.appended] == [history[-1].seq]
    assert history[-1].headers["Lapor-Prev-Hash"] == trigger.last.headers["Lapor-Hash"]
    assert done.snapshot == folded(history)


async def test_a_writer_whose_event_the_complaint_moved_past_reads_and_decides_again(store):
    cid = await a_complaint(store)
    await decide_and_append(store, cid, lambda now: [follow_up(cid, "first")])
    stale = await latest(store, cid)
    await decide_and_append(store, cid, lambda now: [follow_up(cid, "another writer")])
    seen: list[int] = []

    def decide(now):
        seen.append(now.seq)
        return [follow_up(cid, "mine")]

    done = await decide_and_append(store, cid, decide, attempts=2, first=stale)
    history = await store.load(cid)
    assert seen == [stale.seq, history[-2].seq]  # refused on the stale one, then read
    messages = [s.envelope.payload.get("message") for s in history]
    assert messages == [None, "first", "another writer", "mine"]
    assert done.appended[0].seq == history[-1].seq
    with pytest.raises(ConcurrencyError):  # one attempt: the stale decision is refused
        await decide_and_append(store, cid, decide, first=stale)
