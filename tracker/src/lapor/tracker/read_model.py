"""The tracker's read model as plain SQL: applying events, and the queries behind the API."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from lapor.services.bulk import BulkWriter
from lapor.services.projections import Applied
from lapor.shared.calendar import WorkingCalendar
from lapor.shared.deadlines import DeadlinePolicy
from lapor.shared.events import (
    ComplaintReceived,
    ComplaintRouted,
    DeadlineStep,
)
from lapor.shared.lifecycle import Lifecycle, Status, evolve
from lapor.shared.words import note
from lapor.tracker import deadlines
from lapor.tracker.deadlines import Clock
from lapor.tracker.timers import Timer, next_timer

OVERDUE = "coalesce(breached OR (clock_paused_at IS NULL AND due_at < now()), false) AS overdue"
"""A complaint is overdue once its step's deadline has passed (and the clock runs)."""


@dataclass
class _Complaint:
    """One complaint's row while a batch of its events is folded in memory."""

    fixed: tuple[Any, ...]
    """The columns set once, at receipt: ``_RECEIVED``."""
    state: Lifecycle
    timer: Timer
    last_seq: int
    updated_at: datetime
    routing: str | None = None
    """The router's latest proposal (``complaint.routed``) as JSON: ``_routing``."""


_FIXED = ("report_type", "channel", "category", "title", "anonymous", "confidential")
_CONTENT = (
    "body",
    "location_address",
    "location_kecamatan",
    "location_kelurahan",
    "location_lat",
    "location_lon",
    "incident_date",
    "suggested_opd",
    "attachment_refs",
)
"""What the complaint says: for the admin and the unit it is disposed to only."""
_RECEIVED = (*_FIXED, *_CONTENT)


def _received(event: ComplaintReceived) -> tuple[Any, ...]:
    """The columns ``_RECEIVED`` of a complaint, from its receipt."""
    where = event.location
    return (
        *(getattr(event, column) for column in _FIXED),
        event.body,
        where.address if where else None,
        where.kecamatan if where else None,
        where.kelurahan if where else None,
        where.lat if where else None,
        where.lon if where else None,
        event.incident_date,
        event.suggested_opd,
        _attachments(event),
    )


def _attachments(event: ComplaintReceived) -> str:
    """The references to the complaint's files (``tracker.complaints.attachment_refs``)."""
    return json.dumps([ref.model_dump(mode="json") for ref in event.attachments])


def _routing(event: ComplaintRouted, at: datetime) -> str:
    """The proposal as the coordinator reads it (``tracker.complaints.routing``)."""
    return json.dumps(
        {
            "opd": event.opd,
            "opd_name": event.opd_name,
            "rule": event.rule,
            "reason": event.reason,
            "confidence": event.confidence,
            "candidates": [c.model_dump() for c in event.candidates],
            "level": event.level,
            "excluded": list(event.excluded),
            "rules_version": event.rules_version,
            "model_version": event.model_version,
            "at": at.isoformat(),
        }
    )


_COMPLAINTS = BulkWriter(
    "tracker.complaints",
    (
        "tracking_id",
        "status",
        "opd",
        "opd_name",
        *_RECEIVED,
        "received_at",
        "updated_at",
        "last_seq",
        "proposed_opd",
        "declined_by",
        "held_from",
        "followed_up",
        "rating",
        "clock_step",
        "clock_started_at",
        "clock_paused_at",
        "clock_paused_days",
        "due_at",
        "warn_at",
        "warned",
        "breached",
        "routing",
    ),
    key=("tracking_id",),
)
_HISTORY = BulkWriter(
    "tracker.history",
    ("seq", "tracking_id", "event_type", "status", "opd", "note", "occurred_at"),
    key=("seq",),
)


class StatusProjection:
    """complaint events -> tracker.complaints (status and deadline clock) and history.

    A batch is applied with three statements whatever its size: read the rows of the
    complaints it touches, fold its events into them in memory (the domain's ``evolve``
    and the timers' ``next_timer``), then upsert those rows and insert the history.
    """

    name = "tracker.status"
    tables = (("tracker.complaints", ("tracking_id",)), ("tracker.history", ("seq",)))
    disjoint_by_complaint = True
    """Each row is one complaint's (a history row is one of its events): a rebuild may
    apply it in partitions by complaint (``lapor.ops.partitions``)."""

    def __init__(self, calendar: WorkingCalendar, policy: DeadlinePolicy) -> None:
        self.calendar = calendar
        self.policy = policy

    async def apply(self, conn: asyncpg.Connection, batch: Sequence[Applied]) -> None:
        ids = list({stored.envelope.complaint_id for stored, _ in batch})
        rows = await conn.fetch(
            "SELECT * FROM tracker.complaints WHERE tracking_id = ANY($1::text[])", ids
        )
        complaints = {row["tracking_id"]: _from_row(row) for row in rows}
        changed: dict[str, _Complaint] = {}
        history: list[tuple[Any, ...]] = []
        for stored, event in batch:
            env = stored.envelope
            cid, at = env.complaint_id, env.occurred_at
            complaint = complaints.get(cid)
            if complaint is not None and complaint.last_seq >= stored.seq:
                continue  # already applied (replay from an older checkpoint)
            after = evolve(complaint.state if complaint else None, event, cid, at)
            if after is None:
                continue
            timer = next_timer(complaint.timer if complaint else Timer(), event, at, self.calendar)
            if complaint is None:
                assert isinstance(event, ComplaintReceived)  # evolve starts with nothing else
                complaint = _Complaint(_received(event), after, timer, stored.seq, at)
                complaints[cid] = complaint
            if isinstance(event, ComplaintRouted):
                complaint.routing = _routing(event, at)
            complaint.state, complaint.timer, complaint.last_seq = after, timer, stored.seq
            complaint.updated_at = at
            changed[cid] = complaint
            history.append((stored.seq, cid, env.type, after.status, after.opd, note(event), at))
        if changed:
            records = [self._record(c) for c in changed.values()]
            await _COMPLAINTS.upsert(conn, records)
        if history:
            await _HISTORY.insert_new(conn, history)

    def _record(self, complaint: _Complaint) -> tuple[Any, ...]:
        """The row in the order of ``_COMPLAINTS.columns``."""
        state, timer = complaint.state, complaint.timer
        clock = timer.clock
        return (
            state.complaint_id,
            state.status,
            state.opd,
            state.opd_name,
            *complaint.fixed,
            state.received_at,
            complaint.updated_at,
            complaint.last_seq,
            state.proposed_opd,
            state.declined_by,
            state.held_from,
            state.followed_up,
            state.rating,
            clock.step if clock else None,
            clock.started_at if clock else None,
            clock.paused_at if clock else None,
            clock.paused_working_days if clock else 0,
            deadlines.due_at(clock, self.policy, self.calendar) if clock else None,
            deadlines.warn_at(clock, self.policy, self.calendar) if clock else None,
            timer.warned,
            timer.breached,
            complaint.routing,
        )


def _from_row(row: asyncpg.Record) -> _Complaint:
    state = Lifecycle(
        complaint_id=row["tracking_id"],
        status=Status(row["status"]),
        received_at=row["received_at"],
        opd=row["opd"],
        proposed_opd=row["proposed_opd"],
        opd_name=row["opd_name"],
        held_from=Status(row["held_from"]) if row["held_from"] else None,
        declined_by=tuple(row["declined_by"]),
        followed_up=row["followed_up"],
        rating=row["rating"],
    )
    fixed = tuple(row[c] for c in _RECEIVED)
    updated_at = row["updated_at"]
    return _Complaint(fixed, state, _timer(row), row["last_seq"], updated_at, row["routing"])


def projection_from_env() -> StatusProjection:
    """The projection as a deployment configures it (for ``lapor replay``)."""
    from lapor.services.settings import DeadlineSettings

    config = DeadlineSettings()
    return StatusProjection(config.calendar(), config.policy())


def _timer(row: asyncpg.Record) -> Timer:
    if row["clock_step"] is None:
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


async def complaint_attachments(
    pool: asyncpg.Pool, tracking_id: str
) -> tuple[str | None, bool, list[dict[str, Any]]] | None:
    """A complaint's unit, whether it is confidential, and its attachments' references;
    None if the tracker has not seen it (yet)."""
    row = await pool.fetchrow(
        "SELECT opd, confidential, attachment_refs FROM tracker.complaints WHERE tracking_id = $1",
        tracking_id,
    )
    if row is None:
        return None
    return row["opd"], row["confidential"], json.loads(row["attachment_refs"])


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


_ID_AFTER = "($6::text IS NULL OR tracking_id > $6)"
_NEWEST_AFTER = """($6::text IS NULL OR (received_at, tracking_id) < (
    SELECT received_at, tracking_id FROM tracker.complaints WHERE tracking_id = $6))"""


async def list_public_complaints(
    pool: asyncpg.Pool,
    *,
    statuses: Sequence[Status] = (),
    categories: Sequence[str] = (),
    opd: str | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
    after: str | None = None,
    limit: int = 50,
    newest: bool = False,
) -> list[dict[str, Any]]:
    """The public listing: non-confidential complaints by tracking ID, or with
    ``newest`` the newest first (keyset pagination: ``after`` is the last ID of the
    previous page), filtered by any of ``statuses``, any of
    ``categories`` (``""`` stands for a complaint without one), the unit, and a period of
    reception ``since`` (inclusive) .. ``before`` (exclusive). Every filter is applied
    here, before the page is cut, so a page is full whenever more matches remain. A
    confidential (Rahasia) complaint is never selected, whatever the filters."""
    rows = await pool.fetch(
        f"""SELECT *, {OVERDUE} FROM tracker.complaints
           WHERE NOT confidential
             AND (cardinality($1::text[]) = 0 OR status = ANY($1::text[]))
             AND (cardinality($2::text[]) = 0 OR coalesce(category, '') = ANY($2::text[]))
             AND ($3::text IS NULL OR opd = $3)
             AND ($4::timestamptz IS NULL OR received_at >= $4)
             AND ($5::timestamptz IS NULL OR received_at < $5)
             AND {_NEWEST_AFTER if newest else _ID_AFTER}
           ORDER BY {"received_at DESC, tracking_id DESC" if newest else "tracking_id"}
           LIMIT $7""",
        [str(s) for s in statuses],
        list(categories),
        opd,
        since,
        before,
        after,
        limit,
    )
    return [dict(r) for r in rows]


_DUE = "coalesce(due_at, 'infinity'::timestamptz)"
"""A complaint whose clock does not run (finished, on hold, archived) comes last."""


async def list_by_due(
    pool: asyncpg.Pool,
    *,
    status: Status | None = None,
    opd: str | None = None,
    due_before: datetime | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Complaints by due date, the earliest first, then by tracking ID (keyset pagination
    on both: ``after`` is the last tracking ID of the previous page). ``due_before``: only
    those whose current step is due by then (an inbox's "nearing or past their
    deadline")."""
    rows = await pool.fetch(
        f"""SELECT *, {OVERDUE} FROM tracker.complaints
           WHERE ($1::text IS NULL OR status = $1)
             AND ($2::text IS NULL OR opd = $2)
             AND ($3::timestamptz IS NULL OR due_at <= $3)
             AND ($4::text IS NULL OR ({_DUE}, tracking_id) > (
                   SELECT {_DUE}, tracking_id FROM tracker.complaints WHERE tracking_id = $4))
           ORDER BY {_DUE}, tracking_id LIMIT $5""",
        status,
        opd,
        due_before,
        after,
        limit,
    )
    return [dict(r) for r in rows]
