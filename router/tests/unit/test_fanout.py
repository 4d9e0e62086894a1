"""Which unit gets a copy of which event, and the memory that saves reading the log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from lapor.router.fanout import AgencyFanOut
from lapor.services.eventstore import EXPECTED_LAST, StoredEvent
from lapor.shared import snapshot as snapshots
from lapor.shared.envelope import Event, envelope
from lapor.shared.events import (
    Actor,
    AuthorityDeclined,
    ComplaintAssigned,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintRouted,
    DeadlineBreached,
    DeadlineStep,
    FollowUpPosted,
)

CID = "ABCDE-FGHJK"
ADMIN = Actor(role="admin")
LIFE: list[Event] = [
    ComplaintReceived(title="Jalan rusak", body="Jalan berlubang di depan pasar", anonymous=True),
    ComplaintRouted(
        opd="dpupr", opd_name="DPUPR", rule="r", reason="r", confidence=0.9, rules_version="t"
    ),
    ComplaintDisposed(opd="dpupr", opd_name="DPUPR", by=ADMIN, automatic=False),
    FollowUpPosted(opd="dpupr", message="Sedang ditinjau"),
    AuthorityDeclined(opd="dpupr", reason="Bukan kewenangan kami", by=Actor(role="agency")),
    ComplaintDisposed(opd="dlh", opd_name="DLH", by=ADMIN, automatic=False),
    DeadlineBreached(
        step=DeadlineStep.FIRST_FOLLOW_UP,
        due_at=datetime(2026, 8, 20, tzinfo=UTC),
        opd="dlh",
        escalated_to="diskominfo",
    ),
]


def stored_life() -> list[tuple[StoredEvent, Event]]:
    corr = uuid.uuid4()
    return [
        (
            StoredEvent(
                seq, f"lapor.complaint.{CID}.x", envelope(e, complaint_id=CID, correlation_id=corr)
            ),
            e,
        )
        for seq, e in enumerate(LIFE, start=1)
    ]


class LogOf:
    """A hand-written stand-in for the event store: the complaint's log, counting reads
    of its history (``loads``) and of single events (``reads``)."""

    def __init__(self, events: list[tuple[StoredEvent, Event]]) -> None:
        self.events = [s for s, _ in events]
        self.loads = self.reads = 0

    async def load(self, complaint_id: str) -> list[StoredEvent]:
        self.loads += 1
        return self.events if complaint_id == CID else []

    async def at(self, seq: int) -> StoredEvent | None:
        self.reads += 1
        return next((s for s in self.events if s.seq == seq), None)

    async def last(self, complaint_id: str, event_type: str | None = None) -> StoredEvent | None:
        self.reads += 1
        found = [s for s in self.events if event_type in (None, s.envelope.type)]
        return found[-1] if found and complaint_id == CID else None


def carrying_snapshots(life: list[tuple[StoredEvent, Event]]) -> list[tuple[StoredEvent, Event]]:
    """The same events as ``decide_and_append`` writes them: each naming the sequence
    before it and carrying the snapshot after it."""
    state, prev, out = None, 0, []
    for s, e in life:
        state = snapshots.after(state, e, s.envelope, prev)
        headers = {EXPECTED_LAST: str(prev), **snapshots.headers(state)}
        out.append((StoredEvent(s.seq, s.subject, s.envelope, headers), e))
        prev = s.seq
    return out


EXPECTED = [
    [],  # received: no agency's business yet
    [],  # routed: a proposal only
    [("dpupr", "agency.complaint_assigned")],
    [("dpupr", "complaint.followed_up")],
    [("dpupr", "complaint.authority_declined")],  # the notice it was taken away
    [("dlh", "agency.complaint_assigned")],
    [("dlh", "complaint.deadline_breached"), ("diskominfo", "complaint.deadline_breached")],
]


async def test_each_event_goes_to_the_units_it_concerns_reading_the_log_once():
    life = stored_life()
    store = LogOf(life)
    fanout = AgencyFanOut(store)  # type: ignore[arg-type]
    got = [[(opd, env.type) for opd, env in await fanout.copies_of(s, e)] for s, e in life]
    assert got == EXPECTED
    assert store.loads == 0  # every event seen since the complaint's first: no read

    assignment = (await AgencyFanOut(store).copies_of(*life[2]))[0][1]  # type: ignore[arg-type]
    copy = ComplaintAssigned.model_validate(assignment.payload)
    assert copy.title == "Jalan rusak" and "reporter" not in assignment.payload


async def test_a_redelivered_or_forgotten_complaint_is_read_from_the_log():
    life = stored_life()
    store = LogOf(life)
    fanout = AgencyFanOut(store, remembered=1)  # type: ignore[arg-type]
    for s, e in life:
        await fanout.copies_of(s, e)
    loads = store.loads
    # A redelivery of the follow-up: the memory is past it, so the log answers.
    again = await fanout.copies_of(*life[3])
    assert [(opd, env.type) for opd, env in again] == EXPECTED[3]
    assert store.loads == loads + 1

    other = StoredEvent(
        99,
        "lapor.complaint.ZZZZZ-ZZZZZ.x",
        envelope(LIFE[0], complaint_id="ZZZZZ-ZZZZZ", correlation_id=uuid.uuid4()),
    )
    await fanout.copies_of(other, LIFE[0])  # pushes CID out of a memory of one
    breach = await fanout.copies_of(*life[6])
    assert [opd for opd, _ in breach] == ["dlh", "diskominfo"]


async def test_a_forgotten_complaint_is_read_from_its_previous_events_snapshot():
    """Two reads (the previous event, the content), never its history."""
    life = carrying_snapshots(stored_life())
    store = LogOf(life)
    for i in range(1, len(life)):
        fanout = AgencyFanOut(store)  # type: ignore[arg-type]  # remembers nothing yet
        reads = store.reads
        got = await fanout.copies_of(*life[i])
        assert [(opd, env.type) for opd, env in got] == EXPECTED[i]
        assert store.reads == reads + 2
    assert store.loads == 0
    # The assignment made that way carries the complaint's content, never its reporter.
    assignment = (await AgencyFanOut(store).copies_of(*life[5]))[0][1]  # type: ignore[arg-type]
    copy = ComplaintAssigned.model_validate(assignment.payload)
    assert (
        copy.title == "Jalan rusak" and copy.opd == "dlh" and "reporter" not in assignment.payload
    )
