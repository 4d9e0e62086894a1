"""Appending to and reading from the JetStream log.

Every append carries ``Nats-Msg-Id = event_id`` (de-duplication of retries within the
stream's duplicate window) and an expected last sequence over all of the complaint's
subjects, so two writers racing on one complaint cannot both win, and a retry after the
window closes cannot append twice either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import BadRequestError, NotFoundError

from lapor.shared.envelope import Envelope, parse
from lapor.shared.subjects import Subjects

WRONG_LAST_SEQUENCE = 10071  # JetStream error code
NO_MESSAGE_FOUND = 10037


class ConcurrencyError(Exception):
    """Someone appended to the complaint since it was read."""

    def __init__(self, complaint_id: str, expected: int, description: str) -> None:
        super().__init__(f"{complaint_id}: expected last sequence {expected}: {description}")
        self.complaint_id = complaint_id
        self.expected = expected


@dataclass(frozen=True)
class StoredEvent:
    """An event as the log holds it: its stream sequence, subject, headers and envelope."""

    seq: int
    subject: str
    envelope: Envelope
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_raw(cls, raw: RawStreamMsg) -> StoredEvent:
        return cls(raw.seq, raw.subject, parse(raw.data), dict(raw.headers or {}))

    @classmethod
    def from_msg(cls, msg: Msg) -> StoredEvent:
        return cls(msg.metadata.sequence.stream, msg.subject, parse(msg.data), msg.headers or {})


class EventStore:
    """The complaint log on JetStream."""

    def __init__(self, js: JetStreamContext, subjects: Subjects) -> None:
        self.js = js
        self.subjects = subjects

    async def append(
        self, env: Envelope, expected_last_seq: int, headers: dict[str, str] | None = None
    ) -> int:
        """Append ``env`` if the complaint's last sequence is still ``expected_last_seq``
        (0: the complaint has no events yet). Returns the event's stream sequence; a retry of
        an already appended event returns the original's sequence."""
        subject = self.subjects.complaint(env.complaint_id, env.type)
        all_headers = {
            "Nats-Expected-Last-Subject-Sequence": str(expected_last_seq),
            "Nats-Expected-Last-Subject-Sequence-Subject": self.subjects.complaint_all(
                env.complaint_id
            ),
            **(headers or {}),
        }
        try:
            return await self.publish(subject, env, self.subjects.events_stream, all_headers)
        except BadRequestError as e:
            if e.err_code == WRONG_LAST_SEQUENCE:
                raise ConcurrencyError(env.complaint_id, expected_last_seq, e.description) from e
            raise

    async def publish(
        self, subject: str, env: Envelope, stream: str, headers: dict[str, str] | None = None
    ) -> int:
        """Publish to a stream and wait for its durable acknowledgement."""
        ack = await self.js.publish(
            subject,
            env.to_json(),
            stream=stream,
            headers={
                "Nats-Msg-Id": str(env.event_id),
                "Lapor-Event-Type": env.type,
                "Lapor-Correlation-Id": str(env.correlation_id),
                **(headers or {}),
            },
        )
        return ack.seq

    async def load(self, complaint_id: str) -> list[StoredEvent]:
        """All events of one complaint, in log order."""
        events: list[StoredEvent] = []
        seq = 1
        while True:
            try:
                raw = await self.js.get_msg(
                    self.subjects.events_stream,
                    seq=seq,
                    subject=self.subjects.complaint_all(complaint_id),
                    next=True,
                )
            except NotFoundError:
                return events
            events.append(StoredEvent.from_raw(raw))
            seq = raw.seq + 1

    async def last(self, complaint_id: str, event_type: str | None = None) -> StoredEvent | None:
        """The complaint's latest event (of ``event_type``, if given), or None."""
        subject = (
            self.subjects.complaint(complaint_id, event_type)
            if event_type
            else self.subjects.complaint_all(complaint_id)
        )
        try:
            raw = await self.js.get_msg(self.subjects.events_stream, subject=subject)
        except NotFoundError:
            return None
        return StoredEvent.from_raw(raw)
