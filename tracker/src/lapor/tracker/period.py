"""A period of reception as the public listing takes it (``from`` / ``to``): pure, no I/O.

Each bound is a local date (``2026-01-31``: the whole day in the deployment's zone, both
days included, as analytics' ``from``/``to``) or an instant with its offset
(``2026-01-31T17:00:00+07:00``, included). The result is half-open, ``[since, before)``,
which is what the query takes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""No complaint was received before this; an earlier bound is a mistake (a 422)."""

FORMAT = "a date (2026-01-31) or a date and time with its offset (2026-01-31T17:00:00+07:00)"


class BadBound(ValueError):
    """A bound that is not usable: ``field`` is the parameter's name, ``reason`` why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def bound(field: str, text: str | None, zone: ZoneInfo, *, end: bool) -> datetime | None:
    """One bound as an instant: the start of the period (``end=False``) or the instant
    just after it (``end=True``: the next day's start, or the instant plus a microsecond,
    PostgreSQL's resolution). None when not given."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            at = datetime.combine(day + timedelta(days=1) if end else day, time.min, zone)
        else:
            at = datetime.fromisoformat(text)
            if at.tzinfo is None:
                raise BadBound(field, f"needs its offset: give {FORMAT}")
            at = at + timedelta(microseconds=1) if end else at
    except BadBound:
        raise
    except OverflowError:
        raise BadBound(field, "out of range") from None
    except ValueError:
        raise BadBound(field, f"not {FORMAT}") from None
    if at < EARLIEST:
        raise BadBound(field, f"must not be before {EARLIEST.date()}")
    return at


def period(
    since_text: str | None, until_text: str | None, zone: ZoneInfo, *, names: tuple[str, str]
) -> tuple[datetime | None, datetime | None]:
    """``[since, before)`` from the two bounds (``names`` are the parameters' names, for
    the error); an end before the start is a ``BadBound`` of the second."""
    since = bound(names[0], since_text, zone, end=False)
    before = bound(names[1], until_text, zone, end=True)
    if since is not None and before is not None and before <= since:
        raise BadBound(names[1], f"must not be before {names[0]}")
    return since, before
