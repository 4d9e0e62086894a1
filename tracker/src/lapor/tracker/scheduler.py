"""Durable deadline timers: warnings, breaches with escalation, and automatic closing.

The timers are not held in memory: they are the clock columns of the read model, which
the log rebuilds. Every few seconds the scheduler looks for due timers and appends the
event. It fires once: the event id is derived from the clock, the append expects the
complaint's last sequence as the read model saw it (a lagging read model waits for the
next round, a racing replica loses), and once the event is projected the timer is marked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import structlog

from lapor.services.commands import Latest, decide_and_append
from lapor.services.eventstore import ConcurrencyError
from lapor.services.observability import DEADLINE_BREACHES
from lapor.services.runtime import Runtime
from lapor.services.tasks import cancel_and_wait
from lapor.shared.envelope import EVENT_NAMESPACE, Envelope, Event, envelope
from lapor.shared.events import (
    Actor,
    ComplaintClosed,
    DeadlineBreached,
    DeadlineStep,
    DeadlineWarned,
)
from lapor.tracker.domain import Status

log = structlog.get_logger(__name__)

Now = Callable[[], datetime]
SCHEDULER = Actor(role="system", name="deadline scheduler")


def utc_now() -> datetime:
    return datetime.now(UTC)


def due_event(row: asyncpg.Record, now: datetime, coordinator: str) -> tuple[str, Event] | None:
    """What a due timer produces: (kind, event), or None if nothing is due after all."""
    step = DeadlineStep(row["clock_step"])
    if row["due_at"] is not None and row["due_at"] <= now:
        if step is DeadlineStep.REPORTER_REPLY:
            if row["status"] != Status.ANSWERED:
                return None
            return "closed", ComplaintClosed(reason="no_reply", by=SCHEDULER)
        breached = DeadlineBreached(
            step=step, due_at=row["due_at"], opd=row["opd"], escalated_to=coordinator
        )
        return "breached", breached
    if not row["warned"] and row["warn_at"] is not None and row["warn_at"] <= now:
        return "warned", DeadlineWarned(step=step, due_at=row["due_at"], opd=row["opd"])
    return None


class DeadlineScheduler:
    def __init__(self, rt: Runtime, coordinator: str, every: float, now: Now = utc_now) -> None:
        self.rt = rt
        self.coordinator = coordinator
        self.every = every
        self.now = now
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="deadline scheduler")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as e:  # a passing failure: the next round tries again
                log.warning("deadline check failed", error=repr(e))
            await asyncio.sleep(self.every)

    async def tick(self) -> int:
        """Append what is due now; returns how many events were appended."""
        now = self.now()
        rows = await self.rt.db.fetch(
            """SELECT tracking_id, status, opd, clock_step, clock_started_at, due_at, warn_at,
                      warned, last_seq
               FROM tracker.complaints
               WHERE clock_step IS NOT NULL AND clock_paused_at IS NULL AND NOT breached
                 AND (due_at <= $1 OR (NOT warned AND warn_at <= $1))
               ORDER BY due_at LIMIT 500""",
            now,
        )
        appended = 0
        for row in rows:
            appended += await self._fire(row, now)
        return appended

    async def _fire(self, row: asyncpg.Record, now: datetime) -> int:
        due = due_event(row, now, self.coordinator)
        if due is None:
            return 0
        kind, event = due
        complaint_id = row["tracking_id"]
        timer_id = f"{complaint_id}:{row['clock_step']}:{row['clock_started_at'].isoformat()}"

        def decide(now: Latest) -> list[Envelope]:
            if now.last is None or now.seq != row["last_seq"]:
                return []  # the read model is behind the log: decide on the next round
            last = now.last.envelope
            return [
                envelope(
                    event,
                    complaint_id=complaint_id,
                    correlation_id=last.correlation_id,
                    causation_id=last.event_id,
                    event_id=uuid.uuid5(EVENT_NAMESPACE, f"{timer_id}:{kind}"),
                )
            ]

        try:
            done = await decide_and_append(self.rt.store, complaint_id, decide)
        except ConcurrencyError:
            return 0  # something happened meanwhile: the next round decides again
        if not done.appended:
            return 0
        if kind == "breached":
            DEADLINE_BREACHES.labels(step=row["clock_step"]).inc()
        log.info("deadline fired", complaint_id=complaint_id, kind=kind, step=row["clock_step"])
        return 1
