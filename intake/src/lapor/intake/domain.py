"""Intake rules, free of I/O: what a submission is, which tracking IDs it may take, and
how a retried submission is recognised."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

from pydantic import Field

from lapor.shared.envelope import EVENT_NAMESPACE
from lapor.shared.events import Complaint, ComplaintReceived, ReporterContact
from lapor.shared.tracking import new_tracking_id, tracking_id_for

MAX_ATTEMPTS = 5


class Submission(Complaint):
    """A complaint as a citizen or channel sends it; ``reporter`` never enters the log."""

    reporter: ReporterContact | None = Field(
        default=None, description="Contact details; kept apart from everything agencies read"
    )

    def received(self) -> ComplaintReceived:
        return ComplaintReceived(**self.model_dump(exclude={"reporter"}))

    def fingerprint(self) -> str:
        """Identifies the request's content, to refuse an idempotency key reused for another."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


def key_digest(idempotency_key: str) -> str:
    """What the log keeps of an idempotency key: a digest, not the key."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


def candidates(idempotency_key: str | None) -> Iterator[tuple[str, uuid.UUID]]:
    """(tracking ID, event id) pairs to try in order. With a key they are deterministic, so a
    retried request arrives at the same ID; without one they are random."""
    for attempt in range(MAX_ATTEMPTS):
        if idempotency_key is None:
            yield new_tracking_id(), uuid.uuid4()
        else:
            yield (
                tracking_id_for(idempotency_key, attempt),
                uuid.uuid5(EVENT_NAMESPACE, f"intake:{attempt}:{idempotency_key}"),
            )
