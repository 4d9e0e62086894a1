"""Each event of a complaint in words (``lapor.shared.words``): every event type has its
summary and its note, and the note keeps the people's own words."""

from __future__ import annotations

from datetime import UTC, datetime

from lapor.shared import words
from lapor.shared.events import (
    Actor,
    ArchiveReason,
    AuthorityDeclined,
    ComplaintArchived,
    ComplaintClosed,
    ComplaintDisposed,
    ComplaintRated,
    DeadlineBreached,
    DeadlineStep,
    FollowUpPosted,
)
from lapor.shared.lifecycle import CHANGES


def test_every_event_type_of_a_complaint_has_its_words():
    assert set(words.WORDS) == set(CHANGES)


def test_summaries_and_notes():
    disposed = ComplaintDisposed(
        opd="dpupr", opd_name="Dinas PUPR", by=Actor(role="admin"), automatic=True
    )
    assert words.summary(disposed) == "disposed to dpupr automatically"
    assert words.note(disposed) == "Disposed to Dinas PUPR (automatically)"
    follow_up = FollowUpPosted(opd="dpupr", message="Tim  sudah\nmeninjau " + "x" * 100)
    assert words.note(follow_up) == follow_up.message  # as written
    assert words.summary(follow_up).startswith("follow-up: Tim sudah meninjau x")
    assert len(words.summary(follow_up)) == len("follow-up: ") + 80
    archived = ComplaintArchived(
        reason=ArchiveReason.DUPLICATE, note="lihat 7K3MQ", by=Actor(role="admin")
    )
    assert words.note(archived) == "The same report is already being handled. lihat 7K3MQ"
    assert words.note(ComplaintRated(stars=4)) == "4/5"
    closed = ComplaintClosed(reason="no_reply", by=Actor(role="system"))
    assert words.note(closed).startswith("Closed: no reply")
    due = datetime(2026, 8, 20, 16, 59, tzinfo=UTC)
    breached = DeadlineBreached(
        step=DeadlineStep.FIRST_FOLLOW_UP, due_at=due, opd="dpupr", escalated_to="diskominfo"
    )
    assert words.summary(breached) == (
        "first_follow_up deadline passed (due 2026-08-20T16:59:00Z), escalated to diskominfo"
    )
    assert words.note(breached) == "first follow up due 2026-08-20T16:59:00+00:00"


def test_a_declination_names_the_unit_the_officer_suggests():
    officer = Actor(role="agency", opd="dpupr")
    plain = AuthorityDeclined(opd="dpupr", reason="Bukan kewenangan kami", by=officer)
    assert words.summary(plain) == "dpupr declined authority: Bukan kewenangan kami"
    assert words.note(plain) == "Bukan kewenangan kami"
    helpful = plain.model_copy(update={"suggested_opd": "dlh"})
    assert words.summary(helpful) == (
        "dpupr declined authority, suggests Dinas Lingkungan Hidup: Bukan kewenangan kami"
    )
    assert words.note(helpful) == "Bukan kewenangan kami (suggests Dinas Lingkungan Hidup)"
    # A unit the registry no longer knows is named by its code, as the log holds it.
    gone = plain.model_copy(update={"suggested_opd": "dinas_lama"})
    assert words.note(gone) == "Bukan kewenangan kami (suggests dinas_lama)"
