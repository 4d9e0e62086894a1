from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from lapor.shared.calendar import WorkingCalendar
from lapor.shared.deadlines import DeadlinePolicy
from lapor.shared.events import DeadlineStep
from lapor.shared.lifecycle import CHANGES
from lapor.tracker import deadlines
from lapor.tracker.deadlines import Clock
from lapor.tracker.timers import TIMERS

WIB = ZoneInfo("Asia/Pontianak")
CAL = WorkingCalendar()
POLICY = DeadlinePolicy()
TICK = timedelta(microseconds=1)


def wib(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=WIB)


def end_of(y: int, m: int, d: int) -> datetime:
    return datetime.combine(date(y, m, d), time.max, tzinfo=WIB)


MONDAY = wib(2026, 11, 2)  # no holiday within three weeks of it


def test_national_defaults():
    assert POLICY.days_for(DeadlineStep.DISPOSITION) == 3
    assert POLICY.days_for(DeadlineStep.FIRST_FOLLOW_UP) == 5
    assert POLICY.days_for(DeadlineStep.REPORTER_REPLY) == 10
    assert POLICY.warn_before_working_days == 1


@pytest.mark.parametrize(
    ("step", "due"),
    [
        (DeadlineStep.DISPOSITION, end_of(2026, 11, 5)),  # Thursday
        (DeadlineStep.FIRST_FOLLOW_UP, end_of(2026, 11, 9)),  # next Monday
        (DeadlineStep.REPORTER_REPLY, end_of(2026, 11, 16)),  # Monday after
    ],
)
def test_due_dates_of_the_defaults(step, due):
    clock = deadlines.start(step, MONDAY)
    assert deadlines.due_at(clock, POLICY, CAL) == due


def test_policy_is_per_deployment():
    policy = DeadlinePolicy(disposition_days=2)
    clock = deadlines.start(DeadlineStep.DISPOSITION, MONDAY)
    assert deadlines.due_at(clock, policy, CAL) == end_of(2026, 11, 4)


@pytest.mark.parametrize(
    "kwargs",
    [{"disposition_days": -1}, {"warn_before_working_days": -2}, {"reporter_reply_days": True}],
)
def test_policy_refuses_nonsense(kwargs):
    with pytest.raises(ValueError):
        DeadlinePolicy(**kwargs)


def test_step_accepts_its_string_value():
    clock = deadlines.start("disposition", MONDAY)  # type: ignore[arg-type]
    assert clock.step is DeadlineStep.DISPOSITION


def test_status_goes_ok_then_warning_then_breached():
    clock = deadlines.start(DeadlineStep.DISPOSITION, MONDAY)
    # Due at the end of Thursday; one working day before that is the end of Wednesday.
    assert deadlines.warn_at(clock, POLICY, CAL) == end_of(2026, 11, 4)
    assert deadlines.status(clock, MONDAY, POLICY, CAL) == "ok"
    assert deadlines.status(clock, end_of(2026, 11, 4), POLICY, CAL) == "ok"
    assert deadlines.status(clock, end_of(2026, 11, 4) + TICK, POLICY, CAL) == "warning"
    assert deadlines.status(clock, end_of(2026, 11, 5), POLICY, CAL) == "warning"
    assert deadlines.status(clock, end_of(2026, 11, 5) + TICK, POLICY, CAL) == "breached"


def test_warning_counts_working_days_back_over_a_weekend():
    friday = wib(2026, 11, 6)
    clock = deadlines.start(DeadlineStep.DISPOSITION, friday)  # due Wednesday
    assert deadlines.due_at(clock, POLICY, CAL) == end_of(2026, 11, 11)
    assert deadlines.warn_at(clock, POLICY, CAL) == end_of(2026, 11, 10)
    policy = DeadlinePolicy(warn_before_working_days=2)
    assert deadlines.warn_at(clock, policy, CAL) == end_of(2026, 11, 9)


def test_warning_window_longer_than_the_step_starts_at_once():
    policy = DeadlinePolicy(disposition_days=1, warn_before_working_days=2)
    clock = deadlines.start(DeadlineStep.DISPOSITION, MONDAY)
    assert deadlines.warn_at(clock, policy, CAL) == MONDAY
    assert deadlines.status(clock, MONDAY + TICK, policy, CAL) == "warning"


def test_warnings_can_be_turned_off():
    policy = DeadlinePolicy(warn_before_working_days=0)
    clock = deadlines.start(DeadlineStep.DISPOSITION, MONDAY)
    assert deadlines.warn_at(clock, policy, CAL) is None
    assert deadlines.status(clock, end_of(2026, 11, 5), policy, CAL) == "ok"
    assert deadlines.status(clock, end_of(2026, 11, 5) + TICK, policy, CAL) == "breached"


def test_hold_pauses_the_clock_and_resume_shifts_the_due_date():
    clock = deadlines.start(DeadlineStep.DISPOSITION, MONDAY)  # due Thursday 5 Nov
    held = deadlines.pause(clock, wib(2026, 11, 3, 10))  # Tuesday
    assert held.paused
    assert deadlines.due_at(held, POLICY, CAL) is None
    assert deadlines.warn_at(held, POLICY, CAL) is None
    # Long past the original due date, a paused clock is not breached.
    assert deadlines.status(held, wib(2026, 11, 20), POLICY, CAL) == "paused"

    # Resumed the next Tuesday: Wed, Thu, Fri, Mon, Tue = 5 working days on hold.
    resumed = deadlines.resume(held, wib(2026, 11, 10, 11), CAL)
    assert resumed == Clock(DeadlineStep.DISPOSITION, MONDAY, None, 5)
    assert deadlines.due_at(resumed, POLICY, CAL) == end_of(2026, 11, 12)
    assert deadlines.status(resumed, wib(2026, 11, 10, 12), POLICY, CAL) == "ok"
    assert deadlines.status(resumed, wib(2026, 11, 12), POLICY, CAL) == "warning"


def test_hold_within_one_day_or_over_a_weekend_costs_nothing():
    clock = deadlines.start(DeadlineStep.DISPOSITION, MONDAY)
    same_day = deadlines.resume(
        deadlines.pause(clock, wib(2026, 11, 2, 10)), wib(2026, 11, 2, 15), CAL
    )
    assert same_day.paused_working_days == 0
    weekend = deadlines.resume(deadlines.pause(clock, wib(2026, 11, 6, 16)), wib(2026, 11, 8), CAL)
    assert weekend.paused_working_days == 0
    assert deadlines.due_at(weekend, POLICY, CAL) == end_of(2026, 11, 5)


def test_holds_accumulate():
    clock = deadlines.start(DeadlineStep.FIRST_FOLLOW_UP, MONDAY)  # due Monday 9 Nov
    clock = deadlines.resume(deadlines.pause(clock, wib(2026, 11, 2, 10)), wib(2026, 11, 3), CAL)
    clock = deadlines.resume(deadlines.pause(clock, wib(2026, 11, 4)), wib(2026, 11, 6), CAL)
    assert clock.paused_working_days == 3
    assert deadlines.due_at(clock, POLICY, CAL) == end_of(2026, 11, 12)


def test_hold_over_a_holiday_counts_only_working_days():
    # Started Thursday 13 Aug 2026: Fri 14, (weekend, Independence Day Mon 17), Tue 18,
    # Wed 19: due Wednesday.
    clock = deadlines.start(DeadlineStep.DISPOSITION, wib(2026, 8, 13))
    assert deadlines.due_at(clock, POLICY, CAL) == end_of(2026, 8, 19)
    # On hold Friday 14 to Tuesday 18: only Tuesday is a working day after Friday.
    clock = deadlines.resume(deadlines.pause(clock, wib(2026, 8, 14)), wib(2026, 8, 18), CAL)
    assert clock.paused_working_days == 1
    assert deadlines.due_at(clock, POLICY, CAL) == end_of(2026, 8, 20)


def test_pause_and_resume_are_idempotent():
    clock = deadlines.start(DeadlineStep.DISPOSITION, MONDAY)
    held = deadlines.pause(clock, wib(2026, 11, 3))
    # A redelivered hold event keeps the original start of the hold.
    assert deadlines.pause(held, wib(2026, 11, 4)) is held
    resumed = deadlines.resume(held, wib(2026, 11, 5), CAL)
    assert deadlines.resume(resumed, wib(2026, 11, 6), CAL) is resumed


def test_out_of_order_instants_are_refused():
    clock = deadlines.start(DeadlineStep.DISPOSITION, MONDAY)
    with pytest.raises(ValueError, match="before"):
        deadlines.pause(clock, MONDAY - timedelta(hours=1))
    held = deadlines.pause(clock, wib(2026, 11, 3))
    with pytest.raises(ValueError, match="before"):
        deadlines.resume(held, wib(2026, 11, 2, 23), CAL)


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="aware"):
        deadlines.start(DeadlineStep.DISPOSITION, datetime(2026, 11, 2, 9))
    clock = deadlines.start(DeadlineStep.DISPOSITION, MONDAY)
    with pytest.raises(ValueError, match="aware"):
        deadlines.status(clock, datetime(2026, 11, 2, 9), POLICY, CAL)


def test_utc_instants_are_reckoned_on_the_local_calendar():
    # Sunday 8 Nov 17:30 UTC is Monday 9 Nov 00:30 in Pontianak: the clock counts from
    # Monday, as it would from a UTC Sunday (both roll to Monday) ...
    sunday_utc = datetime(2026, 11, 8, 17, 30, tzinfo=UTC)
    clock = deadlines.start(DeadlineStep.DISPOSITION, sunday_utc)
    assert deadlines.due_at(clock, POLICY, CAL) == end_of(2026, 11, 12)
    # ... but Thursday 17:30 UTC is Friday in Pontianak, so the due date moves a day.
    thursday_utc = datetime(2026, 11, 5, 17, 30, tzinfo=UTC)
    clock = deadlines.start(DeadlineStep.DISPOSITION, thursday_utc)
    due = deadlines.due_at(clock, POLICY, CAL)
    assert due == end_of(2026, 11, 11)  # Fri + 3 = Wednesday (from Thursday: Tuesday)
    # Breach is judged on instants, whatever zone "now" is given in.
    assert deadlines.status(clock, datetime(2026, 11, 11, 16, 59, tzinfo=UTC), POLICY, CAL) == (
        "warning"
    )
    assert deadlines.status(clock, datetime(2026, 11, 11, 17, 0, tzinfo=UTC), POLICY, CAL) == (
        "breached"
    )


def test_every_event_type_of_a_complaint_says_which_clock_runs_after_it():
    """A new event type fails here until the tracker says what it does to the clock."""
    assert set(TIMERS) == set(CHANGES)
