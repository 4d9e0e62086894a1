from lapor.shared.events import Actor
from lapor.tracker.domain import reads_confidential


def test_confidential_content_is_for_its_reporter_admin_and_unit_only():
    assert reads_confidential(Actor(role="reporter"), None)
    assert reads_confidential(Actor(role="admin"), "dpupr")
    assert reads_confidential(Actor(role="agency", opd="dpupr"), "dpupr")
    assert not reads_confidential(Actor(role="agency", opd="dlh"), "dpupr")
    assert not reads_confidential(None, "dpupr")
    assert not reads_confidential(Actor(role="system"), "dpupr")


def test_an_officer_without_a_unit_never_matches_an_undisposed_complaint():
    assert not reads_confidential(Actor(role="agency"), None)
