"""A complaint's state after one of its events, carried by that event.

Every writer of the log decides on a complaint as it stands: the tracker's actions on its
status, the router on the units that declined it and what they named, the deadline
scheduler on its last event. Reading the complaint's whole history for that costs one
read per event, and on a large log each read of an old event loads a cold block of the
file store (measured: 3 to 8 ms each on a million events). So every event a writer
appends carries, in its ``Lapor-State`` header, the complaint's state *after* it
(:class:`Snapshot`): the complaint's last event alone tells a writer what it needs, and
its sequence is the expected last sequence of the next append. The cost of a decision is
one read, whatever the size of the log.

The header is exact by induction: a writer folds its own events (``after``) into the
snapshot of the last event it read, and the server accepts the append only if that event
is still the complaint's last. An event without the header (written before it existed,
or around ``decide_and_append``), or with another ``VERSION``, makes the reader fold the
whole history once (``fold``), and the next append carries it again. The header is a
``Lapor-*`` header, so the hash chain covers it (see ``lapor.services.eventstore``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from pydantic import TypeAdapter

from lapor.shared import events as ev
from lapor.shared.envelope import Envelope, Event
from lapor.shared.lifecycle import Lifecycle, evolve

STATE_HEADER = "Lapor-State"
VERSION = 1
"""Bumped when what a snapshot holds, or how ``after`` folds it, changes: a snapshot of
another version is not trusted, the history is folded instead."""


@dataclass(frozen=True, slots=True)
class Decline:
    """A "not our authority" (Bukan Wewenang): who declined, whom they named, and why (the
    router also looks for a unit named in the reason)."""

    opd: str
    suggested_opd: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What writers need to know of a complaint, after one of its events."""

    life: Lifecycle
    declines: tuple[Decline, ...] = ()
    """Every decline, oldest first."""
    routed: tuple[str, ...] = ()
    """The event ids of its routing proposals (``complaint.routed``): a trigger the router
    already answered is not answered twice."""
    settled_after: int = 0
    """The sequence of the event before its latest disposition or archiving (0: none): it
    was settled after the event at sequence ``s`` if and only if ``settled_after >= s``."""


def after(snapshot: Snapshot | None, event: Event, env: Envelope, prev_seq: int) -> Snapshot | None:
    """The snapshot after ``event`` (in ``env``), appended after the complaint's event at
    ``prev_seq``; None before the complaint's ``complaint.received``."""
    life = evolve(snapshot.life if snapshot else None, event, env.complaint_id, env.occurred_at)
    if life is None:
        return None
    if snapshot is None:
        return Snapshot(life)
    s = replace(snapshot, life=life) if life is not snapshot.life else snapshot
    if isinstance(event, ev.AuthorityDeclined):
        s = replace(
            s, declines=(*s.declines, Decline(event.opd, event.suggested_opd, event.reason))
        )
    elif isinstance(event, ev.ComplaintRouted):
        s = replace(s, routed=(*s.routed, str(env.event_id)))
    elif isinstance(event, ev.ComplaintDisposed | ev.ComplaintArchived):
        s = replace(s, settled_after=prev_seq)
    return s


def fold(history: Iterable[tuple[int, Event, Envelope]]) -> Snapshot | None:
    """The snapshot after a complaint's events, (sequence, event, envelope) in log order."""
    snapshot, prev = None, 0
    for seq, event, env in history:
        snapshot, prev = after(snapshot, event, env, prev), seq
    return snapshot


_ADAPTER: TypeAdapter[Snapshot] = TypeAdapter(Snapshot)


def headers(snapshot: Snapshot | None) -> dict[str, str]:
    """The header that carries ``snapshot`` (none for no snapshot). ASCII JSON: a header
    value may hold no line break, and a decline's reason is free text."""
    if snapshot is None:
        return {}
    data = _ADAPTER.dump_python(snapshot, mode="json", exclude_defaults=True)
    return {STATE_HEADER: f"{VERSION};{json.dumps(data, separators=(',', ':'))}"}


def from_headers(hdrs: Mapping[str, str] | None) -> Snapshot | None:
    """The snapshot an event carries; None if it carries none, or one of another
    version, or one that does not read (the caller folds the history instead)."""
    hdrs = hdrs or {}
    value = hdrs.get(STATE_HEADER) or next(
        (v for k, v in hdrs.items() if k.lower() == STATE_HEADER.lower()), None
    )
    if not value:
        return None
    version, _, data = value.partition(";")
    if version != str(VERSION):
        return None
    try:
        return _ADAPTER.validate_json(data)
    except ValueError:
        return None
