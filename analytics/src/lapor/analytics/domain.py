"""Completion metrics, free of I/O.

completion rate (persentase penyelesaian) = finished / received x 100, truncated (never
rounded up) to two decimals, as the official reports print it: 904 of 942 is 95.96%.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal


def completion_rate(received: int, resolved: int) -> Decimal | None:
    """Percentage finished, two decimals, truncated; None when nothing was received."""
    if received < 0 or resolved < 0 or resolved > received:
        raise ValueError(f"impossible counts: {resolved} resolved of {received} received")
    if received == 0:
        return None
    return (Decimal(resolved) * 100 / Decimal(received)).quantize(
        Decimal("0.01"), rounding=ROUND_DOWN
    )


@dataclass(frozen=True)
class Completion:
    received: int
    resolved: int

    @property
    def rate(self) -> Decimal | None:
        return completion_rate(self.received, self.resolved)
