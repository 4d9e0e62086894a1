"""How many working days each step of a complaint may take (tenggat waktu): the national
defaults of SP4N-LAPOR!, which a deployment may change (``LAPOR_DEADLINE_*``, read by
``lapor.services.settings.DeadlineSettings``). The tracker's clocks and the analytics'
figures both count by these, so they are written down once.
"""

from __future__ import annotations

from dataclasses import dataclass

from lapor.shared.events import DeadlineStep


@dataclass(frozen=True)
class DeadlinePolicy:
    """Working days allowed per step: the national defaults, overridable per deployment.

    * ``disposition_days``: verification and disposition to the authorized unit
      (verifikasi dan disposisi).
    * ``first_follow_up_days``: the unit's first follow-up (tindak lanjut).
    * ``reporter_reply_days``: the reporter's reply to a follow-up before the complaint
      closes on its own.
    * ``warn_before_working_days``: a warning is due once this many working days remain
      (0 turns warnings off).
    """

    disposition_days: int = 3
    first_follow_up_days: int = 5
    reporter_reply_days: int = 10
    warn_before_working_days: int = 1

    def __post_init__(self) -> None:
        for name in (
            "disposition_days",
            "first_follow_up_days",
            "reporter_reply_days",
            "warn_before_working_days",
        ):
            value = getattr(self, name)
            # bool is an int; "disposition_days = true" in a config file is a mistake.
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")

    def days_for(self, step: DeadlineStep) -> int:
        """Working days allowed for ``step``."""
        match DeadlineStep(step):
            case DeadlineStep.DISPOSITION:
                return self.disposition_days
            case DeadlineStep.FIRST_FOLLOW_UP:
                return self.first_follow_up_days
            case DeadlineStep.REPORTER_REPLY:
                return self.reporter_reply_days
        raise ValueError(f"unknown deadline step {step!r}")  # pragma: no cover
