"""What a log already holds cannot be purged (deny_delete, deny_purge), so every reader
must tolerate it: a message that is not an event, an event with characters PostgreSQL
cannot store, an event whose text carries terminal escape sequences. The audit reports
them and does not crash; the auditor's view of a complaint shows nothing raw."""

from __future__ import annotations

import json
import uuid

import nats

from lapor.ops import audit
from lapor.services.eventstore import EventStore
from lapor.shared.envelope import envelope
from lapor.shared.events import ComplaintReceived, FollowUpPosted

HOSTILE = "Jalan rusak \x1b]0;pwned\x07\x1b[2J\u202e"


async def test_audit_reports_what_the_log_holds_and_prints_nothing_raw(settings):
    nc = await nats.connect(settings.nats_url)
    js, subjects = nc.jetstream(), settings.subjects
    store = EventStore(js, subjects)
    try:
        # A complaint appended as the services do, with text that passed no validation.
        cid = "H0ST1-7E000"
        received = envelope(
            ComplaintReceived.model_construct(title=HOSTILE, body="Lubang\u0000besar di jalan"),
            complaint_id=cid,
            correlation_id=uuid.uuid4(),
        )
        last = await store.append(received, expected_last_seq=0)
        followed = envelope(
            FollowUpPosted(opd="dpupr", message="Sudah ditinjau"),
            complaint_id=cid,
            correlation_id=uuid.uuid4(),
        )
        await store.append(followed, expected_last_seq=last)
        # Raw messages bypassing the event store: not JSON, and JSON that is no event.
        stream = subjects.events_stream
        await js.publish(
            subjects.complaint("JVNK0-00000", "complaint.received"), b"\x00\xff{", stream=stream
        )
        await js.publish(
            subjects.complaint(cid, "complaint.rated"),
            json.dumps({"title": HOSTILE}).encode(),
            stream=stream,
        )

        report = await audit.verify(js, stream, subjects)
        lines = "\n".join(report.describe())
        assert not report.ok  # the two raw messages are not chained: reported
        assert "\x1b" not in lines and "\x07" not in lines and "\x00" not in lines

        history = await audit.complaint_history(js, subjects, cid)
        assert len(history) == 3  # the two events and the raw one under its subjects
        shown = "\n".join(audit.describe_history(history))
        for raw in ("\x1b", "\x07", "\x00", "\u202e"):
            assert raw not in shown
    finally:
        await nc.close()
