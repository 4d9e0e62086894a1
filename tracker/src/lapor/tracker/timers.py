"""Which deadline clock runs after each event (pure).

| event | clock |
| --- | --- |
| received, not our authority | verification and disposition (3 working days) |
| disposed, reopened | first follow-up by the unit (5) |
| answered | the reporter's reply (10); when it runs out the complaint closes itself |
| followed up | none (the unit has acted) |
| on hold / resumed | paused / running again, the days on hold not counted |
| closed, archived | none |
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from lapor.shared.calendar import WorkingCalendar
from lapor.shared.envelope import Event
from lapor.shared.events import (
    AuthorityDeclined,
    ComplaintArchived,
    ComplaintClosed,
    ComplaintDisposed,
    ComplaintPutOnHold,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    ComplaintResumed,
    DeadlineBreached,
    DeadlineStep,
    DeadlineWarned,
    FollowUpPosted,
)
from lapor.tracker import deadlines
from lapor.tracker.deadlines import Clock


@dataclass(frozen=True)
class Timer:
    """The running clock of a complaint and what has been announced about it."""

    clock: Clock | None = None
    warned: bool = False
    breached: bool = False


def next_timer(timer: Timer, event: Event, at: datetime, calendar: WorkingCalendar) -> Timer:
    match event:
        case ComplaintReceived() | AuthorityDeclined():
            return Timer(deadlines.start(DeadlineStep.DISPOSITION, at))
        case ComplaintDisposed() | ComplaintReopened():
            return Timer(deadlines.start(DeadlineStep.FIRST_FOLLOW_UP, at))
        case ComplaintResolved():
            return Timer(deadlines.start(DeadlineStep.REPORTER_REPLY, at))
        case FollowUpPosted() | ComplaintClosed() | ComplaintArchived():
            return Timer()
        case ComplaintPutOnHold() if timer.clock:
            return replace(timer, clock=deadlines.pause(timer.clock, at))
        case ComplaintResumed() if timer.clock:
            return replace(timer, clock=deadlines.resume(timer.clock, at, calendar))
        case DeadlineWarned(step=step) if timer.clock and timer.clock.step == step:
            return replace(timer, warned=True)
        case DeadlineBreached(step=step) if timer.clock and timer.clock.step == step:
            return replace(timer, warned=True, breached=True)
    return timer
