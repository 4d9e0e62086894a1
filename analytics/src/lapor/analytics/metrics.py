"""Metric definitions: the figures agencies are judged on, written down in one place.

Pure code (no I/O, no clock reads): the live endpoint feeds it the facts of the read model,
the ``as_of`` endpoint the facts folded in memory from the log, so both count alike. The
README's "Metric definitions" section repeats this text for people without the code.

1. Facts: one row per complaint (tracking ID), folded from its events in log order
-----------------------------------------------------------------------------------
Every instant is the event's ``occurred_at`` (when it happened), never when it was read.
The rules are those of ``lapor.shared.lifecycle``, the one meaning of a complaint's events.

=====================  ==================================================================
fact                   rule (event -> change)
=====================  ==================================================================
received_at            ``complaint.received``: its instant. Creates the fact; events of a
channel, report_type,  complaint whose ``complaint.received`` is not (yet) in the log are
category               ignored. Channel, report type and category as the citizen sent them.
opd, opd_name          ``complaint.disposed``: the unit disposed to (current OPD);
                       ``complaint.authority_declined``: none again until the next
                       disposition (the same rule as ``/metrics/completion``).
disposed_at            the first ``complaint.disposed`` (never changed afterwards).
follow_up_clock_at     the latest ``complaint.disposed`` before the first follow-up: the
                       start of the first-follow-up deadline (as the tracker starts it).
first_follow_up_at     the first ``complaint.followed_up`` or ``complaint.resolved`` (the
                       unit's answer counts as a follow-up).
closed_at              ``complaint.closed`` (Selesai), unless already set;
                       ``complaint.reopened`` clears it (so it is the last close).
archived_at            the first ``complaint.archived`` (Arsip).
hops                   the number of ``complaint.authority_declined`` ("wrong-door hops").
breaches               the number of ``complaint.deadline_breached`` (any step).
rating                 the stars of the latest ``complaint.rated`` (1-5).
last_seq               the log sequence of the last event that changed the complaint's life
                       (makes folding idempotent).
=====================  ==================================================================

2. Which complaints
-------------------
* **Filters** (before grouping): ``opd`` = the complaint's current OPD; ``from`` / ``to`` =
  the local date of ``received_at`` (deployment zone, default Asia/Pontianak), both ends
  inclusive.
* **Groups** (``by``): ``opd`` = current OPD (null: not disposed now); ``month`` (``YYYY-MM``),
  ``quarter`` (``YYYY-Qn``), ``year`` (``YYYY``) of the local date of ``received_at``;
  ``channel``; ``report_type``; ``category`` (null: none given). ``overall`` is all selected
  complaints. An OPD group's ``name`` is the ``opd_name`` of its complaint with the highest
  ``last_seq`` (a label, not a figure).
* **Valid complaints**: those not archived. Every figure below except ``archived`` counts
  valid complaints only: an archived report is not a valid complaint.

3. Figures
----------
=================================  ========================================================
figure                             definition
=================================  ========================================================
received                           number of valid complaints.
archived                           number of archived complaints (not in ``received``).
finished                           valid complaints with ``closed_at``.
completion_rate                    finished / received x 100, truncated (never rounded up)
                                   to two decimals: 904 / 942 = 95.96. Null if received = 0.
follow_up_due                      valid complaints with ``follow_up_clock_at`` whose first
                                   follow-up deadline is decided at the evaluation instant
                                   T: followed up, or T is past the deadline. Deadline =
                                   ``add_working_days(follow_up_clock_at, 5)``: the end
                                   (23:59:59.999999 local) of the 5th working day after the
                                   clock started (5: ``first_follow_up_days``). Time on hold
                                   is not deducted (the tracker's ``breaches`` do deduct it).
followed_up_within_deadline        of ``follow_up_due``, those with
                                   ``first_follow_up_at <= deadline``.
followed_up_within_deadline_rate   followed_up_within_deadline / follow_up_due x 100,
                                   truncated to two decimals. Null if follow_up_due = 0.
working_days_to_disposition        over valid complaints with ``disposed_at``:
                                   ``working_days_between(received_at, disposed_at)``;
                                   ``count``, ``median`` and ``p90`` of those numbers.
working_days_to_first_follow_up    same, ``received_at`` to ``first_follow_up_at``.
working_days_to_finish             same over finished complaints, ``received_at`` to
                                   ``closed_at``.
breaches                           sum of ``breaches`` over valid complaints.
breached_complaints                valid complaints with at least one breach.
hops                               sum of ``hops`` over valid complaints.
hops_per_complaint                 hops / received, truncated to two decimals. Null if
                                   received = 0.
ratings.count                      valid complaints with a ``rating``.
ratings.mean                       sum of their stars / ratings.count, truncated to two
                                   decimals. Null if none.
ratings.distribution               number of rated valid complaints per star, "1" to "5".
=================================  ========================================================

* **Working days** (``lapor.shared.calendar.WorkingCalendar``, the tracker's calendar):
  Monday to Friday that are neither an Indonesian public holiday nor a configured
  collective-leave day (cuti bersama), on the deployment's local dates. From ``start`` to
  ``end``: take the local date of ``start``, move it forward to a working day if it is not
  one, and count the working days *after* it up to and including the local date of
  ``end``. Same day = 0; Friday to Monday = 1. (An end before its start, which only
  disagreeing clocks could produce, counts 0.)
* **Percentiles, nearest-rank**: sort the n numbers ascending, x1 <= ... <= xn; the p-th
  percentile is x_k with k = ceil(p x n / 100). ``median`` = 50th (the lower middle one when
  n is even), ``p90`` = 90th. Null when n = 0. Always a whole number of working days.
* **Evaluation instant T**: the live figures use the time of the request; ``as_of`` figures
  use ``as_of`` itself, and fold only the events the log had stored at or before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

from lapor.analytics.domain import completion_rate
from lapor.shared.calendar import WorkingCalendar
from lapor.shared.deadlines import DeadlinePolicy
from lapor.shared.envelope import Event
from lapor.shared.events import ComplaintReceived
from lapor.shared.lifecycle import Lifecycle, evolve

STARS = ("1", "2", "3", "4", "5")

# ---------------------------------------------------------------------------------------
# 1. Facts
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Fact(Lifecycle):
    """What the metrics need to know about one complaint (see the module docstring): its
    life (``lapor.shared.lifecycle``, the one meaning of its events), how it came in, and
    how far the log has been folded into it.

    The read model keeps ``FACT_COLUMNS`` only; the rest of the life (status, holds, who
    declined) is not kept by analytics and is not to be read from a fact."""

    channel: str
    report_type: str
    category: str | None = None
    last_seq: int = 0

    @property
    def valid(self) -> bool:
        return self.archived_at is None


FACT_COLUMNS = (
    "complaint_id",
    "received_at",
    "channel",
    "report_type",
    "category",
    "opd",
    "opd_name",
    "disposed_at",
    "follow_up_clock_at",
    "first_follow_up_at",
    "closed_at",
    "archived_at",
    "hops",
    "breaches",
    "rating",
    "last_seq",
)
"""The facts analytics keeps (``analytics.facts``): what the figures are made of."""


def fold(fact: Fact | None, complaint_id: str, event: Event, at: datetime, seq: int) -> Fact | None:
    """The complaint's fact after ``event`` (which happened at ``at``, log sequence ``seq``):
    ``fact`` itself if the event changes nothing.

    ``fact`` is None before the complaint's ``complaint.received``. An event at or below the
    fact's ``last_seq`` was folded already and changes nothing (redeliveries are harmless).
    """
    if fact is None:
        if not isinstance(event, ComplaintReceived):
            return None
        return Fact(
            complaint_id=complaint_id,
            received_at=at,
            channel=str(event.channel),
            report_type=str(event.report_type),
            category=event.category,
            last_seq=seq,
        )
    if seq <= fact.last_seq:
        return fact
    return evolve(fact, event, complaint_id, at, last_seq=seq)


def facts_from(events: Iterable[tuple[str, Event, datetime, int]]) -> list[Fact]:
    """Fold ``(complaint_id, event, occurred_at, log sequence)`` in log order into facts,
    ordered by complaint ID."""
    facts: dict[str, Fact] = {}
    for complaint_id, event, at, seq in events:
        fact = fold(facts.get(complaint_id), complaint_id, event, at, seq)
        if fact is not None:
            facts[complaint_id] = fact
    return [facts[k] for k in sorted(facts)]


# ---------------------------------------------------------------------------------------
# 2. Which complaints
# ---------------------------------------------------------------------------------------


class GroupBy(StrEnum):
    OPD = "opd"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    CHANNEL = "channel"
    REPORT_TYPE = "report_type"
    CATEGORY = "category"


@dataclass(frozen=True)
class Rules:
    """How days are counted: the deployment's calendar and the follow-up deadline."""

    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    first_follow_up_days: int = DeadlinePolicy().first_follow_up_days

    def local_date(self, at: datetime) -> date:
        return self.calendar.local_date(at)


def select(
    facts: Iterable[Fact],
    rules: Rules,
    *,
    opd: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> list[Fact]:
    """The facts passing the filters: current OPD; local received date, both ends inclusive."""
    chosen = []
    for f in facts:
        if opd is not None and f.opd != opd:
            continue
        if date_from is not None or date_to is not None:
            day = rules.local_date(f.received_at)
            if (date_from is not None and day < date_from) or (
                date_to is not None and day > date_to
            ):
                continue
        chosen.append(f)
    return chosen


def group_key(fact: Fact, by: GroupBy, rules: Rules) -> str | None:
    """The group ``fact`` belongs to when grouping ``by``."""
    match GroupBy(by):
        case GroupBy.OPD:
            return fact.opd
        case GroupBy.CHANNEL:
            return fact.channel
        case GroupBy.REPORT_TYPE:
            return fact.report_type
        case GroupBy.CATEGORY:
            return fact.category
    day = rules.local_date(fact.received_at)
    match GroupBy(by):
        case GroupBy.MONTH:
            return f"{day.year:04d}-{day.month:02d}"
        case GroupBy.QUARTER:
            return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year:04d}"


# ---------------------------------------------------------------------------------------
# 3. Figures
# ---------------------------------------------------------------------------------------


def percentile(values: Sequence[int], p: int) -> int | None:
    """Nearest-rank percentile: x_k of the ascending values, k = ceil(p x n / 100)."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    if not values:
        return None
    ordered = sorted(values)
    k = -(-p * len(ordered) // 100)  # ceil, in integers
    return ordered[k - 1]


def truncated_mean(total: int, count: int) -> Decimal | None:
    """total / count truncated (never rounded up) to two decimals; None if count is 0."""
    if count == 0:
        return None
    return (Decimal(total) / Decimal(count)).quantize(Decimal("0.01"), rounding=ROUND_DOWN)


def working_days(rules: Rules, start: datetime, end: datetime) -> int:
    """Working days from ``start`` to ``end`` (``WorkingCalendar.working_days_between``)."""
    return rules.calendar.working_days_between(start, max(start, end))


def follow_up_deadline(fact: Fact, rules: Rules) -> datetime | None:
    """The last instant the first follow-up is on time; None if no clock was started."""
    if fact.follow_up_clock_at is None:
        return None
    return rules.calendar.add_working_days(fact.follow_up_clock_at, rules.first_follow_up_days)


@dataclass(frozen=True)
class Durations:
    """Working days of one step: how many complaints, median and 90th percentile."""

    count: int
    median: int | None
    p90: int | None

    @classmethod
    def of(cls, days: Sequence[int]) -> Durations:
        return cls(count=len(days), median=percentile(days, 50), p90=percentile(days, 90))


@dataclass(frozen=True)
class Ratings:
    count: int
    mean: Decimal | None
    distribution: dict[str, int]


@dataclass(frozen=True)
class Figures:
    """Every figure of one group (see the module docstring for each definition)."""

    received: int
    archived: int
    finished: int
    completion_rate: Decimal | None
    follow_up_due: int
    followed_up_within_deadline: int
    followed_up_within_deadline_rate: Decimal | None
    working_days_to_disposition: Durations
    working_days_to_first_follow_up: Durations
    working_days_to_finish: Durations
    breaches: int
    breached_complaints: int
    hops: int
    hops_per_complaint: Decimal | None
    ratings: Ratings


def figures(facts: Iterable[Fact], *, at: datetime, rules: Rules) -> Figures:
    """The figures of a group of complaints, evaluated at the instant ``at``."""
    facts = list(facts)
    valid = [f for f in facts if f.valid]
    finished = [f for f in valid if f.closed_at is not None]

    due = within = 0
    for f in valid:
        deadline = follow_up_deadline(f, rules)
        if deadline is None:
            continue
        if f.first_follow_up_at is not None:
            due += 1
            within += f.first_follow_up_at <= deadline
        elif at > deadline:
            due += 1

    def days_to(instant: Callable[[Fact], datetime | None]) -> Durations:
        return Durations.of(
            [
                working_days(rules, f.received_at, end)
                for f in valid
                if (end := instant(f)) is not None
            ]
        )

    rated = [f.rating for f in valid if f.rating is not None]
    hops = sum(f.hops for f in valid)
    return Figures(
        received=len(valid),
        archived=len(facts) - len(valid),
        finished=len(finished),
        completion_rate=completion_rate(len(valid), len(finished)),
        follow_up_due=due,
        followed_up_within_deadline=within,
        followed_up_within_deadline_rate=completion_rate(due, within),
        working_days_to_disposition=days_to(lambda f: f.disposed_at),
        working_days_to_first_follow_up=days_to(lambda f: f.first_follow_up_at),
        working_days_to_finish=days_to(lambda f: f.closed_at),
        breaches=sum(f.breaches for f in valid),
        breached_complaints=sum(1 for f in valid if f.breaches > 0),
        hops=hops,
        hops_per_complaint=truncated_mean(hops, len(valid)),
        ratings=Ratings(
            count=len(rated),
            mean=truncated_mean(sum(rated), len(rated)),
            distribution={s: sum(1 for r in rated if str(r) == s) for s in STARS},
        ),
    )


@dataclass(frozen=True)
class Group:
    key: str | None
    name: str | None
    figures: Figures


@dataclass(frozen=True)
class Report:
    overall: Figures
    groups: list[Group]


def report(
    facts: Iterable[Fact], *, at: datetime, rules: Rules, by: GroupBy | None = None
) -> Report:
    """Overall figures and, if ``by`` is given, the figures of each group (ordered by key,
    the null group last)."""
    facts = list(facts)
    groups: list[Group] = []
    if by is not None:
        members: dict[str | None, list[Fact]] = {}
        for f in facts:
            members.setdefault(group_key(f, by, rules), []).append(f)
        for key in sorted(members, key=lambda k: (k is None, k or "")):
            name = None
            if by == GroupBy.OPD and key is not None:
                name = max(members[key], key=lambda f: f.last_seq).opd_name
            groups.append(Group(key, name, figures(members[key], at=at, rules=rules)))
    return Report(overall=figures(facts, at=at, rules=rules), groups=groups)
