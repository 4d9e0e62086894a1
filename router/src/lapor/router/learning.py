"""Every human decision in the log is a label: what the router learns from.

A fold over the complaint log (any order of complaints, each complaint's events in log
order) that keeps, per complaint, its text and the unit people ended up holding
authorized:

- the unit that acted on it (a follow-up or a resolution): the strongest label;
- else the unit the coordinator disposed it to by hand (verifikasi), unless that unit then
  declined it (Bukan Wewenang);
- a decline that named another unit, followed by that unit acting, is such a hop: the
  acting unit is the label.

Left out: confidential complaints (Rahasia: their text is not used beyond their case),
archived ones (out of scope for the channel, or spam), and complaints nobody has decided
on yet. Only the title and body are kept, never the reporter's identity or contact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lapor.router.training import Example
from lapor.shared.envelope import Event
from lapor.shared.events import (
    AuthorityDeclined,
    ComplaintArchived,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintResolved,
    FollowUpPosted,
)

WEIGHT = 2.0
"""A label from this deployment's own log counts twice a corpus example."""


@dataclass
class _Seen:
    order: int
    complaint: ComplaintReceived | None = None
    acted: str | None = None
    disposed: str | None = None
    declined: set[str] = field(default_factory=set)
    archived: bool = False


class Labels:
    """Labels gathered from the log; ``add`` every event, then take ``examples()``."""

    def __init__(self) -> None:
        self._seen: dict[object, _Seen] = {}

    def add(self, complaint_id: object, event: Event) -> None:
        seen = self._seen.get(complaint_id)
        if seen is None:
            seen = self._seen[complaint_id] = _Seen(order=len(self._seen))
        match event:
            case ComplaintReceived():
                seen.complaint = event
            case FollowUpPosted() | ComplaintResolved():
                seen.acted = event.opd
            case ComplaintDisposed(automatic=False):
                seen.disposed = event.opd
            case AuthorityDeclined():
                seen.declined.add(event.opd)
                if seen.acted == event.opd:
                    seen.acted = None
            case ComplaintArchived():
                seen.archived = True

    def examples(self) -> list[Example]:
        """One example per decided complaint, in the order the log first named them."""
        out = []
        for seen in sorted(self._seen.values(), key=lambda s: s.order):
            complaint = seen.complaint
            if complaint is None or complaint.confidential or seen.archived:
                continue
            if seen.acted is not None:
                unit, source = seen.acted, "acted"
            elif seen.disposed is not None and seen.disposed not in seen.declined:
                unit, source = seen.disposed, "disposed"
            else:
                continue
            text_only = ComplaintReceived(
                title=complaint.title,
                body=complaint.body,
                category=complaint.category,
                location=complaint.location,
                suggested_opd=complaint.suggested_opd,
            )
            out.append(Example(complaint=text_only, unit=unit, weight=WEIGHT, source=source))
        return out
