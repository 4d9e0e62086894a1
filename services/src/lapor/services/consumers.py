"""Reliable delivery to handlers: durable consumers, retries with a growing delay, and
dead letters.

Delivery from JetStream is at-least-once; a handler's effect is made idempotent by
appending with deterministic ids (read models have their own way: ``projections``). A
message a handler cannot process is parked in the dead-letter stream with the reason,
never dropped and never allowed to block the others forever.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry.trace import Status, StatusCode
from pydantic import ValidationError

from lapor.services import tracing
from lapor.services.eventstore import StoredEvent, header
from lapor.services.observability import DEAD_LETTERED, OK, RETRIED, dead_lettered, event_handled
from lapor.services.settings import Settings
from lapor.shared.envelope import Event, UnknownEvent, decode

log = structlog.get_logger(__name__)


class Permanent(Exception):
    """An error that retrying cannot fix: the message goes to the dead letters at once."""


PERMANENT_ERRORS: tuple[type[BaseException], ...] = (ValidationError, UnknownEvent, Permanent)


def consumer_config(
    durable: str,
    subject: str,
    settings: Settings,
    *,
    max_ack_pending: int | None = None,
    ack_policy: AckPolicy = AckPolicy.EXPLICIT,
) -> ConsumerConfig:
    """A durable pull consumer with explicit acks (or, with ``AckPolicy.ALL``, where an
    ack covers every message before it too), from the start of the log."""
    return ConsumerConfig(
        durable_name=durable,
        filter_subject=subject,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=ack_policy,
        ack_wait=30,
        # Retries are counted by the handlers (see settle); the server never gives up alone.
        max_deliver=-1,
        max_ack_pending=max_ack_pending or 1000,
    )


class DeadLetters:
    """The dead-letter stream: what a consumer parked, with the original and the reason."""

    def __init__(self, js: JetStreamContext, settings: Settings) -> None:
        self.js = js
        self.subjects = settings.subjects

    async def park(self, consumer: str, msg: Msg, reason: str) -> None:
        meta = msg.metadata
        await self.js.publish(
            self.subjects.dead_letter(consumer),
            msg.data,
            stream=self.subjects.dead_letter_stream,
            headers={
                "Nats-Msg-Id": f"{consumer}:{meta.stream}:{meta.sequence.stream}",
                "Lapor-Consumer": consumer,
                "Lapor-Original-Subject": msg.subject,
                "Lapor-Original-Stream": meta.stream,
                "Lapor-Original-Sequence": str(meta.sequence.stream),
                "Lapor-Deliveries": str(meta.num_delivered),
                "Lapor-Reason": reason[:2000],
                **tracing.trace_headers(),
            },
        )
        dead_lettered(consumer)
        log.warning(
            "message dead-lettered", consumer=consumer, seq=meta.sequence.stream, reason=reason
        )


def retry_delay(settings: Settings, deliveries: int) -> float:
    """1 s, 2 s, 4 s ... capped at five minutes."""
    return min(settings.retry_base_delay_seconds * 2 ** max(deliveries - 1, 0), 300.0)


async def handle_reliably(
    msg: Msg,
    handler: Callable[[StoredEvent, Event], Awaitable[None]],
    *,
    consumer: str,
    dead_letters: DeadLetters,
    settings: Settings,
) -> None:
    """Run ``handler`` for one log message and settle it: ack on success, retry later on a
    passing failure, dead-letter on a permanent one or after ``max_deliver`` deliveries.

    The handler runs in a span continuing the trace the message carries in its headers,
    so the events it appends carry that trace on."""
    with tracing.consuming(
        consumer,
        msg.subject,
        msg.headers,
        seq=msg.metadata.sequence.stream,
        event_type=header(msg.headers, "Lapor-Event-Type"),
    ) as span:
        try:
            stored = StoredEvent.from_msg(msg)
            event = decode(stored.envelope)
            span.set_attribute("lapor.complaint_id", stored.envelope.complaint_id)
            with structlog.contextvars.bound_contextvars(
                complaint_id=stored.envelope.complaint_id,
                correlation_id=str(stored.envelope.correlation_id),
                event_type=stored.envelope.type,
            ):
                await handler(stored, event)
        except Exception as e:
            span.record_exception(e)
            span.set_status(Status(StatusCode.ERROR, describe_error(e)))
            await give_back(msg, e, consumer=consumer, dead_letters=dead_letters, settings=settings)
        else:
            await msg.ack()
            event_handled(consumer, OK)


async def give_back(
    msg: Msg, error: Exception, *, consumer: str, dead_letters: DeadLetters, settings: Settings
) -> None:
    """Settle a message its handler failed on: dead-letter it if the error is permanent or
    after ``max_deliver`` deliveries, else have it redelivered after a growing delay."""
    deliveries = msg.metadata.num_delivered
    if isinstance(error, PERMANENT_ERRORS):
        await dead_letters.park(consumer, msg, describe_error(error))
        await msg.term()
        event_handled(consumer, DEAD_LETTERED)
    elif deliveries >= settings.max_deliver:
        reason = f"gave up after {deliveries}: {describe_error(error)}"
        await dead_letters.park(consumer, msg, reason)
        await msg.term()
        event_handled(consumer, DEAD_LETTERED)
    else:
        delay = retry_delay(settings, deliveries)
        log.warning("handler failed, will retry", consumer=consumer, error=repr(error), delay=delay)
        await msg.nak(delay=delay)
        event_handled(consumer, RETRIED)


def describe_error(error: BaseException) -> str:
    """The error in words, without the input: an event's text is citizens' data, and the
    reason is shown in health checks and logs."""
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in error.errors()
        )
        return f"ValidationError: {problems}"[:2000]
    return f"{type(error).__name__}: {error}"[:2000]
