"""The analytics read model as plain SQL."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from lapor.analytics.domain import Completion
from lapor.analytics.metrics import FACT_COLUMNS, Fact, fold
from lapor.services.bulk import BulkWriter
from lapor.services.projections import Applied
from lapor.shared.lifecycle import Lifecycle, evolve

_COUNTED = ("opd", "received_at", "closed_at", "archived_at")
"""What analytics.complaints keeps of a complaint's life, after its tracking ID."""
_COMPLAINTS = BulkWriter("analytics.complaints", ("tracking_id", *_COUNTED), key=("tracking_id",))
_OPDS = BulkWriter("analytics.opds", ("opd", "name"), key=("opd",))


def _counted(row: asyncpg.Record) -> Lifecycle:
    """A row of ``analytics.complaints`` as the part of a complaint's life it keeps."""
    return Lifecycle(
        row["tracking_id"],
        row["received_at"],
        opd=row["opd"],
        closed_at=row["closed_at"],
        archived_at=row["archived_at"],
    )


class CompletionProjection:
    """Counts received and finished complaints per OPD.

    A complaint counts for the OPD it is currently disposed to; it is finished when closed
    (Selesai: confirmed by the reporter or no reply in time) and unfinished again when
    reopened. Archived reports leave the base. Each change is idempotent on its own, so
    applying an event again changes nothing.
    """

    name = "analytics.completion"
    tables = (("analytics.complaints", ("tracking_id",)), ("analytics.opds", ("opd",)))
    disjoint_by_complaint = False
    """``analytics.opds`` keeps one row per OPD that every complaint disposed to it
    writes (the name its latest disposal gave): partitions by complaint would race on it
    and the last to commit, not the last in the log, would win. Rebuilt whole."""

    async def apply(self, conn: asyncpg.Connection, batch: Sequence[Applied]) -> None:
        ids = list({stored.envelope.complaint_id for stored, _ in batch})
        rows = await conn.fetch(
            "SELECT * FROM analytics.complaints WHERE tracking_id = ANY($1::text[])", ids
        )
        lives = {row["tracking_id"]: _counted(row) for row in rows}
        changed: dict[str, Lifecycle] = {}
        opds: dict[str, str] = {}
        for stored, event in batch:
            cid = stored.envelope.complaint_id
            before = lives.get(cid)
            after = evolve(before, event, cid, stored.envelope.occurred_at)
            if after is None or after is before:
                continue
            lives[cid] = changed[cid] = after
            if after.opd is not None and after.opd_name is not None:
                opds[after.opd] = after.opd_name
        if changed:
            await _COMPLAINTS.upsert(
                conn,
                [(cid, *(getattr(life, c) for c in _COUNTED)) for cid, life in changed.items()],
            )
        if opds:
            await _OPDS.upsert(conn, list(opds.items()))


async def completion_by_opd(
    pool: asyncpg.Pool,
) -> list[tuple[str | None, str | None, Completion]]:
    """(opd, name, counts) per OPD; OPD None holds complaints not routed yet."""
    rows = await pool.fetch(
        """SELECT c.opd, o.name, count(*) AS received, count(c.closed_at) AS resolved
           FROM analytics.complaints c LEFT JOIN analytics.opds o USING (opd)
           WHERE c.archived_at IS NULL
           GROUP BY c.opd, o.name ORDER BY c.opd NULLS LAST"""
    )
    return [(r["opd"], r["name"], Completion(r["received"], r["resolved"])) for r in rows]


_FACTS = BulkWriter("analytics.facts", FACT_COLUMNS, key=("complaint_id",))


class FactsProjection:
    """One row of facts per complaint (``analytics.facts``), folded by ``metrics.fold``: the
    very function that folds the log in memory for ``as_of`` figures. A batch costs one
    read of the facts it touches and one upsert of those it changed."""

    name = "analytics.facts"
    tables = (("analytics.facts", ("complaint_id",)),)
    disjoint_by_complaint = True
    """One row per complaint: a rebuild may apply it in partitions by complaint."""

    async def apply(self, conn: asyncpg.Connection, batch: Sequence[Applied]) -> None:
        ids = list({stored.envelope.complaint_id for stored, _ in batch})
        rows = await conn.fetch(
            f"SELECT {', '.join(FACT_COLUMNS)} FROM analytics.facts"
            " WHERE complaint_id = ANY($1::text[])",
            ids,
        )
        facts = {row["complaint_id"]: _fact(row) for row in rows}
        changed: dict[str, Fact] = {}
        for stored, event in batch:
            cid = stored.envelope.complaint_id
            before = facts.get(cid)
            after = fold(before, cid, event, stored.envelope.occurred_at, stored.seq)
            if after is not None and after is not before:
                facts[cid] = changed[cid] = after
        if changed:
            await _FACTS.upsert(conn, [_row(fact) for fact in changed.values()])


def _row(fact: Fact) -> tuple[object, ...]:
    # Not dataclasses.astuple: it deep-copies every value, slow in a loop of thousands.
    return tuple(getattr(fact, name) for name in FACT_COLUMNS)


def _fact(row: asyncpg.Record) -> Fact:
    return Fact(**{c: row[c] for c in FACT_COLUMNS})


async def load_facts(pool: asyncpg.Pool, *, opd: str | None = None) -> tuple[list[Fact], int]:
    """The facts (of one current OPD, if given) and the last log sequence they include,
    read in one snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        seq = await conn.fetchval(
            "SELECT last_seq FROM projection_checkpoints WHERE projection = $1",
            FactsProjection.name,
        )
        rows = await conn.fetch(
            f"""SELECT {", ".join(FACT_COLUMNS)} FROM analytics.facts
                WHERE $1::text IS NULL OR opd = $1 ORDER BY complaint_id""",
            opd,
        )
    return [_fact(r) for r in rows], seq or 0
