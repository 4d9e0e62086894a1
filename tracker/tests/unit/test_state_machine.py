from datetime import UTC, datetime

import pytest

from lapor.shared.events import (
    ComplaintReceived,
    ComplaintResolved,
    ComplaintRouted,
    FollowUpPosted,
)
from lapor.tracker import domain
from lapor.tracker.domain import NotAllowed, NotFound, Status, evolve

AT = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
RECEIVED = ComplaintReceived(title="Jalan rusak", body="Jalan berlubang besar di depan pasar")
ROUTED = ComplaintRouted(
    opd="dpupr",
    opd_name="DPUPR",
    rule="category:jalan",
    reason="r",
    confidence=0.9,
    rules_version="1",
)


def fold(*events):
    state = None
    for e in events:
        state = evolve(state, e, "7K3MQ-9X2AB", AT)
    return state


def test_statuses_follow_the_lifecycle():
    assert fold(RECEIVED).status == Status.RECEIVED
    assert fold(RECEIVED, ROUTED).status == Status.ROUTED
    follow = FollowUpPosted(opd="dpupr", message="ditinjau")
    assert fold(RECEIVED, ROUTED, follow).status == Status.IN_PROGRESS
    done = ComplaintResolved(opd="dpupr", resolution="selesai")
    assert fold(RECEIVED, ROUTED, follow, done).status == Status.RESOLVED
    assert fold(RECEIVED, ROUTED, follow, done, follow).status == Status.RESOLVED


def test_events_before_the_complaint_exists_change_nothing():
    assert fold(ROUTED) is None


def test_only_the_assigned_opd_may_act():
    state = fold(RECEIVED, ROUTED)
    assert domain.follow_up(state, "dpupr", "ditinjau", None).opd == "dpupr"
    with pytest.raises(NotFound):
        domain.follow_up(state, "dlh", "bukan kami", None)
    with pytest.raises(NotFound):
        domain.resolve(None, "dpupr", "selesai", None)


@pytest.mark.parametrize("action", [domain.follow_up, domain.resolve])
def test_no_action_before_routing_or_after_resolution(action):
    with pytest.raises(NotAllowed) as refused:
        action(fold(RECEIVED), None, "x", None)
    assert refused.value.status == Status.RECEIVED and refused.value.allowed == []
    done = fold(RECEIVED, ROUTED, ComplaintResolved(opd="dpupr", resolution="selesai"))
    with pytest.raises(NotAllowed):
        action(done, "dpupr", "lagi", None)
