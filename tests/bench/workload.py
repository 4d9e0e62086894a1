"""What the benchmark feeds the system: realistic complaints and a realistic event log.

The complaints are the demo set (41 reports from Pontianak, most with reporter contact),
each submission with its own Idempotency-Key as a channel would send. The event log
gives every complaint the life most complaints have: received, routed, disposed,
followed up, resolved, closed (six events), with payloads built once per demo complaint
by the real event models (and the real routing table), then stamped per complaint.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

from lapor.router.domain import RoutingTable
from lapor.shared.envelope import envelope
from lapor.shared.events import (
    Actor,
    ComplaintClosed,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintResolved,
    ComplaintRouted,
    Event,
    FollowUpPosted,
)
from lapor.shared.tracking import new_tracking_id

EVENTS_PER_COMPLAINT = 6


def demo_complaints() -> list[dict[str, Any]]:
    text = files("lapor.devtools").joinpath("demo_complaints.json").read_text("utf-8")
    return json.loads(text)


class Submissions:
    """Request bodies for ``POST /complaints``, serialised once; cycled through."""

    def __init__(self) -> None:
        self.templates = demo_complaints()
        self.bodies = [json.dumps(t).encode() for t in self.templates]
        self.with_reporter = sum(1 for t in self.templates if t.get("reporter")) / len(
            self.templates
        )

    def request(self, i: int) -> tuple[bytes, dict[str, str]]:
        headers = {"content-type": "application/json", "idempotency-key": uuid.uuid4().hex}
        return self.bodies[i % len(self.bodies)], headers


def received_envelope_json(complaint_id: str | None = None) -> bytes:
    """One realistic ``ComplaintReceived`` envelope, as intake would append it."""
    template = {k: v for k, v in demo_complaints()[0].items() if k != "reporter"}
    env = envelope(
        ComplaintReceived(**template),
        complaint_id=complaint_id or new_tracking_id(),
        correlation_id=uuid.uuid4(),
    )
    return env.to_json()


class EventLog:
    """Envelopes of whole complaint lives, as JSON bytes, generated quickly.

    Per demo complaint the six payloads are made once by the event models (the routing by
    the real routing table); per complaint only the envelope's ids and times change.
    """

    def __init__(self, start: datetime | None = None) -> None:
        table = RoutingTable.load()
        officer = "Rina (liaison officer)"
        self.lives: list[list[tuple[str, dict[str, Any]]]] = []
        for item in demo_complaints():
            received = ComplaintReceived(**{k: v for k, v in item.items() if k != "reporter"})
            decision = table.decide(received)
            events: list[Event] = [
                received,
                ComplaintRouted(
                    opd=decision.opd,
                    opd_name=decision.opd_name,
                    rule=decision.rule,
                    reason=decision.reason,
                    confidence=decision.confidence,
                    rules_version=decision.rules_version,
                    excluded=sorted(decision.excluded),
                    level=decision.level,
                ),
                ComplaintDisposed(
                    opd=decision.opd,
                    opd_name=decision.opd_name,
                    by=Actor(role="system", name="router"),
                    automatic=True,
                ),
                FollowUpPosted(
                    opd=decision.opd,
                    message="Laporan sudah kami terima dan tim sudah dijadwalkan ke lokasi.",
                    officer=officer,
                ),
                ComplaintResolved(
                    opd=decision.opd,
                    resolution="Sudah ditangani oleh tim lapangan; terima kasih atas laporannya.",
                    officer=officer,
                ),
                ComplaintClosed(reason="confirmed_by_reporter", by=Actor(role="reporter")),
            ]
            life = []
            for event in events:
                env = envelope(event, complaint_id="00000-00000", correlation_id=uuid.uuid4())
                life.append((event.TYPE, env.model_dump(mode="json")))
            self.lives.append(life)
        self.start = start or datetime.now(UTC) - timedelta(days=365)

    def complaints(self, count: int, chunk: int = 500) -> Iterator[tuple[str, str, str, bytes]]:
        """(complaint_id, event_type, event_id, envelope JSON) for ``count`` whole lives;
        the lives of ``chunk`` complaints at a time interleave, as concurrent complaints do
        in a log."""
        for first in range(0, count, chunk):
            batch = range(first, min(first + chunk, count))
            ids = {i: new_tracking_id() for i in batch}
            correlation = {i: str(uuid.uuid4()) for i in batch}
            causes: dict[int, str | None] = dict.fromkeys(batch)
            for step in range(EVENTS_PER_COMPLAINT):
                for i in batch:
                    event_type, template = self.lives[i % len(self.lives)][step]
                    at = self.start + timedelta(seconds=30 * i, hours=20 * step)
                    event_id = str(uuid.uuid4())
                    env = {
                        **template,
                        "event_id": event_id,
                        "complaint_id": ids[i],
                        "correlation_id": correlation[i],
                        "causation_id": causes[i],
                        "occurred_at": at.isoformat(),
                    }
                    causes[i] = event_id
                    yield (
                        ids[i],
                        event_type,
                        event_id,
                        json.dumps(env, separators=(",", ":")).encode(),
                    )
