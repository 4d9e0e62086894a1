"""Intake rules, free of I/O: what a submission is, which tracking IDs it may take, and
how a retried submission is recognised."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator, Sequence

from pydantic import Field

from lapor.shared.envelope import EVENT_NAMESPACE
from lapor.shared.events import AttachmentRef, Complaint, ComplaintReceived, ReporterContact
from lapor.shared.tracking import new_tracking_id, tracking_id_for

MAX_ATTEMPTS = 5


class Submission(Complaint):
    """A complaint as a citizen or channel sends it; ``reporter`` never enters the log."""

    reporter: ReporterContact | None = Field(
        default=None, description="Contact details; kept apart from everything agencies read"
    )
    share_photo_location: bool = Field(
        default=False,
        description="With photos attached (multipart): the reporter agrees that the position "
        "a photo was taken at becomes the complaint's location (lat/lon) when none is given. "
        "Ignored for an anonymous complaint. The stored photos never keep it",
    )

    def received(
        self,
        attachments: Sequence[AttachmentRef] = (),
        gps: tuple[float, float] | None = None,
    ) -> ComplaintReceived:
        """The event; ``gps``: a photo's position, taken as the location only if the
        reporter shares it (``share_photo_location``, not anonymous) and gave no point."""
        content = self.model_dump(exclude={"reporter", "share_photo_location"})
        if gps is not None and self.shares_photo_location and not self.has_point:
            place = dict(content.get("location") or {})
            place["lat"], place["lon"] = gps
            content["location"] = place
        return ComplaintReceived(**content, attachments=list(attachments))

    @property
    def shares_photo_location(self) -> bool:
        return self.share_photo_location and not self.anonymous

    @property
    def has_point(self) -> bool:
        return self.location is not None and self.location.lat is not None

    def fingerprint(self, secret: str, files: Sequence[str] = ()) -> str:
        """Identifies the request's content, to refuse an idempotency key reused for another.
        Keyed with the deployment's secret: it covers the reporter's contact, and the log
        keeps it for good, so an unkeyed hash would let a reader of the log test guesses
        at an anonymous reporter's phone number. ``files``: what identifies each attached
        file as sent (its sha256 and name), in order: the same key with other files is
        another request. Without files the fingerprint is what it always was."""
        # ``share_photo_location`` only when set: a retry of a request sent before the field
        # existed still matches the fingerprint it left in the log.
        unset = None if self.share_photo_location else {"share_photo_location"}
        content = self.model_dump_json(exclude=unset).encode()
        if files:
            content += b"\x00" + "\x00".join(files).encode()
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
