"""The snapshot every appended event carries (``lapor.shared.snapshot``): folded one event
at a time it equals the fold of the whole history, it reads back from its header exactly,
and it answers the router's questions as the history would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lapor.shared import snapshot as snapshots
from lapor.shared.envelope import envelope
from lapor.shared.events import (
    Actor,
    AuthorityDeclined,
    ComplaintArchived,
    ComplaintDisposed,
    ComplaintPutOnHold,
    ComplaintRated,
    ComplaintReceived,
    ComplaintResolved,
    ComplaintResumed,
    ComplaintRouted,
    FollowUpPosted,
)
from lapor.shared.lifecycle import evolve

CID = "7K3MQ-9X2AB"
T0 = datetime(2026, 8, 3, 1, tzinfo=UTC)
ADMIN, OFFICER = Actor(role="admin"), Actor(role="agency", opd="dpupr")
# Free text as a hostile citizen or officer writes it: a header may hold no line break.
HOSTILE = 'Bukan kewenangan kami\r\nLapor-Hash: 00\n ke "Disperkim" ya 🙏 \u202e\\'


def routed(opd: str) -> ComplaintRouted:
    return ComplaintRouted(
        opd=opd, opd_name=opd.upper(), rule="r", reason="r", confidence=0.5, rules_version="t"
    )


def disposed(opd: str) -> ComplaintDisposed:
    return ComplaintDisposed(opd=opd, opd_name=opd.upper(), by=ADMIN, automatic=False)


LIFE = [
    ComplaintReceived(title="Jalan rusak", body="Jalan berlubang di depan pasar"),
    routed("dpupr"),
    disposed("dpupr"),
    AuthorityDeclined(opd="dpupr", reason=HOSTILE, by=OFFICER),
    routed("disperkim"),
    AuthorityDeclined(opd="disperkim", reason="bukan", suggested_opd="dishub", by=OFFICER),
    routed("dishub"),
    disposed("dishub"),
    ComplaintPutOnHold(reason="menunggu data", by=ADMIN),
    ComplaintResumed(by=ADMIN),
    FollowUpPosted(opd="dishub", message="sedang ditangani"),
    ComplaintResolved(opd="dishub", resolution="sudah diperbaiki"),
    ComplaintRated(stars=4),
    ComplaintArchived(reason="duplicate", by=ADMIN),
]
SEQS = [3, 10, 11, 40, 41, 90, 93, 94, 200, 201, 5000, 5001, 70000, 70004]  # gaps: others


def logged():
    corr = uuid.uuid4()
    return [
        (seq, event, envelope(event, complaint_id=CID, correlation_id=corr, occurred_at=at))
        for seq, event, at in zip(
            SEQS, LIFE, (T0 + timedelta(hours=i) for i in range(len(LIFE))), strict=True
        )
    ]


def test_folding_one_event_at_a_time_equals_folding_the_history():
    history = logged()
    state, prev = None, 0
    for i, (seq, event, env) in enumerate(history):
        state = snapshots.after(state, event, env, prev)
        assert state == snapshots.fold(history[: i + 1])
        # What it carries read back from its header is what was folded.
        assert snapshots.from_headers(snapshots.headers(state)) == state
        prev = seq
    life = None
    for _, event, env in history:
        life = evolve(life, event, CID, env.occurred_at)
    assert state is not None and state.life == life  # the one meaning of the events


def test_it_carries_what_the_router_needs():
    history = logged()
    state = snapshots.fold(history)
    assert state is not None
    assert [(d.opd, d.suggested_opd, d.reason) for d in state.declines] == [
        ("dpupr", None, HOSTILE),
        ("disperkim", "dishub", "bukan"),
    ]
    assert state.routed == tuple(
        str(env.event_id) for _, e, env in history if isinstance(e, ComplaintRouted)
    )
    assert state.life.declined_by == ("dpupr", "disperkim")


@pytest.mark.parametrize("upto", range(1, len(LIFE) + 1))
def test_settled_after_answers_whether_it_was_disposed_or_archived_after_any_event(upto):
    """The router asks "disposed or archived after my trigger?" of the snapshot alone."""
    history = logged()[:upto]
    state = snapshots.fold(history)
    assert state is not None
    for trigger, _, _ in history:
        by_history = any(
            isinstance(e, ComplaintDisposed | ComplaintArchived) and seq > trigger
            for seq, e, _ in history
        )
        assert (state.settled_after >= trigger) is by_history, trigger


def test_the_header_is_one_line_of_ascii_even_for_hostile_text():
    [(name, value)] = snapshots.headers(snapshots.fold(logged())).items()
    assert name == snapshots.STATE_HEADER
    assert value.isascii() and "\r" not in value and "\n" not in value


def test_no_snapshot_before_the_complaint_is_received_and_none_is_carried():
    env = envelope(routed("dpupr"), complaint_id=CID, correlation_id=uuid.uuid4())
    assert snapshots.after(None, routed("dpupr"), env, 0) is None
    assert snapshots.headers(None) == {}


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"Lapor-Event-Type": "complaint.received"},
        {snapshots.STATE_HEADER: "2;{}"},  # another version: not trusted
        {snapshots.STATE_HEADER: f"{snapshots.VERSION};not json"},
        {snapshots.STATE_HEADER: f'{snapshots.VERSION};{{"life": {{}}}}'},
    ],
)
def test_a_missing_foreign_or_unreadable_snapshot_reads_as_none(headers):
    """The reader then folds the history instead: never a wrong state."""
    assert snapshots.from_headers(headers) is None


def test_the_header_name_is_read_whatever_its_case():
    state = snapshots.fold(logged()[:2])
    [(_, value)] = snapshots.headers(state).items()
    assert snapshots.from_headers({"lapor-state": value}) == state
