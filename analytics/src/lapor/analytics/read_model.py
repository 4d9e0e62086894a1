"""The analytics read model as plain SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from lapor.analytics.domain import Completion
from lapor.analytics.metrics import FOLDED, Fact, fold
from lapor.services.bulk import BulkWriter
from lapor.services.consumers import Applied
from lapor.shared.events import (
    AuthorityDeclined,
    ComplaintArchived,
    ComplaintClosed,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintReopened,
)


@dataclass
class _Counted:
    """A row of ``analytics.complaints`` while a batch is folded into it."""

    tracking_id: str
    opd: str | None
    received_at: datetime
    resolved_at: datetime | None
    archived_at: datetime | None

    def row(self) -> tuple[object, ...]:
        return tuple(getattr(self, column) for column in _COMPLAINTS.columns)


_COMPLAINTS = BulkWriter(
    "analytics.complaints", [f.name for f in fields(_Counted)], key=("tracking_id",)
)
_OPDS = BulkWriter("analytics.opds", ("opd", "name"), key=("opd",))


class CompletionProjection:
    """Counts received and finished complaints per OPD.

    A complaint counts for the OPD it is currently disposed to; it is finished when closed
    (Selesai: confirmed by the reporter or no reply in time) and unfinished again when
    reopened. Archived reports leave the base. Each change is idempotent on its own, so
    applying an event again changes nothing.
    """

    name = "analytics.completion"
    tables = (("analytics.complaints", ("tracking_id",)), ("analytics.opds", ("opd",)))

    async def apply(self, conn: asyncpg.Connection, batch: Sequence[Applied]) -> None:
        ids = list({stored.envelope.complaint_id for stored, _ in batch})
        rows = await conn.fetch(
            "SELECT * FROM analytics.complaints WHERE tracking_id = ANY($1::text[])", ids
        )
        counted = {row["tracking_id"]: _Counted(**dict(row)) for row in rows}
        changed: dict[str, _Counted] = {}
        opds: dict[str, str] = {}
        for stored, event in batch:
            cid, at = stored.envelope.complaint_id, stored.envelope.occurred_at
            row = counted.get(cid)
            if row is None:
                if isinstance(event, ComplaintReceived):
                    counted[cid] = changed[cid] = _Counted(cid, None, at, None, None)
                continue
            match event:
                case ComplaintDisposed(opd=opd, opd_name=name):
                    opds[opd] = name
                    row.opd = opd
                case AuthorityDeclined():
                    row.opd = None
                case ComplaintClosed():
                    row.resolved_at = row.resolved_at or at
                case ComplaintReopened():
                    row.resolved_at = None
                case ComplaintArchived():
                    row.archived_at = row.archived_at or at
                case _:
                    continue
            changed[cid] = row
        if changed:
            await _COMPLAINTS.upsert(conn, [row.row() for row in changed.values()])
        if opds:
            await _OPDS.upsert(conn, list(opds.items()))


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
_FACTS = BulkWriter("analytics.facts", _FACT_COLUMNS, key=("complaint_id",))


class FactsProjection:
    """One row of facts per complaint (``analytics.facts``), folded by ``metrics.fold``: the
    very function that folds the log in memory for ``as_of`` figures. A batch costs one
    read of the facts it touches and one upsert of those it changed."""

    name = "analytics.facts"
    tables = (("analytics.facts", ("complaint_id",)),)

    async def apply(self, conn: asyncpg.Connection, batch: Sequence[Applied]) -> None:
        folded = [(stored, event) for stored, event in batch if isinstance(event, FOLDED)]
        ids = list({stored.envelope.complaint_id for stored, _ in folded})
        if not ids:
            return
        rows = await conn.fetch(
            f"SELECT {', '.join(_FACT_COLUMNS)} FROM analytics.facts"
            " WHERE complaint_id = ANY($1::text[])",
            ids,
        )
        facts = {row["complaint_id"]: _fact(row) for row in rows}
        changed: dict[str, Fact] = {}
        for stored, event in folded:
            cid = stored.envelope.complaint_id
            before = facts.get(cid)
            after = fold(before, cid, event, stored.envelope.occurred_at, stored.seq)
            if after is not None and after != before:
                facts[cid] = changed[cid] = after
        if changed:
            await _FACTS.upsert(conn, [_row(fact) for fact in changed.values()])


def _row(fact: Fact) -> tuple[object, ...]:
    # Not dataclasses.astuple: it deep-copies every value, slow in a loop of thousands.
    return tuple(getattr(fact, name) for name in _FACT_COLUMNS)


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
