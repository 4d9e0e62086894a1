"""Router handlers.

* ``route``: on ``ComplaintReceived`` and on ``AuthorityDeclined`` (Bukan Wewenang), decide
  the authorized OPD with the units that declined excluded, append ``ComplaintRouted``
  (the proposal), and, when the proposal is confident enough, ``ComplaintDisposed``.
* ``fan_out``: follows the whole log in order and copies to each agency's topic every event
  that concerns it, without reporter identity (which is never in the log).

Redelivery is harmless: event ids are derived from the triggering event's id and appends
carry the complaint's expected last sequence, so a second attempt finds its own events
in the log instead of appending them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import structlog
from faststream import AckPolicy
from faststream.nats import JStream, PullSub
from faststream.nats.annotations import NatsMessage
from nats.aio.msg import Msg

from lapor.router.domain import Decision, RoutingTable
from lapor.router.rules_store import RulesStore
from lapor.services.consumers import consumer_config, handle_reliably
from lapor.services.eventstore import ConcurrencyError, EventStore, StoredEvent
from lapor.services.projections import LogFollower
from lapor.services.runtime import Runtime
from lapor.shared.envelope import Envelope, Event, decode, derived_event_id, envelope
from lapor.shared.events import (
    Actor,
    AuthorityDeclined,
    ComplaintArchived,
    ComplaintAssigned,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintRouted,
    DeadlineBreached,
)

log = structlog.get_logger(__name__)

APPEND_ATTEMPTS = 5
ROUTER = Actor(role="system", name="router")


async def route_complaint(
    store: EventStore, table: RoutingTable, trigger: StoredEvent, auto_dispose: float
) -> Decision | None:
    """Route (or re-route) the complaint ``trigger`` belongs to; None if that is moot."""
    complaint_id = trigger.envelope.complaint_id
    routed_id = derived_event_id(trigger.envelope.event_id, "routed")
    disposed_id = derived_event_id(trigger.envelope.event_id, "disposed")
    for _ in range(APPEND_ATTEMPTS):
        history = await store.load(complaint_id)
        events = [(s, decode(s.envelope)) for s in history]
        received = next((e for _, e in events if isinstance(e, ComplaintReceived)), None)
        if received is None or _settled_after(events, trigger.seq):
            return None
        declined = frozenset(e.opd for _, e in events if isinstance(e, AuthorityDeclined))
        decision = table.decide(received, exclude=declined)
        ids = {s.envelope.event_id for s in history}
        try:
            if routed_id not in ids:
                await store.append(
                    _env(routed_event(decision), trigger, routed_id), history[-1].seq
                )
                log.info("complaint routed", opd=decision.opd, rule=decision.rule)
            if decision.confidence >= auto_dispose and disposed_id not in ids:
                last = await store.last(complaint_id)
                disposed = ComplaintDisposed(
                    opd=decision.opd, opd_name=decision.opd_name, by=ROUTER, automatic=True
                )
                await store.append(_env(disposed, trigger, disposed_id), last.seq)
                log.info("complaint disposed automatically", opd=decision.opd)
            return decision
        except ConcurrencyError:
            continue  # someone appended meanwhile: look again
    raise RuntimeError(f"{complaint_id}: could not append the routing")


def _settled_after(events: list[tuple[StoredEvent, Event]], seq: int) -> bool:
    """Whether the complaint was disposed or archived after the trigger, by anyone."""
    return any(
        isinstance(e, ComplaintDisposed | ComplaintArchived) and s.seq > seq for s, e in events
    )


def routed_event(decision: Decision) -> ComplaintRouted:
    return ComplaintRouted(
        opd=decision.opd,
        opd_name=decision.opd_name,
        rule=decision.rule,
        reason=decision.reason,
        confidence=decision.confidence,
        rules_version=decision.rules_version,
        excluded=sorted(decision.excluded),
        level=decision.level,
    )


def _env(event: Event, trigger: StoredEvent, event_id: uuid.UUID) -> Envelope:
    return envelope(
        event,
        complaint_id=trigger.envelope.complaint_id,
        correlation_id=trigger.envelope.correlation_id,
        causation_id=trigger.envelope.event_id,
        event_id=event_id,
    )


# --- agency topics ------------------------------------------------------------------


async def fan_out(store: EventStore, stored: StoredEvent, event: Event, coordinator: str) -> int:
    """Copy ``event`` to the topic of each agency it concerns; returns how many copies."""
    history = [s for s in await store.load(stored.envelope.complaint_id) if s.seq <= stored.seq]
    owner = _owner_before(history, stored.seq)
    targets: list[tuple[str, Envelope]] = []
    match event:
        case ComplaintDisposed(opd=opd):
            received = decode(history[0].envelope)  # a complaint's first event
            assert isinstance(received, ComplaintReceived)
            targets.append((opd, _assignment(received, event, stored)))
        case AuthorityDeclined(opd=opd):
            targets.append((opd, stored.envelope))  # taken away from it
        case ComplaintRouted() | ComplaintReceived():
            pass  # not yet any agency's business
        case DeadlineBreached(escalated_to=coordinator_code):
            if owner:
                targets.append((owner, stored.envelope))
            targets.append((coordinator_code, stored.envelope))
        case _:
            if owner:
                targets.append((owner, stored.envelope))
    subjects = store.subjects
    for opd, env in targets:
        await store.publish(
            subjects.agency(opd, env.type),
            env.model_copy(update={"event_id": derived_event_id(stored.envelope.event_id, opd)}),
            subjects.agency_stream,
            headers={"Lapor-Log-Sequence": str(stored.seq)},
        )
    return len(targets)


def _owner_before(history: list[StoredEvent], seq: int) -> str | None:
    """The unit the complaint was disposed to just before ``seq``."""
    owner = None
    for s in history:
        if s.seq >= seq:
            break
        match decode(s.envelope):
            case ComplaintDisposed(opd=opd):
                owner = opd
            case AuthorityDeclined():
                owner = None
    return owner


def _assignment(
    received: ComplaintReceived, disposed: ComplaintDisposed, stored: StoredEvent
) -> Envelope:
    """The agency's copy of a complaint disposed to it: content, never identity."""
    copy = ComplaintAssigned(
        opd=disposed.opd,
        report_type=received.report_type,
        channel=received.channel,
        title=received.title,
        body=received.body,
        category=received.category,
        location=received.location,
        incident_date=received.incident_date,
        confidential=received.confidential,
        reason=f"Disposed to {disposed.opd_name}",
    )
    return envelope(
        copy,
        complaint_id=stored.envelope.complaint_id,
        correlation_id=stored.envelope.correlation_id,
        causation_id=stored.envelope.event_id,
        occurred_at=stored.envelope.occurred_at,
    )


# --- wiring -------------------------------------------------------------------------


class LiveRules:
    """The routing table in force; an operator's change (see ``rules_store``) replaces it
    without a redeploy."""

    def __init__(self, table: RoutingTable) -> None:
        self.table = table

    def replace(self, table: RoutingTable) -> None:
        log.info("routing rules changed", old=self.table.version, new=table.version)
        self.table = table


class RulesWatcher:
    """Keeps ``LiveRules`` on the latest table in the rules bucket."""

    def __init__(self, rt: Runtime, rules: LiveRules) -> None:
        self.rt, self.rules = rt, rules
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        watch = RulesStore.watch(
            self.rt.js, self.rt.settings.subjects.routing_rules_bucket, self.rules.replace
        )
        self._task = asyncio.create_task(watch, name="routing rules watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def register(rt: Runtime, rules: LiveRules) -> None:
    """Subscribe the router to new complaints and to "not our authority"."""
    for durable, event_type in (
        ("router", ComplaintReceived.TYPE),
        ("router_rerouting", AuthorityDeclined.TYPE),
    ):
        _subscribe_router(rt, rules, durable, rt.settings.subjects.of_type(event_type))


def _subscribe_router(rt: Runtime, rules: LiveRules, durable: str, subject: str) -> None:
    async def handle(stored: StoredEvent, event: Event) -> None:
        threshold = rt.settings.auto_dispose_confidence
        await route_complaint(rt.store, rules.table, stored, threshold)

    @rt.broker.subscriber(
        subject,
        stream=JStream(rt.settings.subjects.events_stream, declare=False),
        durable=durable,
        config=consumer_config(durable, subject, rt.settings),
        pull_sub=PullSub(batch_size=32, timeout=0.5),
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_trigger(msg: NatsMessage) -> None:
        await handle_reliably(
            msg.raw_message,
            handle,
            consumer=durable,
            dead_letters=rt.dead_letters,
            settings=rt.settings,
        )


def agency_fan_out(rt: Runtime, coordinator: str) -> LogFollower:
    """Copies to agency topics, in log order."""

    async def handle_batch(msgs: list[Msg]) -> None:
        for msg in msgs:

            async def copy(stored: StoredEvent, event: Event) -> None:
                await fan_out(rt.store, stored, event, coordinator)

            await handle_reliably(
                msg,
                copy,
                consumer="agency_fanout",
                dead_letters=rt.dead_letters,
                settings=rt.settings,
            )

    return LogFollower(rt, "agency_fanout", handle_batch)
