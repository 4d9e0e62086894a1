"""The metric definitions on a known history (see ../conftest.py), figure by figure."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from lapor.analytics.metrics import (
    Durations,
    Fact,
    GroupBy,
    Rules,
    facts_from,
    figures,
    fold,
    follow_up_deadline,
    group_key,
    percentile,
    report,
    select,
    truncated_mean,
    working_days,
)
from lapor.shared.calendar import WorkingCalendar
from lapor.shared.events import AuthorityDeclined, ComplaintRated, FollowUpPosted

WIB = ZoneInfo("Asia/Pontianak")
RULES = Rules()
LATER = datetime(2024, 6, 30, tzinfo=WIB)  # every deadline of the history has passed


def wib(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=WIB)


def folded(history, until: datetime | None = None) -> list[Fact]:
    return facts_from(
        (cid, event, at, seq)
        for seq, (cid, event, at) in enumerate(history, start=1)
        if until is None or at <= until
    )


def by_id(facts: list[Fact]) -> dict[str, Fact]:
    return {f.complaint_id: f for f in facts}


# --- completion rate --------------------------------------------------------------------


def test_pontianak_942_received_904_finished_is_95_96_percent():
    def fact(i: int, **kw) -> Fact:
        return Fact(
            f"{i:05d}-00000", wib(1, 2), channel="web", report_type="pengaduan", opd="dpupr", **kw
        )

    facts = [fact(i, closed_at=wib(1, 3)) for i in range(904)]
    facts += [fact(i) for i in range(904, 942)]
    # Archived reports are no valid complaints, finished or not: they change nothing.
    facts += [fact(i, closed_at=wib(1, 3), archived_at=wib(1, 3)) for i in range(942, 950)]
    result = report(facts, at=LATER, rules=RULES, by=GroupBy.OPD)
    assert (result.overall.received, result.overall.finished) == (942, 904)
    assert result.overall.archived == 8
    assert result.overall.completion_rate == Decimal("95.96")
    [group] = result.groups
    assert (group.key, group.figures.completion_rate) == ("dpupr", Decimal("95.96"))


# --- the facts ----------------------------------------------------------------------------


def test_facts_of_the_known_history(history):
    facts = by_id(folded(history))
    a, b, c, d, e = (facts[k] for k in sorted(facts))
    assert (a.opd, a.opd_name, a.channel, a.report_type, a.category) == (
        "dpupr",
        "Dinas PUPR",
        "web",
        "pengaduan",
        "jalan",
    )
    assert (a.disposed_at, a.first_follow_up_at, a.closed_at) == (
        wib(3, 12),
        wib(3, 13),
        wib(3, 18),
    )
    assert a.rating == 5 and a.hops == 0 and a.breaches == 0
    # B: first disposition kept; the follow-up clock restarts with the second; rating latest.
    assert (b.opd, b.disposed_at, b.follow_up_clock_at) == ("dlh", wib(3, 4, 14), wib(3, 6, 10))
    assert (b.hops, b.breaches, b.rating, b.closed_at) == (1, 1, 3, None)
    # C: reopened and closed again: finished at the last close.
    assert (c.category, c.closed_at) == (None, wib(4, 8))
    # D: declined (no OPD), archived.
    assert (d.opd, d.hops, d.archived_at, d.valid) == (None, 1, wib(4, 3, 10), False)
    assert (e.first_follow_up_at, e.received_at) == (None, datetime(2024, 3, 31, 18, tzinfo=UTC))


def test_folding_is_idempotent_and_ignores_what_came_before_the_complaint():
    assert fold(None, "XXXXX-00000", FollowUpPosted(opd="dlh", message="x"), wib(1, 2), 1) is None
    fact = Fact(
        "XXXXX-00000", wib(1, 2), channel="web", report_type="pengaduan", opd="dlh", last_seq=5
    )
    hop = AuthorityDeclined(opd="dlh", reason="bukan", by={"role": "agency"})
    once = fold(fact, fact.complaint_id, hop, wib(1, 3), 6)
    assert (once.hops, once.opd, once.last_seq) == (1, None, 6)
    assert fold(once, fact.complaint_id, hop, wib(1, 3), 6) == once  # redelivered
    assert fold(once, fact.complaint_id, ComplaintRated(stars=4), wib(1, 4), 4) == once


# --- the figures --------------------------------------------------------------------------


def test_overall_figures_of_the_known_history(history):
    f = figures(folded(history), at=LATER, rules=RULES)
    assert (f.received, f.archived, f.finished, f.completion_rate) == (4, 1, 2, Decimal("50.00"))
    # A and C on time, B late, E never followed up and past its deadline.
    assert (f.follow_up_due, f.followed_up_within_deadline) == (4, 2)
    assert f.followed_up_within_deadline_rate == Decimal("50.00")
    # Disposition 2, 0, 1, 1; first follow-up 3, 8, 2; finish 6, 5 (working days).
    assert f.working_days_to_disposition == Durations(count=4, median=1, p90=2)
    assert f.working_days_to_first_follow_up == Durations(count=3, median=3, p90=8)
    assert f.working_days_to_finish == Durations(count=2, median=5, p90=6)
    assert (f.breaches, f.breached_complaints) == (1, 1)
    assert (f.hops, f.hops_per_complaint) == (1, Decimal("0.25"))  # D's hop is archived
    assert asdict(f.ratings) == {
        "count": 2,
        "mean": Decimal("4.00"),
        "distribution": {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1},
    }


def test_a_deadline_not_yet_passed_is_not_judged(history):
    # At noon on 3 April, E (disposed 2 April) still has until the end of 9 April.
    noon = wib(4, 3, 12)
    facts = folded(history, until=noon)
    assert follow_up_deadline(by_id(facts)["EEEEE-0000E"], RULES) == datetime(
        2024, 4, 9, 23, 59, 59, 999999, tzinfo=WIB
    )
    f = figures(facts, at=noon, rules=RULES)
    assert (f.follow_up_due, f.followed_up_within_deadline) == (3, 2)
    assert f.followed_up_within_deadline_rate == Decimal("66.66")  # truncated, not 66.67
    assert figures(facts, at=wib(4, 10), rules=RULES).follow_up_due == 4


def test_groups_by_opd_month_quarter_and_channel(history):
    facts = folded(history)

    def groups(by):
        return {
            g.key: (g.name, g.figures.received, g.figures.finished, g.figures.archived)
            for g in report(facts, at=LATER, rules=RULES, by=by).groups
        }

    assert groups(GroupBy.OPD) == {
        "dlh": ("Dinas Lingkungan Hidup", 2, 1, 0),
        "dpupr": ("Dinas PUPR", 2, 1, 0),
        None: (None, 0, 0, 1),  # D: declined, then archived
    }
    assert list(groups(GroupBy.OPD)) == ["dlh", "dpupr", None]  # the null group last
    # E was received on 31 March in UTC but 1 April in Pontianak: the local month counts.
    assert groups(GroupBy.MONTH) == {"2024-03": (None, 2, 1, 0), "2024-04": (None, 2, 1, 1)}
    assert groups(GroupBy.QUARTER) == {"2024-Q1": (None, 2, 1, 0), "2024-Q2": (None, 2, 1, 1)}
    assert groups(GroupBy.YEAR) == {"2024": (None, 4, 2, 1)}
    assert groups(GroupBy.CHANNEL) == {
        "mobile_app": (None, 1, 1, 0),
        "sms": (None, 1, 0, 0),
        "web": (None, 2, 1, 1),
    }
    assert groups(GroupBy.REPORT_TYPE) == {
        "aspirasi": (None, 1, 1, 0),
        "pengaduan": (None, 3, 1, 1),
    }
    assert groups(GroupBy.CATEGORY) == {
        "jalan": (None, 2, 1, 1),
        "sampah": (None, 1, 0, 0),
        None: (None, 1, 1, 0),
    }


def test_filters_by_current_opd_and_local_received_date(history):
    facts = folded(history)

    def ids(**kw):
        return sorted(f.complaint_id[0] for f in select(facts, RULES, **kw))

    assert ids(opd="dpupr") == ["A", "E"]
    assert ids(date_from=date(2024, 4, 1)) == ["C", "D", "E"]
    assert ids(date_to=date(2024, 3, 31)) == ["A", "B"]
    assert ids(date_from=date(2024, 3, 7), date_to=date(2024, 3, 7)) == ["A"]


def test_nothing_selected_has_no_rates():
    f = figures([], at=LATER, rules=RULES)
    assert (f.received, f.completion_rate, f.followed_up_within_deadline_rate) == (0, None, None)
    assert f.hops_per_complaint is None and f.ratings.mean is None
    assert f.working_days_to_finish == Durations(count=0, median=None, p90=None)


# --- percentiles, means and working days --------------------------------------------------


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([15, 20, 35, 40, 50], 5, 15),
        ([15, 20, 35, 40, 50], 30, 20),
        ([15, 20, 35, 40, 50], 40, 20),
        ([15, 20, 35, 40, 50], 50, 35),
        ([15, 20, 35, 40, 50], 100, 50),
        ([3, 1, 2, 4], 50, 2),  # the lower middle, not 2.5
        (list(range(1, 11)), 90, 9),
        (list(range(1, 12)), 90, 10),  # ceil(9.9) = 10
        ([7], 90, 7),
        ([], 50, None),
    ],
)
def test_nearest_rank_percentile(values, p, expected):
    assert percentile(values, p) == expected


def test_percentile_outside_its_range_is_refused():
    with pytest.raises(ValueError):
        percentile([1], 0)


def test_means_are_truncated():
    assert truncated_mean(13, 3) == Decimal("4.33")
    assert truncated_mean(2, 3) == Decimal("0.66")
    assert truncated_mean(1, 0) is None


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (wib(3, 7, 9), wib(3, 7, 17), 0),  # same day
        (wib(3, 8, 16), wib(3, 12, 8), 1),  # Friday to Tuesday over Nyepi (Monday 11 March)
        (wib(3, 9, 10), wib(3, 12, 10), 0),  # from a Saturday: from Tuesday (Monday is Nyepi)
        (wib(3, 4), wib(3, 15, 10), 8),
        (wib(3, 12), wib(3, 11), 0),  # an end before its start counts 0
        # 17:30 UTC on Thursday is 00:30 on Friday in Pontianak: the local date counts.
        (datetime(2024, 3, 7, 17, 30, tzinfo=UTC), wib(3, 8, 10), 0),
    ],
)
def test_working_days(start, end, days):
    assert working_days(RULES, start, end) == days


def test_collective_leave_is_no_working_day():
    leave = Rules(calendar=WorkingCalendar(collective_leave=[date(2024, 3, 12)]))
    assert working_days(RULES, wib(3, 8), wib(3, 13)) == 2
    assert working_days(leave, wib(3, 8), wib(3, 13)) == 1


def test_group_keys_use_the_local_calendar():
    f = Fact(
        "XXXXX-00000",
        datetime(2024, 12, 31, 17, 30, tzinfo=UTC),
        channel="sms",
        report_type="aspirasi",
    )
    assert [group_key(f, by, RULES) for by in ("month", "quarter", "year")] == [
        "2025-01",
        "2025-Q1",
        "2025",
    ]
    utc = Rules(calendar=WorkingCalendar(timezone="UTC"))
    assert group_key(f, GroupBy.QUARTER, utc) == "2024-Q4"


def test_deadline_uses_the_configured_days():
    f = Fact(
        "XXXXX-00000",
        wib(6, 3),
        channel="web",
        report_type="pengaduan",
        follow_up_clock_at=wib(6, 3, 10),
    )
    assert follow_up_deadline(f, RULES) == datetime(2024, 6, 10, 23, 59, 59, 999999, tzinfo=WIB)
    two = Rules(first_follow_up_days=2)
    assert follow_up_deadline(f, two) - follow_up_deadline(f, RULES) == timedelta(days=-5)
