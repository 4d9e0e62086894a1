"""The tracker's read model as plain SQL: applying events, and the queries behind the API."""

from __future__ import annotations

from typing import Any

import asyncpg

from lapor.services.eventstore import StoredEvent
from lapor.shared.envelope import Event
from lapor.shared.events import (
    ComplaintReceived,
    ComplaintResolved,
    ComplaintRouted,
    FollowUpPosted,
)
from lapor.tracker.domain import ComplaintState, Status, evolve


class StatusProjection:
    """complaint events -> tracker.complaints and tracker.history."""

    name = "tracker.status"

    async def apply(self, conn: asyncpg.Connection, stored: StoredEvent, event: Event) -> None:
        env = stored.envelope
        row = await conn.fetchrow(
            "SELECT * FROM tracker.complaints WHERE tracking_id = $1", env.complaint_id
        )
        if row is not None and row["last_seq"] >= stored.seq:
            return  # already applied (replay from an older checkpoint)
        before = _state(row)
        after = evolve(before, event, env.complaint_id, env.occurred_at)
        if after is None:
            return
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
                   SET status = $2, opd = $3, opd_name = $4, updated_at = $5, last_seq = $6
                   WHERE tracking_id = $1""",
                env.complaint_id,
                after.status,
                after.opd,
                after.opd_name,
                after.updated_at,
                stored.seq,
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
            _note(event),
            env.occurred_at,
        )


def _state(row: asyncpg.Record | None) -> ComplaintState | None:
    if row is None:
        return None
    return ComplaintState(
        complaint_id=row["tracking_id"],
        status=Status(row["status"]),
        opd=row["opd"],
        opd_name=row["opd_name"],
        received_at=row["received_at"],
        updated_at=row["updated_at"],
    )


def _note(event: Event) -> str | None:
    match event:
        case ComplaintRouted(reason=reason):
            return reason
        case FollowUpPosted(message=message):
            return message
        case ComplaintResolved(resolution=resolution):
            return resolution
    return None


async def complaint_view(pool: asyncpg.Pool, tracking_id: str) -> dict[str, Any] | None:
    """A complaint's status and history, or None if the tracker has not seen it (yet)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM tracker.complaints WHERE tracking_id = $1", tracking_id
        )
        if row is None:
            return None
        history = await conn.fetch(
            """SELECT event_type, status, opd, note, occurred_at FROM tracker.history
               WHERE tracking_id = $1 ORDER BY seq""",
            tracking_id,
        )
    return {"complaint": dict(row), "history": [dict(h) for h in history]}
