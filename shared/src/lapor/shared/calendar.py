"""Working days (hari kerja) in Indonesia, for reckoning complaint deadlines.

Pure domain code: no I/O and no clock reads. Every function takes the instants it needs.
It is part of the shared contract because deadlines are defined in working days: the
tracker that fires them and the analytics that measure them must count the same days.

A working day is a local calendar date that is

* not a Saturday or Sunday,
* not a national public holiday (hari libur nasional), taken from the maintained
  ``holidays`` library so that the moving Islamic, Chinese, Hindu and Buddhist dates
  need no upkeep here, and
* not a collective-leave day (cuti bersama). These are set by a joint ministerial decree
  (SKB) each year, so they are deployment configuration, passed to ``WorkingCalendar``.

Deadlines are reckoned on the deployment's local calendar (default ``Asia/Pontianak``,
WIB, UTC+7): a complaint sent at 18:30 UTC on a Thursday arrives on Friday in Pontianak,
and Friday is the day it counts from.

Reckoning rule (used by ``add_working_days`` and ``working_days_between`` alike):

* The *effective start date* is the local date of the start instant, moved forward to the
  next working day if it is not one. A complaint received on a Saturday is treated as
  received on Monday (or later, if Monday is a holiday).
* A deadline of ``n`` working days is the **last instant (23:59:59.999999 local time) of
  the n-th working day after the effective start date**. The remainder of the start day
  is a grace, never a charge: a complaint received at 16:00 on Monday with a 3-day
  deadline is due at the end of Thursday, as is one received at 08:00.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

DEFAULT_TIMEZONE = "Asia/Pontianak"
"""WIB (UTC+7): the zone of the first deployment (Kalimantan Barat)."""

_END_OF_DAY = time.max  # 23:59:59.999999: a due instant is the last one still on time
_ONE_DAY = timedelta(days=1)
_DUE_DATES_KEPT = 20_000


class WorkingCalendar:
    """Which local dates are working days (hari kerja), and deadline arithmetic over them.

    ``collective_leave`` are the cuti bersama dates of the deployment (see
    ``collective_leave_from_text``). ``timezone`` is an IANA zone name or a ``ZoneInfo``.

    Public holidays are looked up lazily, one year at a time, and cached on the instance,
    as are due dates; the calendar is otherwise immutable, so one instance can be shared.
    """

    def __init__(
        self,
        collective_leave: Iterable[date] = (),
        timezone: str | ZoneInfo = DEFAULT_TIMEZONE,
    ) -> None:
        leave = frozenset(collective_leave)
        for d in leave:
            _require_date(d)
        self._collective_leave = leave
        self._zone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
        self._public_holidays: dict[int, frozenset[date]] = {}
        # (effective start date, n) -> due date: a projection asks for the same few
        # dates thousands of times a second, each a walk of several days.
        self._due_dates: dict[tuple[date, int], date] = {}

    @property
    def zone(self) -> ZoneInfo:
        """The zone whose calendar dates the deadlines are reckoned in."""
        return self._zone

    @property
    def collective_leave(self) -> frozenset[date]:
        """The configured cuti bersama dates."""
        return self._collective_leave

    def public_holidays(self, year: int) -> frozenset[date]:
        """Indonesian national public holidays (hari libur nasional) of ``year``."""
        cached = self._public_holidays.get(year)
        if cached is None:
            # Only the "public" category: the library also knows cuti bersama
            # ("government"), but those are decreed yearly and belong to configuration,
            # so a deployment decides them explicitly rather than by library version.
            cached = frozenset(holidays.country_holidays("ID", years=year).keys())
            self._public_holidays[year] = cached
        return cached

    def is_working_day(self, d: date) -> bool:
        """Whether the local calendar date ``d`` is a working day (hari kerja)."""
        _require_date(d)
        if d.weekday() >= 5:  # Saturday, Sunday
            return False
        return d not in self._collective_leave and d not in self.public_holidays(d.year)

    def next_working_day(self, d: date) -> date:
        """``d`` itself if it is a working day, else the first working day after it."""
        _require_date(d)
        while not self.is_working_day(d):
            d += _ONE_DAY
        return d

    def local_date(self, at: datetime) -> date:
        """The calendar date of the aware instant ``at`` in the deployment's zone."""
        return _require_aware(at).astimezone(self._zone).date()

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """The deadline ``n`` working days after ``start``.

        Returns the last instant (23:59:59.999999, in ``zone``) of the n-th working day
        after the effective start date (the local date of ``start``, or the next working
        day if that is not one). ``n == 0`` gives the end of the effective start date.
        ``start`` must be timezone-aware; ``n`` must not be negative.
        """
        if n < 0:
            raise ValueError(f"working days must not be negative, got {n}")
        first = self.local_date(start)
        day = self._due_dates.get((first, n))
        if day is None:
            day = self.next_working_day(first)
            for _ in range(n):
                day = self.next_working_day(day + _ONE_DAY)
            if len(self._due_dates) >= _DUE_DATES_KEPT:
                self._due_dates.clear()
            self._due_dates[(first, n)] = day
        return datetime.combine(day, _END_OF_DAY, tzinfo=self._zone)

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Whole working days elapsed from ``start`` to ``end`` (for metrics and holds).

        Counts the working days after the effective start date up to and including the
        local date of ``end``, so that for any ``n``,
        ``working_days_between(s, add_working_days(s, n)) == n``. Two instants on the
        same working day, or a span covering only a weekend, give 0.
        Both instants must be aware, and ``end`` must not be before ``start``.
        """
        if _require_aware(end) < _require_aware(start):
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        day = self.next_working_day(self.local_date(start))
        last = self.local_date(end)
        count = 0
        while day < last:
            day += _ONE_DAY
            if self.is_working_day(day):
                count += 1
        return count


def collective_leave_from_text(text: str) -> frozenset[date]:
    """Parse a cuti bersama file: one ISO date (YYYY-MM-DD) per line.

    ``#`` starts a comment, to the end of the line; blank lines are ignored. For example::

        # Cuti bersama 2026 (SKB Menteri Agama, Menaker, MenPAN-RB)
        2026-02-16  # Tahun Baru Imlek
        2026-03-20  # Idul Fitri
        2026-03-23
        2026-03-24

    Raises ``ValueError`` naming the line of anything else, since a mistyped date would
    otherwise silently shorten every deadline around it.
    """
    dates: set[date] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            # fromisoformat alone would also take "20260316"; a leave file is read by people.
            if len(line) != 10:
                raise ValueError
            dates.add(date.fromisoformat(line))
        except ValueError:
            raise ValueError(
                f"collective leave line {number}: expected a date YYYY-MM-DD, got {raw!r}"
            ) from None
    return frozenset(dates)


def _require_date(d: object) -> None:
    # datetime is a subclass of date, and a datetime never equals a holiday's date, so one
    # passed here by mistake would make every holiday a working day without any error.
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected a date, got {type(d).__name__}")


def _require_aware(at: datetime) -> datetime:
    # A naive datetime has no place on the local calendar; guessing its zone would move
    # deadlines by a day around midnight.
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got {at.isoformat()}")
    return at
