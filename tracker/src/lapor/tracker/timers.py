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
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lapor.shared.calendar import WorkingCalendar, collective_leave_from_text
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
from lapor.tracker.deadlines import Clock, DeadlinePolicy


class DeadlineConfig(BaseSettings):
    """Per-deployment deadlines (``LAPOR_DEADLINE_*``); defaults are the national ones."""

    model_config = SettingsConfigDict(env_prefix="LAPOR_DEADLINE_", extra="ignore")

    disposition_days: int = Field(default=3, ge=0)
    first_follow_up_days: int = Field(default=5, ge=0)
    reporter_reply_days: int = Field(default=10, ge=0)
    warn_before_days: int = Field(default=1, ge=0)
    timezone: str = "Asia/Pontianak"
    collective_leave_file: Path | None = Field(
        default=None, description="Cuti bersama: one YYYY-MM-DD a line, # comments"
    )
    check_seconds: float = Field(default=5.0, gt=0, description="How often timers are checked")

    def policy(self) -> DeadlinePolicy:
        return DeadlinePolicy(
            disposition_days=self.disposition_days,
            first_follow_up_days=self.first_follow_up_days,
            reporter_reply_days=self.reporter_reply_days,
            warn_before_working_days=self.warn_before_days,
        )

    def calendar(self) -> WorkingCalendar:
        leave = (
            collective_leave_from_text(self.collective_leave_file.read_text())
            if self.collective_leave_file
            else ()
        )
        return WorkingCalendar(collective_leave=leave, timezone=self.timezone)


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
