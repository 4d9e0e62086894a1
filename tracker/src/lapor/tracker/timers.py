"""Which deadline clock runs after each event (pure).

| event | clock |
| --- | --- |
| received, not our authority | verification and disposition (3 working days) |
| disposed, reopened | first follow-up by the unit (5) |
| answered | the reporter's reply (10); when it runs out the complaint closes itself |
| followed up | none (the unit has acted) |
| on hold / resumed | paused / running again, the days on hold not counted |
| closed, archived | none |
| routed, replied, rated | unchanged |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from lapor.shared import events as ev
from lapor.shared.calendar import WorkingCalendar
from lapor.shared.envelope import Event
from lapor.tracker import deadlines
from lapor.tracker.deadlines import Clock


@dataclass(frozen=True)
class Timer:
    """The running clock of a complaint and what has been announced about it."""

    clock: Clock | None = None
    warned: bool = False
    breached: bool = False


def next_timer(timer: Timer, event: Event, at: datetime, calendar: WorkingCalendar) -> Timer:
    """The timer after ``event``, which happened at ``at``."""
    return TIMERS[type(event)](timer, event, at, calendar)


Next = Callable[[Timer, Any, datetime, WorkingCalendar], Timer]


def _start(step: ev.DeadlineStep) -> Next:
    return lambda timer, event, at, calendar: Timer(deadlines.start(step, at))


def _stopped(timer: Timer, event: Event, at: datetime, calendar: WorkingCalendar) -> Timer:
    return Timer()


def _unchanged(timer: Timer, event: Event, at: datetime, calendar: WorkingCalendar) -> Timer:
    return timer


def _paused(timer: Timer, event: Event, at: datetime, calendar: WorkingCalendar) -> Timer:
    return replace(timer, clock=deadlines.pause(timer.clock, at)) if timer.clock else timer


def _resumed(timer: Timer, event: Event, at: datetime, calendar: WorkingCalendar) -> Timer:
    if timer.clock is None:
        return timer
    return replace(timer, clock=deadlines.resume(timer.clock, at, calendar))


def _announced(**marks: bool) -> Next:
    """A warning or breach of the running step marks it (of another step: stale, ignored)."""

    def mark(timer: Timer, event: ev.DeadlineWarned | ev.DeadlineBreached, at, calendar) -> Timer:
        if timer.clock and timer.clock.step == event.step:
            return replace(timer, **marks)
        return timer

    return mark


TIMERS: dict[type[Event], Next] = {
    ev.ComplaintReceived: _start(ev.DeadlineStep.DISPOSITION),
    ev.AuthorityDeclined: _start(ev.DeadlineStep.DISPOSITION),
    ev.ComplaintDisposed: _start(ev.DeadlineStep.FIRST_FOLLOW_UP),
    ev.ComplaintReopened: _start(ev.DeadlineStep.FIRST_FOLLOW_UP),
    ev.ComplaintResolved: _start(ev.DeadlineStep.REPORTER_REPLY),
    ev.FollowUpPosted: _stopped,
    ev.ComplaintClosed: _stopped,
    ev.ComplaintArchived: _stopped,
    ev.ComplaintPutOnHold: _paused,
    ev.ComplaintResumed: _resumed,
    ev.DeadlineWarned: _announced(warned=True),
    ev.DeadlineBreached: _announced(warned=True, breached=True),
    ev.ComplaintRouted: _unchanged,
    ev.ReporterReplied: _unchanged,
    ev.ComplaintRated: _unchanged,
}
"""Which clock runs after each event of a complaint (the table above); every event type is
named (``test_deadlines``)."""
