"""The one envelope every event travels in, and the registry that reads it back.

The wire format is JSON: envelope fields at the top, the event's own fields under
``payload``. ``type`` is a stable string (never a Python import path) and ``version``
the payload's schema version; older versions are upcast when read, never rewritten.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from lapor.shared.tracking import PATTERN as TRACKING_ID

# Deterministic event ids (uuid5 of the cause) make a retried handler produce the very
# same event, which JetStream then de-duplicates by its Nats-Msg-Id.
EVENT_NAMESPACE = uuid.UUID("6f1d3c1e-3a43-4f57-9a43-6c61706f7221")

FROM_LOG = "lapor.from_log"
"""Validation context key set by :func:`decode`: the payload is read back from the log."""


class Event(BaseModel):
    """Base of every event payload. Subclasses set ``TYPE`` and ``VERSION``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


class Envelope(BaseModel):
    """Metadata shared by all events; the payload is validated by its registered model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(description="Unique; also sent as Nats-Msg-Id for de-duplication")
    type: str = Field(description="Stable event type name, e.g. complaint.received")
    version: int = Field(ge=1, description="Schema version of the payload")
    occurred_at: AwareDatetime = Field(description="When it happened, UTC")
    complaint_id: str = Field(pattern=TRACKING_ID, description="The complaint's tracking ID")
    correlation_id: uuid.UUID = Field(description="The request or flow this event belongs to")
    causation_id: uuid.UUID | None = Field(
        default=None, description="The event that caused this one, if any"
    )
    payload: dict[str, Any]

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


E = TypeVar("E", bound=Event)
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_registry: dict[str, type[Event]] = {}
_upcasters: dict[tuple[str, int], Upcaster] = {}


def register(cls: type[E]) -> type[E]:
    """Class decorator: make an event type readable from the log."""
    if cls.TYPE in _registry:
        raise ValueError(f"event type {cls.TYPE!r} registered twice")
    _registry[cls.TYPE] = cls
    return cls


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function turning payload version ``from_version`` into the next one."""

    def decorate(fn: Upcaster) -> Upcaster:
        _upcasters[(event_type, from_version)] = fn
        return fn

    return decorate


def registered_events() -> dict[str, type[Event]]:
    return dict(_registry)


def envelope(
    event: Event,
    *,
    complaint_id: str,
    correlation_id: uuid.UUID,
    causation_id: uuid.UUID | None = None,
    event_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    """Wrap ``event`` for the log. Pass ``event_id`` to make a retry produce the same event."""
    return Envelope(
        event_id=event_id or uuid.uuid4(),
        type=event.TYPE,
        version=event.VERSION,
        occurred_at=occurred_at or datetime.now(UTC),
        complaint_id=complaint_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
        payload=event.model_dump(mode="json"),
    )


def derived_event_id(cause: uuid.UUID, purpose: str) -> uuid.UUID:
    """The id of the event that ``cause`` produces for ``purpose``: the same on every retry."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{cause}:{purpose}")


class UnknownEvent(ValueError):
    """The log holds an event type or version this code cannot read."""


def parse(data: bytes | str) -> Envelope:
    return Envelope.model_validate_json(data)


def decode(env: Envelope) -> Event:
    """The typed payload of ``env``, upcast to the current version of its type.

    Validated with the ``FROM_LOG`` context: what the log already holds cannot be purged
    or refused any more, so validators that guard new input repair instead (free text
    with characters no read model can store gets U+FFFD, see ``lapor.shared.events.Text``)
    and every event stays readable.
    """
    cls = _registry.get(env.type)
    if cls is None:
        raise UnknownEvent(f"unknown event type {env.type!r}")
    payload, version = env.payload, env.version
    while version < cls.VERSION:
        step = _upcasters.get((env.type, version))
        if step is None:
            raise UnknownEvent(f"no upcaster for {env.type} v{version}")
        payload, version = step(payload), version + 1
    if version != cls.VERSION:
        raise UnknownEvent(f"{env.type} v{env.version} is newer than this code (v{cls.VERSION})")
    return cls.model_validate(payload, context={FROM_LOG: True})
