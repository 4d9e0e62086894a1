"""How the analytics count days: the same settings (and defaults) as the tracker's deadlines.

Read from the tracker's variables (``LAPOR_DEADLINE_*``), so both count the same working
days: the deployment's zone, its collective-leave file and the first-follow-up deadline.
Unset, they are the national defaults (Asia/Pontianak, no cuti bersama, 5 working days).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lapor.analytics.metrics import FIRST_FOLLOW_UP_DAYS, Rules
from lapor.shared.calendar import DEFAULT_TIMEZONE, WorkingCalendar, collective_leave_from_text


class MetricsConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LAPOR_DEADLINE_", extra="ignore")

    first_follow_up_days: int = Field(default=FIRST_FOLLOW_UP_DAYS, ge=0)
    timezone: str = DEFAULT_TIMEZONE
    collective_leave_file: Path | None = Field(
        default=None, description="Cuti bersama: one YYYY-MM-DD a line, # comments"
    )

    def rules(self) -> Rules:
        leave = (
            collective_leave_from_text(self.collective_leave_file.read_text())
            if self.collective_leave_file
            else ()
        )
        return Rules(
            calendar=WorkingCalendar(collective_leave=leave, timezone=self.timezone),
            first_follow_up_days=self.first_follow_up_days,
        )
