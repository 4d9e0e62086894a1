import uuid

import pytest
from pydantic import ValidationError

from lapor.shared import envelope as env_module
from lapor.shared.envelope import (
    Envelope,
    Event,
    UnknownEvent,
    decode,
    derived_event_id,
    envelope,
    parse,
    register,
    upcaster,
)
from lapor.shared.events import (
    Actor,
    AuthorityDeclined,
    ComplaintReceived,
    ComplaintRouted,
    ReportType,
)

CID = "7K3MQ-9X2AB"


def test_round_trip_through_the_wire_format():
    event = ComplaintReceived(
        title="Jalan rusak", body="Jalan berlubang di depan pasar", category="jalan"
    )
    env = envelope(event, complaint_id=CID, correlation_id=uuid.uuid4())
    back = parse(env.to_json())
    assert back == env
    assert back.type == "complaint.received" and back.version == 1
    assert decode(back) == event
    assert decode(back).report_type is ReportType.COMPLAINT


def test_derived_ids_are_stable_and_distinct_per_purpose():
    cause = uuid.uuid4()
    assert derived_event_id(cause, "routed") == derived_event_id(cause, "routed")
    assert derived_event_id(cause, "routed") != derived_event_id(cause, "agency")


def test_complaint_id_must_be_a_tracking_id_so_it_is_safe_in_subjects():
    event = ComplaintRouted(
        opd="dpupr", opd_name="DPUPR", rule="r", reason="r", confidence=1, rules_version="1"
    )
    for bad in ("*", "a.b", ">", "7K3MQ-9X2A", "7k3mq-9x2ab"):
        with pytest.raises(ValidationError):
            envelope(event, complaint_id=bad, correlation_id=uuid.uuid4())
    with pytest.raises(ValidationError):
        ComplaintRouted(
            opd="dp.upr", opd_name="x", rule="r", reason="r", confidence=1, rules_version="1"
        )


def test_unknown_types_and_future_versions_are_refused():
    raw = envelope(
        ComplaintReceived(title="Jalan rusak", body="Jalan berlubang di depan pasar"),
        complaint_id=CID,
        correlation_id=uuid.uuid4(),
    )
    with pytest.raises(UnknownEvent):
        decode(raw.model_copy(update={"type": "complaint.teleported"}))
    with pytest.raises(UnknownEvent):
        decode(raw.model_copy(update={"version": 99}))


def test_old_versions_are_upcast_when_read(monkeypatch):
    monkeypatch.setattr(env_module, "_registry", dict(env_module._registry))
    monkeypatch.setattr(env_module, "_upcasters", dict(env_module._upcasters))

    @register
    class Rated(Event):
        TYPE = "test.rated"
        VERSION = 2
        stars: int
        comment: str

    @upcaster("test.rated", 1)
    def upcast_v1_v2(payload):
        return {"stars": payload["score"], "comment": ""}

    v1 = Envelope(
        event_id=uuid.uuid4(),
        type="test.rated",
        version=1,
        occurred_at="2026-11-02T08:00:00Z",
        complaint_id=CID,
        correlation_id=uuid.uuid4(),
        payload={"score": 4},
    )
    assert decode(v1) == Rated(stars=4, comment="")


def test_a_declination_naming_the_authorized_unit_round_trips():
    officer = Actor(role="agency", opd="dpupr")
    event = AuthorityDeclined(opd="dpupr", reason="Urusan sampah", by=officer, suggested_opd="dlh")
    env = envelope(event, complaint_id=CID, correlation_id=uuid.uuid4())
    assert env.version == 1 and env.payload["suggested_opd"] == "dlh"
    back = parse(env.to_json())
    assert back == env and decode(back) == event


def test_a_declination_from_before_suggestions_still_decodes():
    old = Envelope(  # as the log holds one written before suggested_opd existed
        event_id=uuid.uuid4(),
        type="complaint.authority_declined",
        version=1,
        occurred_at="2026-11-02T08:00:00Z",
        complaint_id=CID,
        correlation_id=uuid.uuid4(),
        payload={
            "opd": "dpupr",
            "reason": "Bukan kewenangan kami",
            "by": {"role": "agency", "opd": "dpupr", "name": None},
        },
    )
    declined = decode(parse(old.to_json()))
    assert declined == AuthorityDeclined(
        opd="dpupr", reason="Bukan kewenangan kami", by=Actor(role="agency", opd="dpupr")
    )
    assert declined.suggested_opd is None


def test_a_suggested_unit_must_be_an_opd_code():
    with pytest.raises(ValidationError):
        AuthorityDeclined(
            opd="dpupr", reason="r", by=Actor(role="agency"), suggested_opd="Dinas LH"
        )
