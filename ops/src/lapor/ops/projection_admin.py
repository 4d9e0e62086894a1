"""What an operator sees and decides about the read models: how far each one is, the event
one has stopped in front of, and the recorded decision to let it pass.

A read model never leaves an event out by itself (see ``projections.project``). When one
cannot be applied, the fix is usually in code (deploy it, and the projection goes on by
itself at its next attempt); when the event itself is beyond use, an operator records a
decision to skip it, with a reason, and that decision is kept, honoured by every rebuild
and listed by ``lapor replay --verify``.

Everything printed that came from the log or from an error is escaped (``audit.printable``;
an event is shown as ASCII-only JSON): complaint text is citizens' input and must not reach
an operator's terminal as control sequences.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from nats.js import JetStreamContext

from lapor.ops.audit import printable
from lapor.ops.replay import Skip

STATE = """SELECT projection, last_seq, stopped_seq, stopped_subject, stopped_reason,
                  stopped_since, stopped_attempts
           FROM projection_checkpoints"""


@dataclass(frozen=True)
class ProjectionState:
    """A read model's position in the log and, if it is stopped, where and why."""

    projection: str
    last_seq: int
    stopped_seq: int | None
    stopped_subject: str | None
    stopped_reason: str | None
    stopped_since: datetime | None
    stopped_attempts: int

    def describe(self, log_last_seq: int) -> str:
        line = f"{self.projection}: at {self.last_seq} of {log_last_seq}"
        if self.stopped_seq is None:
            return f"{line}, following"
        return (
            f"{line}, STOPPED in front of seq {self.stopped_seq}"
            f" ({printable(self.stopped_subject or '')})"
            f" since {self.stopped_since:%Y-%m-%d %H:%M:%S} after {self.stopped_attempts}"
            f" attempt(s): {printable(self.stopped_reason or '')}"
        )


async def states(conn: asyncpg.Connection) -> list[ProjectionState]:
    rows = await conn.fetch(f"{STATE} ORDER BY projection")
    return [ProjectionState(**dict(r)) for r in rows]


async def state_of(conn: asyncpg.Connection, projection: str) -> ProjectionState:
    row = await conn.fetchrow(f"{STATE} WHERE projection = $1", projection)
    if row is None:
        raise ValueError(f"no projection {projection!r} has run against this database")
    return ProjectionState(**dict(row))


async def stopped_event(js: JetStreamContext, stream: str, state: ProjectionState) -> str:
    """The raw event a projection stopped in front of, for the operator to look at."""
    if state.stopped_seq is None:
        raise ValueError(f"{state.projection} is not stopped")
    msg = await js.get_msg(stream, state.stopped_seq)
    try:
        shown = json.dumps(json.loads(msg.data), ensure_ascii=True, indent=2)
    except ValueError:  # not even JSON: show the bytes
        shown = printable(msg.data.decode("utf-8", errors="backslashreplace"))
    return f"seq {state.stopped_seq}, subject {printable(msg.subject)}:\n{shown}"


async def record_skip(
    conn: asyncpg.Connection, projection: str, seq: int, reason: str, decided_by: str
) -> Skip:
    """Record the decision to leave event ``seq`` out of ``projection``. Only the event
    the projection is stopped in front of may be skipped: a decision is about a failure
    someone has seen, never a blanket one."""
    if not reason.strip() or not decided_by.strip():
        raise ValueError("a skip needs a reason and the name of who decides")
    async with conn.transaction():
        row = await conn.fetchrow(f"{STATE} WHERE projection = $1 FOR UPDATE", projection)
        if row is None or row["stopped_seq"] != seq:
            where = row["stopped_seq"] if row else None
            raise ValueError(
                f"{projection} is not stopped in front of seq {seq} (stopped at: {where});"
                " only the event it stopped at can be skipped"
            )
        decided = await conn.fetchrow(
            """INSERT INTO projection_skips
                   (projection, seq, subject, reason, decided_by, error)
               VALUES ($1, $2, $3, $4, $5, $6)
               RETURNING seq, subject, reason, decided_by, decided_at, error""",
            projection,
            seq,
            row["stopped_subject"],
            reason.strip(),
            decided_by.strip(),
            row["stopped_reason"],
        )
    return Skip(**dict(decided))
