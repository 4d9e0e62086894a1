"""The tracker's read model as plain SQL: applying events, and the queries behind the API."""

from __future__ import annotations

from typing import Any

import asyncpg

from lapor.services.eventstore import StoredEvent
from lapor.shared.calendar import WorkingCalendar
from lapor.shared.envelope import Event
from lapor.shared.events import ComplaintReceived, DeadlineStep
from lapor.tracker import deadlines
from lapor.tracker.deadlines import Clock, DeadlinePolicy
from lapor.tracker.domain import ComplaintState, Status, evolve, note_of
from lapor.tracker.timers import Timer, next_timer

OVERDUE = "coalesce(breached OR (clock_paused_at IS NULL AND due_at < now()), false) AS overdue"
"""A complaint is overdue once its step's deadline has passed (and the clock runs)."""


class StatusProjection:
    """complaint events -> tracker.complaints (status and deadline clock) and history."""

    name = "tracker.status"
    tables = (("tracker.complaints", ("tracking_id",)), ("tracker.history", ("seq",)))

    def __init__(self, calendar: WorkingCalendar, policy: DeadlinePolicy) -> None:
        self.calendar = calendar
        self.policy = policy

    async def apply(self, conn: asyncpg.Connection, stored: StoredEvent, event: Event) -> None:
        env = stored.envelope
        row = await conn.fetchrow(
            "SELECT * FROM tracker.complaints WHERE tracking_id = $1", env.complaint_id
        )
        if row is not None and row["last_seq"] >= stored.seq:
            return  # already applied (replay from an older checkpoint)
        after = evolve(_state(row), event, env.complaint_id, env.occurred_at)
        if after is None:
            return
        timer = next_timer(_timer(row), event, env.occurred_at, self.calendar)
        clock = timer.clock
        if isinstance(event, ComplaintReceived):
            await conn.execute(
                """INSERT INTO tracker.complaints (tracking_id, status, report_type, channel,
                       category, title, anonymous, confidential, received_at, updated_at,
                       last_seq)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)
                   ON CONFLICT (tracking_id) DO NOTHING""",
                env.complaint_id,
                after.status,
                event.report_type,
                event.channel,
                event.category,
                event.title,
                event.anonymous,
                event.confidential,
                env.occurred_at,
                stored.seq,
            )
        else:
            await conn.execute(
                """UPDATE tracker.complaints
                   SET status = $2, opd = $3, opd_name = $4, updated_at = $5, last_seq = $6,
                       proposed_opd = $7, declined_by = $8, held_from = $9, followed_up = $10,
                       rating = $11
                   WHERE tracking_id = $1""",
                env.complaint_id,
                after.status,
                after.opd,
                after.opd_name,
                after.updated_at,
                stored.seq,
                after.proposal.opd if after.proposal else None,
                list(after.declined_by),
                after.held_from,
                after.followed_up,
                after.rating,
            )
        await conn.execute(
            """UPDATE tracker.complaints
               SET clock_step = $2, clock_started_at = $3, clock_paused_at = $4,
                   clock_paused_days = $5, due_at = $6, warn_at = $7, warned = $8,
                   breached = $9
               WHERE tracking_id = $1""",
            env.complaint_id,
            clock.step if clock else None,
            clock.started_at if clock else None,
            clock.paused_at if clock else None,
            clock.paused_working_days if clock else 0,
            deadlines.due_at(clock, self.policy, self.calendar) if clock else None,
            deadlines.warn_at(clock, self.policy, self.calendar) if clock else None,
            timer.warned,
            timer.breached,
        )
        await conn.execute(
            """INSERT INTO tracker.history
                   (seq, tracking_id, event_type, status, opd, note, occurred_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (seq) DO NOTHING""",
            stored.seq,
            env.complaint_id,
            env.type,
            after.status,
            after.opd,
            note_of(event),
            env.occurred_at,
        )


def _state(row: asyncpg.Record | None) -> ComplaintState | None:
    """The state as the read model holds it (the proposal only by its OPD: enough here)."""
    if row is None:
        return None
    return ComplaintState(
        complaint_id=row["tracking_id"],
        status=Status(row["status"]),
        received_at=row["received_at"],
        updated_at=row["updated_at"],
        opd=row["opd"],
        opd_name=row["opd_name"],
        held_from=Status(row["held_from"]) if row["held_from"] else None,
        declined_by=tuple(row["declined_by"]),
        followed_up=row["followed_up"],
        rating=row["rating"],
    )


def projection_from_env() -> StatusProjection:
    """The projection as a deployment configures it (for ``lapor replay``)."""
    from lapor.tracker.timers import DeadlineConfig

    config = DeadlineConfig()
    return StatusProjection(config.calendar(), config.policy())


def _timer(row: asyncpg.Record | None) -> Timer:
    if row is None or row["clock_step"] is None:
        return Timer()
    clock = Clock(
        step=DeadlineStep(row["clock_step"]),
        started_at=row["clock_started_at"],
        paused_at=row["clock_paused_at"],
        paused_working_days=row["clock_paused_days"],
    )
    return Timer(clock, warned=row["warned"], breached=row["breached"])


async def complaint_view(pool: asyncpg.Pool, tracking_id: str) -> dict[str, Any] | None:
    """A complaint's status and history, or None if the tracker has not seen it (yet)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT *, {OVERDUE} FROM tracker.complaints WHERE tracking_id = $1", tracking_id
        )
        if row is None:
            return None
        history = await conn.fetch(
            """SELECT event_type, status, opd, note, occurred_at FROM tracker.history
               WHERE tracking_id = $1 ORDER BY seq""",
            tracking_id,
        )
    return {"complaint": dict(row), "history": [dict(h) for h in history]}


async def list_complaints(
    pool: asyncpg.Pool,
    *,
    status: Status | None = None,
    opd: str | None = None,
    after: str | None = None,
    limit: int = 50,
    public: bool = False,
) -> list[dict[str, Any]]:
    """Complaints by tracking ID (keyset pagination). ``public`` leaves out confidential
    ones entirely, so a Rahasia complaint never appears in a public listing."""
    rows = await pool.fetch(
        f"""SELECT *, {OVERDUE} FROM tracker.complaints
           WHERE ($1::text IS NULL OR status = $1)
             AND ($2::text IS NULL OR opd = $2)
             AND ($3::text IS NULL OR tracking_id > $3)
             AND (NOT $4 OR NOT confidential)
           ORDER BY tracking_id LIMIT $5""",
        status,
        opd,
        after,
        public,
        limit,
    )
    return [dict(r) for r in rows]
