"""The analytics read model as plain SQL."""

from __future__ import annotations

from dataclasses import astuple, fields

import asyncpg

from lapor.analytics.domain import Completion
from lapor.analytics.metrics import FOLDED, Fact, fold
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


_FACT_COLUMNS = [f.name for f in fields(Fact)]
_UPSERT_FACT = f"""INSERT INTO analytics.facts ({", ".join(_FACT_COLUMNS)})
    VALUES ({", ".join(f"${i}" for i in range(1, len(_FACT_COLUMNS) + 1))})
    ON CONFLICT (complaint_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _FACT_COLUMNS[1:])}"""


class FactsProjection:
    """One row of facts per complaint (``analytics.facts``), folded by ``metrics.fold``: the
    very function that folds the log in memory for ``as_of`` figures."""

    name = "analytics.facts"
    tables = (("analytics.facts", ("complaint_id",)),)

    async def apply(self, conn: asyncpg.Connection, stored: StoredEvent, event: Event) -> None:
        if not isinstance(event, FOLDED):
            return
        complaint_id = stored.envelope.complaint_id
        row = await conn.fetchrow(
            "SELECT * FROM analytics.facts WHERE complaint_id = $1", complaint_id
        )
        before = _fact(row) if row is not None else None
        after = fold(before, complaint_id, event, stored.envelope.occurred_at, stored.seq)
        if after is not None and after != before:
            await conn.execute(_UPSERT_FACT, *astuple(after))


def _fact(row: asyncpg.Record) -> Fact:
    return Fact(**{c: row[c] for c in _FACT_COLUMNS})


async def load_facts(pool: asyncpg.Pool, *, opd: str | None = None) -> tuple[list[Fact], int]:
    """The facts (of one current OPD, if given) and the last log sequence they include,
    read in one snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        seq = await conn.fetchval(
            "SELECT last_seq FROM projection_checkpoints WHERE projection = $1",
            FactsProjection.name,
        )
        rows = await conn.fetch(
            f"""SELECT {", ".join(_FACT_COLUMNS)} FROM analytics.facts
                WHERE $1::text IS NULL OR opd = $1 ORDER BY complaint_id""",
            opd,
        )
    return [_fact(r) for r in rows], seq or 0
