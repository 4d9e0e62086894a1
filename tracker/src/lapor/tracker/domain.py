"""The complaint's state machine (SP4N-LAPOR! lifecycle), free of I/O.

The state is the complaint's life folded from its events (``lapor.shared.lifecycle``); a
command checks the actor and the state and returns the event to append (``decide``), or
raises. The same fold feeds the status read model, so what may be done and what the
tracker shows can never disagree.

The states and the actions between them are in ``RULES`` below; the README draws them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from lapor.shared.envelope import Event
from lapor.shared.events import (
    Actor,
    ArchiveReason,
    AuthorityDeclined,
    ComplaintArchived,
    ComplaintClosed,
    ComplaintDisposed,
    ComplaintPutOnHold,
    ComplaintRated,
    ComplaintReopened,
    ComplaintResolved,
    ComplaintResumed,
    FollowUpPosted,
    ReporterReplied,
)
from lapor.shared.lifecycle import Lifecycle, Status

AGENCY_LABEL = {
    Status.RECEIVED: "Belum Terverifikasi",
    Status.DISPOSED: "Terdisposisi, Belum Ditindaklanjuti",
    Status.IN_PROGRESS: "Terdisposisi, Sedang Diproses",
    Status.ANSWERED: "Terdisposisi, Menunggu Tanggapan Pelapor",
    Status.CLOSED: "Terdisposisi, Selesai",
    Status.ON_HOLD: "Tertunda",
    Status.ARCHIVED: "Arsip",
}
"""What the admin and the units see (the admin's queue, a unit's list)."""
PUBLIC_LABEL = {
    Status.RECEIVED: "Belum Terverifikasi",
    Status.DISPOSED: "Belum Ditindaklanjuti",
    Status.IN_PROGRESS: "Proses",
    Status.ANSWERED: "Proses",
    Status.CLOSED: "Selesai",
    Status.ON_HOLD: "Tertunda",
    Status.ARCHIVED: "Arsip",
}
"""What everyone sees (status page, public listing). The normal path uses the four public
statuses of SP4N-LAPOR!: Belum Terverifikasi, Belum Ditindaklanjuti, Proses, Selesai. An
answer awaiting the reporter is still Proses: it is not finished until the reporter
confirms or the reply period passes. Off the normal path the public is told the truth,
not a status that flatters: on hold is Tertunda (the clock stopped, nothing moves), and
archived is Arsip (not handled here, with where to go instead), never Selesai, which
would count a report nobody acted on as finished. The README's table states both sets."""

# --- commands ---------------------------------------------------------------------


class NotFound(Exception):
    """No such complaint for this actor (also when it belongs to another unit: no leak)."""


class Forbidden(Exception):
    """The actor's role may not do this at all."""


class NotAllowed(Exception):
    """The action does not fit the complaint's state."""

    def __init__(self, status: Status, action: str, allowed: list[str]) -> None:
        super().__init__(f"cannot {action.replace('_', ' ')} a complaint that is {status.value}")
        self.status = status
        self.allowed = allowed


class InvalidInput(Exception):
    """An input the command cannot take on this complaint (``field``: which one, ``reason``:
    why, never the input itself); nothing is appended."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Action(StrEnum):
    """What someone can do to a complaint: the names the rules, the commands and the API
    share (``allowed_actions`` answers them)."""

    DISPOSE = "dispose"
    ARCHIVE = "archive"
    HOLD = "hold"
    RESUME = "resume"
    FOLLOW_UP = "follow_up"
    ANSWER = "answer"
    DECLINE = "decline"
    REPLY = "reply"
    RATE = "rate"
    REOPEN = "reopen"
    CONFIRM = "confirm"
    AUTO_CLOSE = "auto_close"


@dataclass(frozen=True)
class Rule:
    role: str  # who may: admin, agency (the unit it is disposed to), reporter, system
    states: frozenset[Status]


ACTIVE = frozenset({Status.DISPOSED, Status.IN_PROGRESS})
RULES: dict[Action, Rule] = {
    Action.DISPOSE: Rule("admin", frozenset({Status.RECEIVED})),
    Action.ARCHIVE: Rule("admin", frozenset({Status.RECEIVED, Status.ON_HOLD})),
    Action.HOLD: Rule("admin", frozenset({Status.RECEIVED, *ACTIVE})),
    Action.RESUME: Rule("admin", frozenset({Status.ON_HOLD})),
    Action.FOLLOW_UP: Rule("agency", ACTIVE),
    Action.ANSWER: Rule("agency", ACTIVE),
    Action.DECLINE: Rule("agency", ACTIVE),
    Action.REPLY: Rule("reporter", frozenset({Status.ANSWERED})),
    Action.RATE: Rule("reporter", frozenset({Status.ANSWERED, Status.CLOSED})),
    Action.REOPEN: Rule("reporter", frozenset({Status.ANSWERED, Status.CLOSED})),
    Action.CONFIRM: Rule("reporter", frozenset({Status.ANSWERED})),
    Action.AUTO_CLOSE: Rule("system", frozenset({Status.ANSWERED})),
}
"""Who may take each action, and in which states (every action has one: tested)."""


def allowed_actions(state: Lifecycle, role: str) -> list[str]:
    return allowed_in(state.status, role)


def allowed_in(status: Status, role: str) -> list[str]:
    """What ``role`` may do to a complaint in ``status``."""
    return [a for a, r in RULES.items() if r.role == role and status in r.states]


def authorize(state: Lifecycle | None, actor: Actor, action: Action) -> Lifecycle:
    """Check who may do ``action`` on this complaint in its present state."""
    rule = RULES[action]
    if actor.role != rule.role:
        raise Forbidden(f"a {actor.role} may not {action.replace('_', ' ')}")
    if state is None:
        raise NotFound
    # An agency sees only the complaints disposed to it: anything else is "not found".
    if actor.role == "agency" and state.opd != actor.opd:
        raise NotFound
    if state.status not in rule.states:
        raise NotAllowed(state.status, action, allowed_actions(state, actor.role))
    return state


def reads_confidential(reader: Actor | None, opd: str | None) -> bool:
    """Whether ``reader`` may read a confidential (Rahasia) complaint's content: its
    reporter, the coordinating admin, and an officer of the unit it is disposed to (``opd``;
    a unit that declined it, or one only proposed, is not)."""
    if reader is None:
        return False
    if reader.role == "agency":
        return opd is not None and reader.opd == opd
    return reader.role in ("reporter", "admin")


@dataclass(frozen=True)
class Command:
    """An action with what it says: ``make`` builds the event from the complaint's life."""

    action: Action
    make: Callable[[Lifecycle], Event]


def decide(state: Lifecycle | None, actor: Actor, command: Command) -> Event:
    """Authorize, then build the event the command produces."""
    return command.make(authorize(state, actor, command.action))


def dispose(opd: str, opd_name: str, by: Actor, automatic: bool = False) -> Command:
    return Command(
        Action.DISPOSE,
        lambda s: ComplaintDisposed(opd=opd, opd_name=opd_name, by=by, automatic=automatic),
    )


def archive(reason: ArchiveReason, note: str | None, by: Actor) -> Command:
    return Command(Action.ARCHIVE, lambda s: ComplaintArchived(reason=reason, note=note, by=by))


def hold(reason: str, by: Actor) -> Command:
    return Command(Action.HOLD, lambda s: ComplaintPutOnHold(reason=reason, by=by))


def resume(by: Actor) -> Command:
    return Command(Action.RESUME, lambda s: ComplaintResumed(by=by))


def follow_up(message: str, by: Actor) -> Command:
    return Command(
        Action.FOLLOW_UP, lambda s: FollowUpPosted(opd=s.opd, message=message, officer=by.name)
    )


def answer(resolution: str, by: Actor) -> Command:
    return Command(
        Action.ANSWER,
        lambda s: ComplaintResolved(opd=s.opd, resolution=resolution, officer=by.name),
    )


def decline(reason: str, by: Actor, suggested_opd: str | None = None) -> Command:
    """Bukan Wewenang, naming the unit the officer believes is authorized if they know one
    (a unit of the registry: the API checks that), which may not be the declining unit."""

    def make(s: Lifecycle) -> Event:
        if suggested_opd is not None and suggested_opd == s.opd:
            raise InvalidInput("suggested_opd", "is the declining unit itself")
        return AuthorityDeclined(opd=s.opd, reason=reason, by=by, suggested_opd=suggested_opd)

    return Command(Action.DECLINE, make)


def reply(message: str) -> Command:
    return Command(Action.REPLY, lambda s: ReporterReplied(message=message))


def rate(stars: int, comment: str | None) -> Command:
    return Command(Action.RATE, lambda s: ComplaintRated(stars=stars, comment=comment))


def reopen(reason: str) -> Command:
    return Command(Action.REOPEN, lambda s: ComplaintReopened(reason=reason))


def confirm(by: Actor) -> Command:
    return Command(Action.CONFIRM, lambda s: ComplaintClosed(reason="confirmed_by_reporter", by=by))


def auto_close() -> Command:
    return Command(
        Action.AUTO_CLOSE, lambda s: ComplaintClosed(reason="no_reply", by=Actor(role="system"))
    )
