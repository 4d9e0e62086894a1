"""Router handlers: ``ComplaintReceived`` in, ``ComplaintRouted`` to the log and the
agency's copy to its own topic out.

Redelivery is harmless: the routed event's id is derived from the received event's, and
it is appended with the complaint's expected last sequence, so a second attempt either
de-duplicates or finds the routing already in the log.
"""

from __future__ import annotations

import uuid

import structlog
from faststream import AckPolicy
from faststream.nats import JStream, PullSub
from faststream.nats.annotations import NatsMessage

from lapor.router.domain import Decision, RoutingTable
from lapor.services.consumers import consumer_config, handle_reliably
from lapor.services.eventstore import ConcurrencyError, EventStore, StoredEvent
from lapor.services.runtime import Runtime
from lapor.shared.envelope import Event, derived_event_id, envelope
from lapor.shared.events import ComplaintAssigned, ComplaintReceived, ComplaintRouted

log = structlog.get_logger(__name__)

CONSUMER = "router"
APPEND_ATTEMPTS = 5


async def route_complaint(
    store: EventStore, table: RoutingTable, stored: StoredEvent, received: ComplaintReceived
) -> ComplaintRouted:
    """Decide the authorized OPD, append the decision once, and notify that agency."""
    decision = table.decide(received)
    routed = routed_event(decision)
    env = envelope(
        routed,
        complaint_id=stored.envelope.complaint_id,
        correlation_id=stored.envelope.correlation_id,
        causation_id=stored.envelope.event_id,
        event_id=derived_event_id(stored.envelope.event_id, "routed"),
    )
    expected = stored.seq
    for _ in range(APPEND_ATTEMPTS):
        try:
            await store.append(env, expected_last_seq=expected)
            log.info("complaint routed", opd=decision.opd, rule=decision.rule)
            break
        except ConcurrencyError:
            history = await store.load(env.complaint_id)
            if any(e.envelope.event_id == env.event_id for e in history):
                log.info("routing already in the log (redelivery)")
                break
            expected = history[-1].seq  # something else was appended meanwhile
    else:
        raise RuntimeError(f"could not append the routing after {APPEND_ATTEMPTS} attempts")
    await notify_agency(store, received, routed, env.complaint_id, env.event_id)
    return routed


def routed_event(decision: Decision) -> ComplaintRouted:
    return ComplaintRouted(
        opd=decision.opd,
        opd_name=decision.opd_name,
        rule=decision.rule,
        reason=decision.reason,
        confidence=decision.confidence,
        rules_version=decision.rules_version,
    )


async def notify_agency(
    store: EventStore,
    received: ComplaintReceived,
    routed: ComplaintRouted,
    complaint_id: str,
    routed_id: uuid.UUID,
) -> None:
    """Publish the agency's copy: the complaint's content, never the reporter's identity
    (which is not in the log in the first place)."""
    copy = ComplaintAssigned(
        opd=routed.opd,
        report_type=received.report_type,
        channel=received.channel,
        title=received.title,
        body=received.body,
        category=received.category,
        location=received.location,
        incident_date=received.incident_date,
        confidential=received.confidential,
        reason=routed.reason,
    )
    env = envelope(
        copy,
        complaint_id=complaint_id,
        correlation_id=routed_id,
        causation_id=routed_id,
        event_id=derived_event_id(routed_id, "agency"),
    )
    subjects = store.subjects
    await store.publish(
        subjects.agency(routed.opd, "complaint_assigned"), env, subjects.agency_stream
    )


def register(rt: Runtime, table: RoutingTable) -> None:
    """Subscribe the router to every complaint's ``complaint.received`` event."""
    subjects = rt.settings.subjects
    subject = subjects.of_type(ComplaintReceived.TYPE)

    @rt.broker.subscriber(
        subject,
        stream=JStream(subjects.events_stream, declare=False),
        durable=CONSUMER,
        config=consumer_config(CONSUMER, subject, rt.settings),
        pull_sub=PullSub(batch_size=32, timeout=0.5),
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_received(msg: NatsMessage) -> None:
        async def handle(stored: StoredEvent, event: Event) -> None:
            assert isinstance(event, ComplaintReceived)
            await route_complaint(rt.store, table, stored, event)

        await handle_reliably(
            msg.raw_message,
            handle,
            consumer=CONSUMER,
            dead_letters=rt.dead_letters,
            settings=rt.settings,
        )
