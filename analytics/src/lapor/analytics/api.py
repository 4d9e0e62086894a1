"""Analytics HTTP API: the figures agencies are judged on."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from lapor.analytics import metrics
from lapor.analytics.domain import Completion
from lapor.analytics.log_facts import LogUnavailable, facts_as_of
from lapor.analytics.read_model import completion_by_opd, load_facts
from lapor.services.errors import invalid
from lapor.services.runtime import Runtime, runtime_of
from lapor.shared.events import OPD_CODE

router = APIRouter(tags=["analytics"])


class CompletionFigures(BaseModel):
    received: int
    resolved: int
    completion_rate: Decimal | None = Field(
        description="resolved / received x 100, truncated to two decimals; null if none"
    )

    @classmethod
    def of(cls, c: Completion) -> CompletionFigures:
        return cls(received=c.received, resolved=c.resolved, completion_rate=c.rate)


class OpdCompletion(CompletionFigures):
    opd: str | None = Field(description="null: received, not routed yet")
    opd_name: str | None


class CompletionReport(BaseModel):
    overall: CompletionFigures
    per_opd: list[OpdCompletion]


@router.get("/metrics/completion", response_model=CompletionReport)
async def get_completion(rt: Annotated[Runtime, Depends(runtime_of)]) -> CompletionReport:
    rows = await completion_by_opd(rt.db)
    total = Completion(sum(c.received for *_, c in rows), sum(c.resolved for *_, c in rows))
    return CompletionReport(
        overall=CompletionFigures.of(total),
        per_opd=[
            OpdCompletion(opd=opd, opd_name=name, **CompletionFigures.of(c).model_dump())
            for opd, name, c in rows
        ],
    )


# --- GET /metrics: every figure, grouped, live or as of a past instant ---------------------


class DurationFigures(BaseModel):
    count: int = Field(description="Complaints that reached the step")
    median: int | None = Field(description="Nearest-rank 50th percentile, working days")
    p90: int | None = Field(description="Nearest-rank 90th percentile, working days")


class RatingFigures(BaseModel):
    count: int
    mean: Decimal | None = Field(description="Mean stars, truncated to two decimals")
    distribution: dict[str, int] = Field(description='Rated complaints per star, "1" to "5"')


class Figures(BaseModel):
    """See the README, "Metric definitions", or ``lapor.analytics.metrics``."""

    received: int = Field(description="Valid (not archived) complaints")
    archived: int
    finished: int = Field(description="Closed (Selesai) and not reopened since")
    completion_rate: Decimal | None = Field(description="finished / received x 100, truncated")
    follow_up_due: int = Field(description="First follow-up deadline decided (met or passed)")
    followed_up_within_deadline: int
    followed_up_within_deadline_rate: Decimal | None
    working_days_to_disposition: DurationFigures
    working_days_to_first_follow_up: DurationFigures
    working_days_to_finish: DurationFigures
    breaches: int = Field(description="Deadline breaches (all steps)")
    breached_complaints: int
    hops: int = Field(description="Wrong-door hops (authority declined)")
    hops_per_complaint: Decimal | None
    ratings: RatingFigures

    @classmethod
    def of(cls, f: metrics.Figures) -> Figures:
        return cls.model_validate(dataclasses.asdict(f))


class GroupKey(BaseModel):
    key: str | None = Field(description="The group (OPD code, 2024-03, 2024-Q1, web ...)")
    name: str | None = Field(description="The OPD's name when grouped by OPD")


class GroupFigures(Figures, GroupKey):
    """A group's key and name, then its figures."""


class Reckoning(BaseModel):
    timezone: str
    collective_leave_days: int
    first_follow_up_days: int
    percentile: str = "nearest-rank"


class MetricsReport(BaseModel):
    source: Literal["read_model", "log"]
    as_of: datetime | None = Field(description="The instant asked for; null: now")
    evaluated_at: datetime = Field(description="Instant the deadlines are judged at")
    log_sequence: int = Field(description="Figures include the log up to this sequence")
    by: metrics.GroupBy | None
    opd: str | None
    date_from: date | None = Field(serialization_alias="from")
    date_to: date | None = Field(serialization_alias="to")
    reckoning: Reckoning
    overall: Figures
    groups: list[GroupFigures]


async def rules_of(request: Request) -> metrics.Rules:
    """The app's day-counting rules (built once, from the tracker's LAPOR_DEADLINE_*)."""
    return request.app.state.metrics_rules


@dataclasses.dataclass(frozen=True)
class MetricsQuery:
    """What ``GET /metrics`` and the metrics exports take: grouping, filters, moment."""

    by: metrics.GroupBy | None = None
    opd: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    as_of: datetime | None = None


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""Nothing is asked of before the Unix epoch: the log's clock starts there (JetStream keeps
Unix nanoseconds). It also keeps every date and instant far from the ends of the calendar,
where converting between zones overflows (0001-01-01T00:00+14:00 is in year 0 in UTC)."""


def _past(as_of: datetime) -> datetime:
    """``as_of`` in UTC, if it is an instant between ``EARLIEST`` and now."""
    try:
        at = as_of.astimezone(UTC)
    except OverflowError:
        raise invalid("as_of", "out of range") from None
    if at < EARLIEST:
        raise invalid("as_of", f"must not be before {EARLIEST.isoformat()}")
    if at >= datetime.now(UTC):
        raise invalid("as_of", "must be in the past")
    return at


async def metrics_query(
    by: metrics.GroupBy | None = None,
    opd: Annotated[str | None, Query(pattern=OPD_CODE)] = None,
    date_from: Annotated[
        date | None, Query(alias="from", description="Received on or after (local date)")
    ] = None,
    date_to: Annotated[
        date | None, Query(alias="to", description="Received on or before (local date)")
    ] = None,
    as_of: Annotated[
        AwareDatetime | None,
        Query(description="A past instant (ISO 8601 with offset): figures as they stood then"),
    ] = None,
) -> MetricsQuery:
    """FastAPI dependency: the query parameters of the metrics endpoints, checked here, so
    that a value out of range is a 422 naming it, never a 500 halfway through."""
    for name, day in (("from", date_from), ("to", date_to)):
        if day is not None and day < EARLIEST.date():
            raise invalid(name, f"must not be before {EARLIEST.date()}")
    if date_from is not None and date_to is not None and date_to < date_from:
        raise invalid("to", "must not be before from (both days are included)")
    return MetricsQuery(by, opd, date_from, date_to, None if as_of is None else _past(as_of))


Asked = Annotated[MetricsQuery, Depends(metrics_query)]


async def compute(rt: Runtime, rules: metrics.Rules, q: MetricsQuery) -> MetricsReport:
    """The figures agencies are judged on, overall and per group; live from the read model,
    or, with ``as_of``, recomputed from the log as it stood at that instant."""
    if q.as_of is None:
        facts, seq = await load_facts(rt.db, opd=q.opd)
        at = datetime.now(UTC)
    else:
        at = q.as_of  # in UTC, in the past (metrics_query)
        try:
            facts, seq = await facts_as_of(rt.js, rt.settings.subjects, at)
        except LogUnavailable as e:
            raise HTTPException(503, f"the log cannot be read now: {e}") from e
    chosen = metrics.select(facts, rules, opd=q.opd, date_from=q.date_from, date_to=q.date_to)
    result = metrics.report(chosen, at=at, rules=rules, by=q.by)
    return MetricsReport(
        source="read_model" if q.as_of is None else "log",
        as_of=at if q.as_of is not None else None,
        evaluated_at=at,
        log_sequence=seq,
        by=q.by,
        opd=q.opd,
        date_from=q.date_from,
        date_to=q.date_to,
        reckoning=Reckoning(
            timezone=str(rules.calendar.zone),
            collective_leave_days=len(rules.calendar.collective_leave),
            first_follow_up_days=rules.first_follow_up_days,
        ),
        overall=Figures.of(result.overall),
        groups=[
            GroupFigures(key=g.key, name=g.name, **Figures.of(g.figures).model_dump())
            for g in result.groups
        ],
    )


Rt = Annotated[Runtime, Depends(runtime_of)]
Rules = Annotated[metrics.Rules, Depends(rules_of)]


LOG_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "With as_of: the log cannot be read now; retry"}
}


@router.get(
    "/metrics",
    response_model=MetricsReport,
    response_model_by_alias=True,
    responses=LOG_UNAVAILABLE,
)
async def get_metrics(rt: Rt, rules: Rules, q: Asked) -> MetricsReport:
    """The figures agencies are judged on, overall and per group; live from the read model,
    or, with ``as_of``, recomputed from the log as it stood at that instant."""
    return await compute(rt, rules, q)
