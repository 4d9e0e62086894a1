"""Intake rules, free of I/O: what a submission is, which tracking IDs it may take, and
how a retried submission is recognised."""

from __future__ import annotations

import hashlib
import hmac
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

    def fingerprint(self, secret: str) -> str:
        """Identifies the request's content, to refuse an idempotency key reused for another.
        Keyed with the deployment's secret: it covers the reporter's contact, and the log
        keeps it for good, so an unkeyed hash would let a reader of the log test guesses
        at an anonymous reporter's phone number."""
        content = self.model_dump_json().encode()
        return hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()


def key_digest(secret: str, idempotency_key: str) -> str:
    """What the log keeps of an idempotency key: an HMAC keyed with the deployment's
    secret, so that neither the key nor a guess at it can be checked against the log."""
    message = f"idempotency-key:{idempotency_key}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def fresh_candidates() -> Iterator[tuple[str, uuid.UUID]]:
    """(tracking ID, event id) pairs to try in order for a request without a key: random."""
    for _ in range(MAX_ATTEMPTS):
        yield new_tracking_id(), uuid.uuid4()


def keyed_candidates(secret: str, idempotency_key: str) -> Iterator[tuple[str, uuid.UUID]]:
    """(tracking ID, event id) pairs to try in order for a request with a key: the same on
    every retry, so a retried request arrives at the same ID, and derived with the
    deployment's ``secret``, so that knowing the key is not enough to know the ID."""
    digest = key_digest(secret, idempotency_key)
    for attempt in range(MAX_ATTEMPTS):
        yield (
            tracking_id_for(secret, idempotency_key, attempt),
            uuid.uuid5(EVENT_NAMESPACE, f"intake:{attempt}:{digest}"),
        )
