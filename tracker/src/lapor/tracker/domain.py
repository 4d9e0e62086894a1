"""The complaint's state machine, free of I/O.

The state is folded from the complaint's events (``evolve``); commands check the state
and return the event to append, or raise. The same ``evolve`` feeds the status read model,
so what agencies are allowed to do and what the tracker shows can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from lapor.shared.envelope import Event
from lapor.shared.events import (
    ComplaintReceived,
    ComplaintResolved,
    ComplaintRouted,
    FollowUpPosted,
)


class Status(StrEnum):
    RECEIVED = "received"
    ROUTED = "routed"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"


AGENCY_LABEL = {
    Status.RECEIVED: "Belum Terverifikasi",
    Status.ROUTED: "Terdisposisi, Belum Ditindaklanjuti",
    Status.IN_PROGRESS: "Terdisposisi, Sedang Diproses",
    Status.RESOLVED: "Terdisposisi, Selesai",
}
PUBLIC_LABEL = {
    Status.RECEIVED: "Belum Terverifikasi",
    Status.ROUTED: "Belum Ditindaklanjuti",
    Status.IN_PROGRESS: "Proses",
    Status.RESOLVED: "Selesai",
}


@dataclass(frozen=True)
class ComplaintState:
    complaint_id: str
    status: Status
    opd: str | None
    opd_name: str | None
    received_at: datetime
    updated_at: datetime


def evolve(
    state: ComplaintState | None, event: Event, complaint_id: str, at: datetime
) -> ComplaintState | None:
    """The state after ``event``. Events are facts: one that does not fit is ignored rather
    than refused (the log is the truth; commands are where rules are enforced)."""
    match event:
        case ComplaintReceived():
            return state or ComplaintState(complaint_id, Status.RECEIVED, None, None, at, at)
        case _ if state is None:
            return None
        case ComplaintRouted(opd=opd, opd_name=name):
            return replace(state, status=Status.ROUTED, opd=opd, opd_name=name, updated_at=at)
        case FollowUpPosted() if state.status != Status.RESOLVED:
            return replace(state, status=Status.IN_PROGRESS, updated_at=at)
        case ComplaintResolved():
            return replace(state, status=Status.RESOLVED, updated_at=at)
    return state


class NotFound(Exception):
    """No such complaint for this agency (also when it belongs to another: no leak)."""


class NotAllowed(Exception):
    """The action does not fit the complaint's state."""

    def __init__(self, status: Status, action: str) -> None:
        super().__init__(f"cannot {action} a complaint that is {status.value}")
        self.status = status
        self.allowed = allowed_actions(status)


ACTIONS: dict[Status, tuple[str, ...]] = {
    Status.RECEIVED: (),
    Status.ROUTED: ("follow_up", "resolve"),
    Status.IN_PROGRESS: ("follow_up", "resolve"),
    Status.RESOLVED: (),
}


def allowed_actions(status: Status) -> list[str]:
    return list(ACTIONS[status])


def _check(state: ComplaintState | None, opd: str, action: str) -> ComplaintState:
    if state is None or state.opd != opd:
        raise NotFound
    if action not in ACTIONS[state.status]:
        raise NotAllowed(state.status, action)
    return state


def follow_up(
    state: ComplaintState | None, opd: str, message: str, officer: str | None
) -> FollowUpPosted:
    """Tindak lanjut by the OPD the complaint is disposed to."""
    _check(state, opd, "follow_up")
    return FollowUpPosted(opd=opd, message=message, officer=officer)


def resolve(
    state: ComplaintState | None, opd: str, resolution: str, officer: str | None
) -> ComplaintResolved:
    """Selesai: the OPD declares the complaint finished."""
    _check(state, opd, "resolve")
    return ComplaintResolved(opd=opd, resolution=resolution, officer=officer)
