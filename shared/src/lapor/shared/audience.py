"""Who must be told of each event of a complaint (the agency topics): part of what the
event means, so it is said here, beside the lifecycle, for every event type.

The unit a complaint is disposed to gets its content (never the reporter's identity, which
is not in the log), the unit that declines it is told it is taken away, a deadline breach
also goes to the coordinating admin, and the unit that holds a complaint hears everything
else that happens to it. Nothing goes to a unit before a complaint is disposed.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from lapor.shared import events as ev
from lapor.shared.envelope import Event
from lapor.shared.lifecycle import Lifecycle


class Copy(StrEnum):
    EVENT = "event"
    """The event itself."""
    ASSIGNMENT = "assignment"
    """The complaint's content, for the unit it is now disposed to."""


Told = list[tuple[str, Copy]]


def told(before: Lifecycle | None, event: Event) -> Told:
    """(unit, what it gets) for ``event``, given the complaint's life before it."""
    return AUDIENCE[type(event)](before, event)


def _nobody(before: Lifecycle | None, event: Event) -> Told:
    return []


def _holder(before: Lifecycle | None, event: Event) -> Told:
    return [(before.opd, Copy.EVENT)] if before and before.opd else []


def _escalated(before: Lifecycle | None, event: ev.DeadlineBreached) -> Told:
    return [*_holder(before, event), (event.escalated_to, Copy.EVENT)]


AUDIENCE: dict[type[Event], Callable[[Lifecycle | None, Any], Told]] = {
    ev.ComplaintReceived: _nobody,
    ev.ComplaintRouted: _nobody,  # a proposal: not yet any unit's business
    ev.ComplaintDisposed: lambda before, e: [(e.opd, Copy.ASSIGNMENT)],
    ev.AuthorityDeclined: lambda before, e: [(e.opd, Copy.EVENT)],  # taken away from it
    ev.DeadlineBreached: _escalated,
    ev.DeadlineWarned: _holder,
    ev.FollowUpPosted: _holder,
    ev.ComplaintResolved: _holder,
    ev.ReporterReplied: _holder,
    ev.ComplaintRated: _holder,
    ev.ComplaintReopened: _holder,
    ev.ComplaintClosed: _holder,
    ev.ComplaintPutOnHold: _holder,
    ev.ComplaintResumed: _holder,
    ev.ComplaintArchived: _holder,
}
"""Who is told of each event type (every one is named: ``test_lifecycle``)."""
