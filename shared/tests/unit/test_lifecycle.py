"""The one meaning of a complaint's events (``lapor.shared.lifecycle``): every event type
of a complaint is given its meaning there, and the fold says what every reader relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lapor.shared.audience import AUDIENCE, Copy, told
from lapor.shared.envelope import registered_events
from lapor.shared.events import (
    Actor,
    AuthorityDeclined,
    ComplaintClosed,
    ComplaintDisposed,
    ComplaintPutOnHold,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    ComplaintResumed,
    ComplaintRouted,
    DeadlineStep,
    DeadlineWarned,
    FollowUpPosted,
    ReporterReplied,
)
from lapor.shared.lifecycle import CHANGES, Status, evolve

ADMIN, OFFICER = Actor(role="admin"), Actor(role="agency", opd="dpupr")
T0 = datetime(2026, 8, 3, 1, tzinfo=UTC)


def complaint_events() -> set[type]:
    return {cls for cls in registered_events().values() if cls.TYPE.startswith("complaint.")}


def test_every_event_type_of_a_complaint_is_given_its_meaning():
    """A new event type fails here until the lifecycle says what it changes (if only
    ``_nothing``): no reader can then be left to guess."""
    assert set(CHANGES) == complaint_events()


def life(*events):
    state = None
    for i, event in enumerate(events):
        state = evolve(state, event, "7K3MQ-9X2AB", T0 + timedelta(hours=i))
    return state


RECEIVED = ComplaintReceived(title="Jalan rusak", body="Jalan berlubang di depan pasar")
ROUTED = ComplaintRouted(
    opd="dpupr", opd_name="Dinas PUPR", rule="r", reason="r", confidence=0.5, rules_version="t"
)
DISPOSED = ComplaintDisposed(opd="dpupr", opd_name="Dinas PUPR", by=ADMIN, automatic=False)
DECLINED = AuthorityDeclined(opd="dpupr", reason="Bukan kewenangan kami", by=OFFICER)


def test_owner_hops_and_first_instants():
    state = life(
        RECEIVED,
        ROUTED,
        DISPOSED,
        DECLINED,
        DISPOSED,
        FollowUpPosted(opd="dpupr", message="Sudah ditinjau"),
    )
    assert (state.opd, state.hops, state.declined_by) == ("dpupr", 1, ("dpupr",))
    assert state.disposed_at == T0 + timedelta(hours=2)  # the first disposition
    assert state.follow_up_clock_at == T0 + timedelta(hours=4)  # the last before follow-up
    assert state.first_follow_up_at == T0 + timedelta(hours=5)
    assert state.proposed_opd is None and state.status is Status.IN_PROGRESS


def test_closing_and_reopening():
    resolved = ComplaintResolved(opd="dpupr", resolution="Sudah diperbaiki")
    closed = ComplaintClosed(reason="confirmed_by_reporter", by=Actor(role="reporter"))
    state = life(RECEIVED, DISPOSED, resolved, closed)
    assert state.closed_at == T0 + timedelta(hours=3) and state.status is Status.CLOSED
    assert (
        life(RECEIVED, DISPOSED, resolved, closed, ComplaintReopened(reason="x")).closed_at is None
    )


def test_hold_resumes_to_where_it_was():
    state = life(RECEIVED, DISPOSED, ComplaintPutOnHold(reason="Menunggu", by=ADMIN))
    assert (state.status, state.held_from) == (Status.ON_HOLD, Status.DISPOSED)
    assert evolve(state, ComplaintResumed(by=ADMIN), "7K3MQ-9X2AB", T0).status is Status.DISPOSED


def test_an_event_that_changes_nothing_gives_the_same_state_and_none_before_receipt():
    state = life(RECEIVED, DISPOSED)
    warned = DeadlineWarned(step=DeadlineStep.FIRST_FOLLOW_UP, due_at=T0, opd="dpupr")
    assert evolve(state, warned, "7K3MQ-9X2AB", T0) is state
    assert evolve(state, RECEIVED, "7K3MQ-9X2AB", T0) is state
    assert evolve(None, DISPOSED, "7K3MQ-9X2AB", T0) is None


def test_every_event_type_says_who_must_be_told_of_it():
    assert set(AUDIENCE) == set(CHANGES)


def test_who_is_told():
    before = life(RECEIVED, DISPOSED)
    assert told(life(RECEIVED), DISPOSED) == [("dpupr", Copy.ASSIGNMENT)]
    assert told(life(RECEIVED), ROUTED) == []
    assert told(before, DECLINED) == [("dpupr", Copy.EVENT)]
    reply = ReporterReplied(message="Terima kasih")
    assert told(before, reply) == [("dpupr", Copy.EVENT)]
    assert told(life(RECEIVED), reply) == []  # nobody holds it yet
