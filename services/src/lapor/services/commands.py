"""Changing a complaint: read what it is, decide, append with the sequence that was read.

Every writer of the log goes through ``decide_and_append``: the tracker's actions, the
router's routing, the deadline scheduler. A writer decides on the complaint as it stands
(``Latest``: its last event and the snapshot that event carries, see
``lapor.shared.snapshot``), so a decision costs one read of the log however long the log
and the complaint's history. Each append carries the snapshot after it and expects the
complaint's last sequence as the decision saw it, so two writers that race cannot both
win: the one that loses reads again and decides again (``attempts``), or hears of the
conflict (``ConcurrencyError``) when a person's action must not be retried behind their
back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from lapor.services.eventstore import ConcurrencyError, EventStore, StoredEvent
from lapor.shared import snapshot as snapshots
from lapor.shared.envelope import Envelope, decode
from lapor.shared.snapshot import Snapshot

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Latest:
    """A complaint as a writer sees it: its last event (None: no events yet) and its state
    after that event (None before its ``complaint.received``)."""

    last: StoredEvent | None
    snapshot: Snapshot | None

    @property
    def seq(self) -> int:
        """The sequence the next append expects (0: the complaint has no events)."""
        return self.last.seq if self.last else 0


async def latest(store: EventStore, complaint_id: str) -> Latest:
    """The complaint's last event and its snapshot: one read, unless that event carries no
    snapshot (written before snapshots, or around ``decide_and_append``); then its whole
    history is folded, once: the next append carries the snapshot again."""
    last = await store.last(complaint_id)
    if last is None:
        return Latest(None, None)
    snapshot = snapshots.from_headers(last.headers)
    if snapshot is not None:
        return Latest(last, snapshot)
    history = await store.load(complaint_id)
    if not history:
        return Latest(None, None)
    log.info("snapshot folded from history", complaint_id=complaint_id, events=len(history))
    folded = snapshots.fold((s.seq, decode(s.envelope), s.envelope) for s in history)
    return Latest(history[-1], folded)


Decide = Callable[[Latest], Sequence[Envelope]]
"""Given the complaint as it stands, the envelopes to append (none: nothing to do); or
raise."""
Load = Callable[[], Awaitable[Latest]]


@dataclass(frozen=True)
class Appended:
    """What a decision was made on, the events it appended with their sequences, and the
    complaint's snapshot after them."""

    before: Latest
    appended: list[StoredEvent]
    snapshot: Snapshot | None


async def decide_and_append(
    store: EventStore,
    complaint_id: str,
    decide: Decide,
    *,
    attempts: int = 1,
    load: Load | None = None,
    first: Latest | None = None,
) -> Appended:
    """Read the complaint (``load``: ``latest`` by default), let ``decide`` choose what to
    append, and append it in order, each event expecting the sequence of the one before
    and carrying the snapshot after it. When another writer came first, start again,
    ``attempts`` times in all; then ``ConcurrencyError``.

    ``first``: the complaint as the writer already knows it (a consumer's trigger and the
    snapshot it carries), decided on without a read in the first attempt; if the
    complaint has moved on since, that append is refused and the next attempt reads."""
    read = load or (lambda: latest(store, complaint_id))
    if first is not None and first.last is not None:
        store.holds(first.last)
    for attempt in range(1, attempts + 1):
        before = first if attempt == 1 and first is not None else await read()
        last, snapshot = before.seq, before.snapshot
        appended: list[StoredEvent] = []
        try:
            for env in decide(before):
                snapshot = snapshots.after(snapshot, decode(env), env, last)
                carried = snapshots.headers(snapshot)
                last = await store.append(env, expected_last_seq=last, headers=carried)
                subject = store.subjects.complaint(complaint_id, env.type)
                appended.append(StoredEvent(last, subject, env, carried))
        except ConcurrencyError:
            if attempt == attempts:
                raise
            continue
        return Appended(before, appended, snapshot)
    raise ValueError("attempts must be at least 1")
