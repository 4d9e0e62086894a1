"""Per-step deadline clocks (tenggat waktu), paused while a complaint is on hold (Tertunda).

Pure domain code: no I/O and no clock reads. The tracker projection keeps a ``Clock`` per
running step and stores ``due_at``; a scheduler calls ``status`` with the current time and
appends ``DeadlineWarned`` / ``DeadlineBreached`` when it changes.

All instants follow the reckoning of ``WorkingCalendar.add_working_days``: ``due_at`` is
the last instant still on time (23:59:59.999999 local on the due working day), so a clock
is breached strictly *after* it; likewise a warning is due strictly after ``warn_at``.

Holds are counted in whole working days (``WorkingCalendar.working_days_between``): a
hold from Monday to Wednesday adds two working days to the due date; a hold that begins
and ends on the same day, or only spans a weekend, adds none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from lapor.shared.calendar import WorkingCalendar
from lapor.shared.deadlines import DeadlinePolicy
from lapor.shared.events import DeadlineStep

ClockStatus = Literal["ok", "warning", "breached", "paused"]


@dataclass(frozen=True)
class Clock:
    """The running (or paused) clock of one step of one complaint.

    ``paused_working_days`` is the hold time already served, in working days; it pushes
    the due date back. ``paused_at`` is set while the complaint is on hold.
    """

    step: DeadlineStep
    started_at: datetime
    paused_at: datetime | None = None
    paused_working_days: int = 0

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


def start(step: DeadlineStep, at: datetime) -> Clock:
    """Start the clock of ``step`` at the aware instant ``at``."""
    _require_aware(at)
    return Clock(step=DeadlineStep(step), started_at=at)


def pause(clock: Clock, at: datetime) -> Clock:
    """Stop the clock at ``at`` because the complaint went on hold (Tertunda).

    Pausing a paused clock returns it unchanged: events are delivered at least once, and
    a redelivered hold must not move the start of the hold.
    """
    _require_aware(at)
    if clock.paused:
        return clock
    if at < clock.started_at:
        raise ValueError(f"pause at {at.isoformat()} is before the clock started")
    return replace(clock, paused_at=at)


def resume(clock: Clock, at: datetime, calendar: WorkingCalendar) -> Clock:
    """Restart the clock at ``at``; the working days spent on hold extend the due date.

    Resuming a running clock returns it unchanged, for the same reason as ``pause``.
    """
    _require_aware(at)
    if clock.paused_at is None:
        return clock
    if at < clock.paused_at:
        raise ValueError(f"resume at {at.isoformat()} is before the pause")
    held = calendar.working_days_between(clock.paused_at, at)
    return replace(clock, paused_at=None, paused_working_days=clock.paused_working_days + held)


def due_at(clock: Clock, policy: DeadlinePolicy, calendar: WorkingCalendar) -> datetime | None:
    """The last instant the step is on time, in the calendar's zone; None while paused."""
    if clock.paused:
        return None
    days = policy.days_for(clock.step) + clock.paused_working_days
    return calendar.add_working_days(clock.started_at, days)


def warn_at(clock: Clock, policy: DeadlinePolicy, calendar: WorkingCalendar) -> datetime | None:
    """The instant after which a warning is due: when ``warn_before_working_days`` remain.

    Reckoned like ``due_at``: the end of the working day ``warn_before_working_days``
    before the due day. If the step allows fewer days than that, it is ``started_at``
    (the clock starts inside the warning window). None while paused or when the policy
    has warnings off.
    """
    if clock.paused or policy.warn_before_working_days == 0:
        return None
    days = policy.days_for(clock.step) + clock.paused_working_days - policy.warn_before_working_days
    if days < 0:
        return clock.started_at
    return calendar.add_working_days(clock.started_at, days)


def status(
    clock: Clock, now: datetime, policy: DeadlinePolicy, calendar: WorkingCalendar
) -> ClockStatus:
    """Where the clock stands at ``now``: ok, warning, breached (past due) or paused."""
    _require_aware(now)
    due = due_at(clock, policy, calendar)
    if due is None:
        return "paused"
    if now > due:
        return "breached"
    warn = warn_at(clock, policy, calendar)
    if warn is not None and now > warn:
        return "warning"
    return "ok"


def _require_aware(at: datetime) -> None:
    # Comparing a naive instant with an aware one raises deep inside a projection; fail
    # here, at the call that brought it in.
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got {at.isoformat()}")
