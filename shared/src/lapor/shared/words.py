"""Each event of a complaint in words, said once for every reader:

* ``summary``: what happened, in one line an auditor reads (``lapor audit history``);
* ``note``: what a complaint's history shows people (the tracker's status page): the
  unit's and the reporter's own words where there are some, plainly put where not.

Every event type is given its words (``test_words``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_jsonable_python

from lapor.shared import events as ev
from lapor.shared.envelope import Event
from lapor.shared.registry import load_registry

ARCHIVE_GUIDANCE = {
    ev.ArchiveReason.WRONG_FORMAT: "The report could not be read; please submit it again.",
    ev.ArchiveReason.TOO_GENERAL: "Please say what happened, where and when, and submit again.",
    ev.ArchiveReason.NOT_PUBLIC_SERVICE: "This channel handles complaints about public services.",
    ev.ArchiveReason.DUPLICATE: "The same report is already being handled.",
    ev.ArchiveReason.ABUSIVE: "The report broke the channel's rules of conduct.",
    ev.ArchiveReason.LEGAL_DISPUTE: "Legal disputes are decided by the courts (pengadilan).",
    ev.ArchiveReason.CRIMINAL_REPORT: "Report crimes to the police (SPKT Polri, call 110).",
    ev.ArchiveReason.CORRUPTION_CASE: "Report corruption to the KPK (kws.kpk.go.id) or the "
    "Attorney General's office.",
}
"""Where the citizen can go instead, for each reason a report is archived (Arsip)."""


@dataclass(frozen=True)
class Words:
    summary: Callable[[Any], str]
    note: Callable[[Any], str | None]


def summary(event: Event) -> str:
    return WORDS[type(event)].summary(event)


def note(event: Event) -> str | None:
    return WORDS[type(event)].note(event)


def short(text: str | None, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _nothing(event: Event) -> None:
    return None


def _json(value: Any) -> Any:
    """As the log holds it (an instant as ``...Z``): what an auditor compares with."""
    return to_jsonable_python(value)


def _step(event: ev.DeadlineWarned | ev.DeadlineBreached) -> str:
    return event.step.value.replace("_", " ")


def _rated(event: ev.ComplaintRated, text: Callable[[str], str]) -> str:
    return f"{event.stars}/5" + (f": {text(event.comment)}" if event.comment else "")


def _unit_name(code: str) -> str:
    """A unit's name in the OPD registry; its code when the registry does not know it (any
    more: the log keeps what the registry of its day accepted)."""
    unit = load_registry().get(code)
    return unit.name if unit is not None else code


def _suggesting(event: ev.AuthorityDeclined, before: str = "") -> str:
    """The unit the declining officer named as authorized, in words; nothing if none."""
    if event.suggested_opd is None:
        return ""
    return f"{before}suggests {_unit_name(event.suggested_opd)}"


def _closed(event: ev.ComplaintClosed) -> str:
    if event.reason == "confirmed_by_reporter":
        return "Closed: the reporter confirmed"
    return "Closed: no reply from the reporter within the reply period"


WORDS: dict[type[Event], Words] = {
    ev.ComplaintReceived: Words(
        lambda e: f"received ({e.report_type}, {e.channel}): {short(e.title)}", _nothing
    ),
    ev.ComplaintRouted: Words(
        lambda e: f"routed to {e.opd} by rule {e.rule} (confidence {e.confidence:.2f})",
        lambda e: f"Proposed: {e.opd_name}. {e.reason}",
    ),
    ev.ComplaintDisposed: Words(
        lambda e: f"disposed to {e.opd}" + (" automatically" if e.automatic else ""),
        lambda e: f"Disposed to {e.opd_name}" + (" (automatically)" if e.automatic else ""),
    ),
    ev.ComplaintArchived: Words(
        lambda e: f"archived: {e.reason}",
        lambda e: ARCHIVE_GUIDANCE[e.reason] + (f" {e.note}" if e.note else ""),
    ),
    ev.ComplaintPutOnHold: Words(lambda e: f"put on hold: {short(e.reason)}", lambda e: e.reason),
    ev.ComplaintResumed: Words(lambda e: "resumed", _nothing),
    ev.AuthorityDeclined: Words(
        lambda e: f"{e.opd} declined authority{_suggesting(e, ', ')}: {short(e.reason)}",
        lambda e: e.reason + (f" ({_suggesting(e)})" if e.suggested_opd else ""),
    ),
    ev.FollowUpPosted: Words(lambda e: f"follow-up: {short(e.message)}", lambda e: e.message),
    ev.ComplaintResolved: Words(
        lambda e: f"resolved: {short(e.resolution)}", lambda e: e.resolution
    ),
    ev.ReporterReplied: Words(
        lambda e: f"reporter replied: {short(e.message)}", lambda e: e.message
    ),
    ev.ComplaintRated: Words(
        lambda e: "rated " + _rated(e, short), lambda e: _rated(e, lambda text: text)
    ),
    ev.ComplaintReopened: Words(lambda e: f"reopened: {short(e.reason)}", lambda e: e.reason),
    ev.ComplaintClosed: Words(lambda e: f"closed ({e.reason})", _closed),
    ev.DeadlineWarned: Words(
        lambda e: f"{e.step} deadline near (due {_json(e.due_at)})",
        lambda e: f"{_step(e)} due {e.due_at.isoformat()}",
    ),
    ev.DeadlineBreached: Words(
        lambda e: (
            f"{e.step} deadline passed (due {_json(e.due_at)}), escalated to {e.escalated_to}"
        ),
        lambda e: f"{_step(e)} due {e.due_at.isoformat()}",
    ),
}
"""The words of each event type."""
