"""Every allowed transition, and a refusal for every forbidden one."""

from datetime import UTC, datetime

import pytest

from lapor.shared import words
from lapor.shared.events import (
    Actor,
    ArchiveReason,
    AuthorityDeclined,
    ComplaintArchived,
    ComplaintClosed,
    ComplaintDisposed,
    ComplaintPutOnHold,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    ComplaintResumed,
    ComplaintRouted,
    FollowUpPosted,
)
from lapor.shared.lifecycle import evolve
from lapor.tracker import domain
from lapor.tracker.domain import RULES, Forbidden, NotAllowed, NotFound, Status

AT = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
CID = "7K3MQ-9X2AB"
ADMIN = Actor(role="admin", name="Admin Diskominfo")
DPUPR = Actor(role="agency", opd="dpupr", name="Petugas DPUPR")
DLH = Actor(role="agency", opd="dlh")
REPORTER = Actor(role="reporter")
SYSTEM = Actor(role="system")
ACTORS = {"admin": ADMIN, "agency": DPUPR, "reporter": REPORTER, "system": SYSTEM}

RECEIVED = ComplaintReceived(title="Jalan rusak", body="Jalan berlubang besar di depan pasar")
ROUTED = ComplaintRouted(
    opd="dpupr",
    opd_name="DPUPR",
    rule="category:jalan",
    reason="r",
    confidence=0.9,
    rules_version="1",
)
DISPOSED = ComplaintDisposed(opd="dpupr", opd_name="DPUPR", by=ADMIN, automatic=False)
FOLLOWED = FollowUpPosted(opd="dpupr", message="Tim sudah meninjau lokasi")
ANSWERED = ComplaintResolved(opd="dpupr", resolution="Lubang sudah ditambal")
CLOSED = ComplaintClosed(reason="confirmed_by_reporter", by=REPORTER)

# One way to reach each status.
PATHS = {
    Status.RECEIVED: [RECEIVED, ROUTED],
    Status.DISPOSED: [RECEIVED, ROUTED, DISPOSED],
    Status.IN_PROGRESS: [RECEIVED, ROUTED, DISPOSED, FOLLOWED],
    Status.ANSWERED: [RECEIVED, ROUTED, DISPOSED, FOLLOWED, ANSWERED],
    Status.CLOSED: [RECEIVED, ROUTED, DISPOSED, ANSWERED, CLOSED],
    Status.ON_HOLD: [RECEIVED, ROUTED, DISPOSED, ComplaintPutOnHold(reason="data", by=ADMIN)],
    Status.ARCHIVED: [RECEIVED, ComplaintArchived(reason=ArchiveReason.CRIMINAL_REPORT, by=ADMIN)],
}

COMMANDS = {
    "dispose": domain.dispose("dlh", "DLH", ADMIN),
    "archive": domain.archive(ArchiveReason.DUPLICATE, None, ADMIN),
    "hold": domain.hold("menunggu data", ADMIN),
    "resume": domain.resume(ADMIN),
    "follow_up": domain.follow_up("ditinjau", DPUPR),
    "answer": domain.answer("selesai", DPUPR),
    "decline": domain.decline("jalan provinsi", DPUPR),
    "reply": domain.reply("terima kasih"),
    "rate": domain.rate(5, None),
    "reopen": domain.reopen("masih berlubang"),
    "confirm": domain.confirm(REPORTER),
    "auto_close": domain.auto_close(),
}

# The status each allowed action leads to, from each status it is allowed in.
EXPECTED = {
    ("dispose", Status.RECEIVED): Status.DISPOSED,
    ("archive", Status.RECEIVED): Status.ARCHIVED,
    ("archive", Status.ON_HOLD): Status.ARCHIVED,
    ("hold", Status.RECEIVED): Status.ON_HOLD,
    ("hold", Status.DISPOSED): Status.ON_HOLD,
    ("hold", Status.IN_PROGRESS): Status.ON_HOLD,
    ("resume", Status.ON_HOLD): Status.DISPOSED,  # the status it was held from
    ("follow_up", Status.DISPOSED): Status.IN_PROGRESS,
    ("follow_up", Status.IN_PROGRESS): Status.IN_PROGRESS,
    ("answer", Status.DISPOSED): Status.ANSWERED,
    ("answer", Status.IN_PROGRESS): Status.ANSWERED,
    ("decline", Status.DISPOSED): Status.RECEIVED,
    ("decline", Status.IN_PROGRESS): Status.RECEIVED,
    ("reply", Status.ANSWERED): Status.ANSWERED,
    ("rate", Status.ANSWERED): Status.ANSWERED,
    ("rate", Status.CLOSED): Status.CLOSED,
    ("reopen", Status.ANSWERED): Status.IN_PROGRESS,
    ("reopen", Status.CLOSED): Status.IN_PROGRESS,
    ("confirm", Status.ANSWERED): Status.CLOSED,
    ("auto_close", Status.ANSWERED): Status.CLOSED,
}


def fold(events):
    state = None
    for e in events:
        state = evolve(state, e, CID, AT)
    return state


def test_paths_reach_their_status():
    for status, path in PATHS.items():
        assert fold(path).status == status


def test_the_table_of_expectations_is_the_rule_table():
    allowed = {(a, s) for a, rule in RULES.items() for s in rule.states}
    assert allowed == set(EXPECTED)


@pytest.mark.parametrize(("action", "start"), sorted(EXPECTED))
def test_allowed_transition(action, start):
    state = fold(PATHS[start])
    event = domain.decide(state, ACTORS[RULES[action].role], COMMANDS[action])
    assert evolve(state, event, CID, AT).status == EXPECTED[(action, start)]


@pytest.mark.parametrize(
    ("action", "start"),
    sorted((a, s) for a in RULES for s in Status if (a, s) not in EXPECTED),
)
def test_forbidden_transition_is_refused_with_the_allowed_actions(action, start):
    state = fold(PATHS[start])
    role = RULES[action].role
    if role == "agency" and state.opd is None:
        # Never disposed (or taken back): to the unit it is not its complaint at all.
        with pytest.raises(NotFound):
            domain.decide(state, ACTORS[role], COMMANDS[action])
        return
    with pytest.raises(NotAllowed) as refused:
        domain.decide(state, ACTORS[role], COMMANDS[action])
    assert refused.value.status == start
    assert refused.value.allowed == domain.allowed_actions(state, role)
    assert action not in refused.value.allowed


@pytest.mark.parametrize("action", sorted(RULES))
def test_other_roles_may_not(action):
    state = fold(PATHS[Status.IN_PROGRESS])
    for role, actor in ACTORS.items():
        if role != RULES[action].role:
            with pytest.raises(Forbidden):
                domain.decide(state, actor, COMMANDS[action])


def test_an_agency_sees_only_complaints_disposed_to_it():
    state = fold(PATHS[Status.DISPOSED])
    with pytest.raises(NotFound):
        domain.decide(state, DLH, domain.follow_up("x", DLH))
    with pytest.raises(NotFound):
        domain.decide(None, DPUPR, domain.follow_up("x", DPUPR))


def test_not_our_authority_clears_the_unit_and_remembers_it():
    state = fold([*PATHS[Status.IN_PROGRESS], AuthorityDeclined(opd="dpupr", reason="r", by=DPUPR)])
    assert state.status == Status.RECEIVED and state.opd is None
    assert state.declined_by == ("dpupr",)
    redisposed = evolve(
        state,
        ComplaintDisposed(opd="pemprov_kalbar", opd_name="Pemprov", by=ADMIN, automatic=True),
        CID,
        AT,
    )
    assert redisposed.opd == "pemprov_kalbar" and redisposed.declined_by == ("dpupr",)


def test_reopened_and_resumed_states():
    reopened = fold([*PATHS[Status.CLOSED], ComplaintReopened(reason="belum")])
    assert reopened.status == Status.IN_PROGRESS
    resumed = fold([*PATHS[Status.ON_HOLD], ComplaintResumed(by=ADMIN)])
    assert resumed.status == Status.DISPOSED


def test_events_before_the_complaint_exists_change_nothing():
    assert fold([ROUTED]) is None


def test_archived_history_tells_the_citizen_where_to_go():
    note = words.note(ComplaintArchived(reason=ArchiveReason.CORRUPTION_CASE, by=ADMIN))
    assert "KPK" in note


def test_every_action_has_its_rule_and_its_command():
    """A new action fails here until the rules say who may take it, and when."""
    assert set(RULES) == set(domain.Action) == set(COMMANDS)
    assert all(COMMANDS[action].action == action for action in domain.Action)
