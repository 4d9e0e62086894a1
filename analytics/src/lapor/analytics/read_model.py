"""The analytics read model as plain SQL."""

from __future__ import annotations

import asyncpg

from lapor.analytics.domain import Completion
from lapor.services.eventstore import StoredEvent
from lapor.shared.envelope import Event
from lapor.shared.events import (
    AuthorityDeclined,
    ComplaintArchived,
    ComplaintClosed,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintReopened,
)


class CompletionProjection:
    """Counts received and finished complaints per OPD.

    A complaint counts for the OPD it is currently disposed to; it is finished when closed
    (Selesai: confirmed by the reporter or no reply in time) and unfinished again when
    reopened. Archived reports leave the base. Each statement is idempotent on its own.
    """

    name = "analytics.completion"
    tables = (("analytics.complaints", ("tracking_id",)), ("analytics.opds", ("opd",)))

    async def apply(self, conn: asyncpg.Connection, stored: StoredEvent, event: Event) -> None:
        complaint_id, at = stored.envelope.complaint_id, stored.envelope.occurred_at
        match event:
            case ComplaintReceived():
                await conn.execute(
                    """INSERT INTO analytics.complaints (tracking_id, received_at)
                       VALUES ($1, $2) ON CONFLICT (tracking_id) DO NOTHING""",
                    complaint_id,
                    at,
                )
            case ComplaintDisposed(opd=opd, opd_name=name):
                await conn.execute(
                    """INSERT INTO analytics.opds (opd, name) VALUES ($1, $2)
                       ON CONFLICT (opd) DO UPDATE SET name = EXCLUDED.name""",
                    opd,
                    name,
                )
                await _set(conn, complaint_id, "opd = $2", opd)
            case AuthorityDeclined():
                await _set(conn, complaint_id, "opd = NULL")
            case ComplaintClosed():
                await _set(conn, complaint_id, "resolved_at = coalesce(resolved_at, $2)", at)
            case ComplaintReopened():
                await _set(conn, complaint_id, "resolved_at = NULL")
            case ComplaintArchived():
                await _set(conn, complaint_id, "archived_at = coalesce(archived_at, $2)", at)


async def _set(conn: asyncpg.Connection, complaint_id: str, assignment: str, *args: object) -> None:
    await conn.execute(
        f"UPDATE analytics.complaints SET {assignment} WHERE tracking_id = $1",
        complaint_id,
        *args,
    )


async def completion_by_opd(
    pool: asyncpg.Pool,
) -> list[tuple[str | None, str | None, Completion]]:
    """(opd, name, counts) per OPD; OPD None holds complaints not routed yet."""
    rows = await pool.fetch(
        """SELECT c.opd, o.name, count(*) AS received, count(c.resolved_at) AS resolved
           FROM analytics.complaints c LEFT JOIN analytics.opds o USING (opd)
           WHERE c.archived_at IS NULL
           GROUP BY c.opd, o.name ORDER BY c.opd NULLS LAST"""
    )
    return [(r["opd"], r["name"], Completion(r["received"], r["resolved"])) for r in rows]
