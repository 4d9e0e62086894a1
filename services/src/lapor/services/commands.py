"""Changing a complaint: read what it is, decide, append with the sequence that was read.

Every writer of the log goes through ``decide_and_append``: the tracker's actions, the
router's routing, the deadline scheduler. Each append expects the complaint's last
sequence as the decision saw it, so two writers that race cannot both win: the one that
loses reads again and decides again (``attempts``), or hears of the conflict
(``ConcurrencyError``) when a person's action must not be retried behind their back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from lapor.services.eventstore import ConcurrencyError, EventStore, StoredEvent
from lapor.shared.envelope import Envelope

Decide = Callable[[list[StoredEvent]], Sequence[Envelope]]
"""Given the complaint's events, the envelopes to append (none: nothing to do); or raise."""
Load = Callable[[], Awaitable[list[StoredEvent]]]


@dataclass(frozen=True)
class Appended:
    """What a decision was made on, and the events it appended with their sequences."""

    history: list[StoredEvent]
    appended: list[StoredEvent]


async def decide_and_append(
    store: EventStore,
    complaint_id: str,
    decide: Decide,
    *,
    attempts: int = 1,
    load: Load | None = None,
) -> Appended:
    """Load the complaint (``load``: all its events by default; a writer that needs less,
    such as its last event, says so), let ``decide`` choose what to append, and append it
    in order, each event expecting the sequence of the one before. When another writer
    came first, start again, ``attempts`` times in all; then ``ConcurrencyError``."""
    read = load or (lambda: store.load(complaint_id))
    for attempt in range(1, attempts + 1):
        history = await read()
        last = history[-1].seq if history else 0
        appended: list[StoredEvent] = []
        try:
            for env in decide(history):
                last = await store.append(env, expected_last_seq=last)
                appended.append(
                    StoredEvent(last, store.subjects.complaint(complaint_id, env.type), env)
                )
        except ConcurrencyError:
            if attempt == attempts:
                raise
            continue
        return Appended(history, appended)
    raise ValueError("attempts must be at least 1")
