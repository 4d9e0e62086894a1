"""Which filter a rebuild's consumer reads the log with (``lapor.ops.replay._filter``)."""

from lapor.ops.replay import _filter
from lapor.services.settings import Settings


def test_a_stream_of_complaint_events_alone_is_read_without_a_filter() -> None:
    # A filter makes nats-server count what is pending for it over every block when the
    # consumer is created: minutes on a cold 10-million-event log.
    settings = Settings(subject_root="lapor")
    assert _filter(["lapor.complaint.>"], settings) is None


def test_a_stream_holding_anything_else_is_read_through_the_complaint_filter() -> None:
    settings = Settings(subject_root="lapor")
    assert _filter(["lapor.complaint.>", "lapor.other.>"], settings) == "lapor.complaint.>"
    assert _filter(["lapor.>"], settings) == "lapor.complaint.>"
    assert _filter(None, settings) == "lapor.complaint.>"
