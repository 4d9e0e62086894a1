from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from lapor.shared.calendar import WorkingCalendar, collective_leave_from_text

WIB = ZoneInfo("Asia/Pontianak")
CAL = WorkingCalendar()

# Cuti bersama 2026 as decreed (SKB 3 Menteri); the tests configure them explicitly.
LEAVE_2026 = """
# Cuti bersama 2026
2026-02-16  # Tahun Baru Imlek
2026-03-18  # Nyepi
2026-03-20  # Idul Fitri
2026-03-23
2026-03-24

2026-05-15
2026-05-28
2026-12-24
"""


def wib(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=WIB)


def end_of(y: int, m: int, d: int) -> datetime:
    return datetime.combine(date(y, m, d), time.max, tzinfo=WIB)


def test_weekdays_are_working_days_and_weekends_are_not():
    # 2026-11-02 is a Monday with no holiday near it.
    week = [date(2026, 11, 2) + timedelta(days=i) for i in range(7)]
    assert [CAL.is_working_day(d) for d in week] == [True] * 5 + [False] * 2


def test_library_knows_the_2026_public_holidays_we_rely_on():
    public = CAL.public_holidays(2026)
    assert date(2026, 8, 17) in public  # Hari Kemerdekaan
    assert date(2026, 8, 17).weekday() == 0  # a Monday
    assert {date(2026, 3, 21), date(2026, 3, 22)} <= public  # Idul Fitri 1447 H
    assert date(2026, 12, 25) in public


def test_public_holiday_is_not_a_working_day():
    assert not CAL.is_working_day(date(2026, 8, 17))
    assert CAL.is_working_day(date(2026, 8, 18))
    # Nyepi 2026 falls on a Thursday.
    assert not CAL.is_working_day(date(2026, 3, 19))


def test_collective_leave_is_configuration():
    assert CAL.is_working_day(date(2026, 3, 20))  # not a public holiday by itself
    cal = WorkingCalendar(collective_leave=[date(2026, 3, 20)])
    assert not cal.is_working_day(date(2026, 3, 20))


def test_add_working_days_skips_the_weekend():
    # Thursday + 3 working days: Friday, Monday, Tuesday.
    assert CAL.add_working_days(wib(2026, 11, 5), 3) == end_of(2026, 11, 10)


def test_deadline_is_the_end_of_the_day_whatever_the_hour_of_receipt():
    early = CAL.add_working_days(wib(2026, 11, 2, 0, 1), 3)
    late = CAL.add_working_days(wib(2026, 11, 2, 23, 59), 3)
    assert early == late == end_of(2026, 11, 5)
    assert early.tzinfo == WIB


def test_zero_days_is_the_end_of_the_start_day():
    assert CAL.add_working_days(wib(2026, 11, 2), 0) == end_of(2026, 11, 2)


def test_start_on_a_weekend_counts_from_the_next_working_day():
    # Received Saturday: treated as received Monday, so 3 days run to Thursday.
    assert CAL.add_working_days(wib(2026, 11, 7), 3) == end_of(2026, 11, 12)
    assert CAL.add_working_days(wib(2026, 11, 8), 0) == end_of(2026, 11, 9)


def test_add_working_days_across_the_independence_day_long_weekend():
    # Friday 14 Aug 2026, then Sat, Sun, Mon 17 Aug (holiday): day 1 is Tuesday 18 Aug.
    assert CAL.add_working_days(wib(2026, 8, 14), 1) == end_of(2026, 8, 18)
    assert CAL.add_working_days(wib(2026, 8, 14), 3) == end_of(2026, 8, 20)


def test_add_working_days_across_idul_fitri_with_collective_leave():
    cal = WorkingCalendar(collective_leave=collective_leave_from_text(LEAVE_2026))
    # Tue 17 Mar; Wed 18 leave (Nyepi), Thu 19 Nyepi, Fri 20 leave, Sat 21 + Sun 22 Idul
    # Fitri, Mon 23 + Tue 24 leave: the first working day after is Wednesday 25 March.
    assert cal.add_working_days(wib(2026, 3, 17), 1) == end_of(2026, 3, 25)
    assert cal.add_working_days(wib(2026, 3, 17), 3) == end_of(2026, 3, 27)
    # Without the configured leave only the holidays and the weekend are skipped.
    assert CAL.add_working_days(wib(2026, 3, 17), 3) == end_of(2026, 3, 23)


def test_local_date_decides_not_the_utc_date():
    # Thursday 17:30 UTC is already Friday 00:30 in Pontianak (WIB, UTC+7).
    received = datetime(2026, 11, 5, 17, 30, tzinfo=UTC)
    assert CAL.local_date(received) == date(2026, 11, 6)
    # Counted from Friday, one working day runs to Monday (from Thursday it would be Friday).
    assert CAL.add_working_days(received, 1) == end_of(2026, 11, 9)
    assert CAL.add_working_days(received, 1) == datetime(2026, 11, 9, 16, 59, 59, 999999, UTC)


def test_utc_saturday_night_before_a_holiday_monday():
    # Fri 14 Aug 18:30 UTC = Sat 15 Aug 01:30 WIB; Monday 17 is a holiday: start Tuesday.
    received = datetime(2026, 8, 14, 18, 30, tzinfo=UTC)
    assert CAL.add_working_days(received, 3) == end_of(2026, 8, 21)


def test_another_deployment_zone():
    wit = WorkingCalendar(timezone="Asia/Jayapura")  # WIT, UTC+9
    received = datetime(2026, 11, 5, 15, 30, tzinfo=UTC)  # Fri 00:30 in Jayapura
    assert wit.local_date(received) == date(2026, 11, 6)
    assert CAL.local_date(received) == date(2026, 11, 5)


def test_working_days_between():
    monday = wib(2026, 11, 2, 8)
    assert CAL.working_days_between(monday, wib(2026, 11, 2, 17)) == 0
    assert CAL.working_days_between(monday, wib(2026, 11, 3, 7)) == 1
    assert CAL.working_days_between(monday, wib(2026, 11, 9, 8)) == 5
    # Friday to Sunday: nothing elapsed; a weekend start counts from Monday.
    assert CAL.working_days_between(wib(2026, 11, 6), wib(2026, 11, 8)) == 0
    assert CAL.working_days_between(wib(2026, 11, 7), wib(2026, 11, 9)) == 0
    # Across Independence Day.
    assert CAL.working_days_between(wib(2026, 8, 14), wib(2026, 8, 18)) == 1


@pytest.mark.parametrize("n", [0, 1, 3, 5, 10, 14, 60])
@pytest.mark.parametrize(
    "start",
    [
        datetime(2026, 3, 17, 2, 0, tzinfo=UTC),
        datetime(2026, 8, 14, 18, 30, tzinfo=UTC),
        datetime(2026, 12, 20, 12, 0, tzinfo=UTC),  # crosses into 2027
    ],
)
def test_working_days_between_inverts_add_working_days(start, n):
    assert CAL.working_days_between(start, CAL.add_working_days(start, n)) == n


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="aware"):
        CAL.add_working_days(datetime(2026, 11, 2, 9), 1)
    with pytest.raises(ValueError, match="negative"):
        CAL.add_working_days(wib(2026, 11, 2), -1)
    with pytest.raises(ValueError, match="before"):
        CAL.working_days_between(wib(2026, 11, 3), wib(2026, 11, 2))
    with pytest.raises(TypeError):
        CAL.is_working_day(datetime(2026, 8, 17, tzinfo=WIB))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        WorkingCalendar(collective_leave=["2026-03-20"])  # type: ignore[list-item]


def test_fixed_offset_instants_are_accepted():
    received = datetime(2026, 11, 2, 9, tzinfo=timezone(timedelta(hours=8)))  # WITA
    assert CAL.add_working_days(received, 1) == end_of(2026, 11, 3)


def test_collective_leave_from_text():
    leave = collective_leave_from_text(LEAVE_2026)
    assert len(leave) == 8
    assert date(2026, 3, 23) in leave
    assert collective_leave_from_text("") == frozenset()
    assert collective_leave_from_text("# only a comment\n\n  2026-12-24   \n") == {
        date(2026, 12, 24)
    }


@pytest.mark.parametrize("bad", ["2026-13-01", "20260316", "16/03/2026", "2026-03-16 2026-03-17"])
def test_collective_leave_from_text_names_the_bad_line(bad):
    with pytest.raises(ValueError, match="line 2"):
        collective_leave_from_text(f"2026-03-20\n{bad}\n")
