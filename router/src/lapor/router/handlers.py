"""Router handlers.

* ``route``: on ``ComplaintReceived`` and on ``AuthorityDeclined`` (Bukan Wewenang), decide
  the authorized OPD with the units that declined excluded, append ``ComplaintRouted``
  (the proposal), and, when the proposal is confident enough, ``ComplaintDisposed``.

The agency topics are kept by ``lapor.router.fanout``.

Redelivery is harmless: event ids are derived from the triggering event's id and appends
carry the complaint's expected last sequence, so a second attempt finds its own events
in the log instead of appending them again.
"""

from __future__ import annotations

import asyncio
import uuid

import structlog
from faststream import AckPolicy
from faststream.nats import JStream, PullSub
from faststream.nats.annotations import NatsMessage

from lapor.router.domain import Decision, RoutingTable
from lapor.router.model import TextModel
from lapor.router.model_store import ModelStore
from lapor.router.routing import Router, named_unit
from lapor.router.rules_store import RulesStore
from lapor.services.commands import Latest, decide_and_append
from lapor.services.consumers import consumer_config, handle_reliably
from lapor.services.eventstore import EventStore, StoredEvent
from lapor.services.runtime import Runtime
from lapor.services.tasks import cancel_and_wait
from lapor.shared import snapshot as snapshots
from lapor.shared.envelope import Envelope, Event, decode, derived_event_id, envelope
from lapor.shared.events import (
    Actor,
    AuthorityDeclined,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintRouted,
    RoutingCandidate,
)

log = structlog.get_logger(__name__)

APPEND_ATTEMPTS = 5
ROUTER = Actor(role="system", name="router")


async def route_complaint(
    store: EventStore, router: Router | RoutingTable, trigger: StoredEvent, auto_dispose: float
) -> Decision | None:
    """Route (or re-route) the complaint ``trigger`` belongs to; None if that is moot.

    ``router``: the rules and model to decide with (a bare table decides by rules alone).
    Decided on the complaint as it stands (the snapshot the trigger carries while the
    trigger is its last event, else its last event's) and its content (the trigger itself,
    or its ``complaint.received`` read by its literal subject): never on its history, so
    the cost does not grow with the log.
    """
    if isinstance(router, RoutingTable):
        router = Router(router)
    complaint_id = trigger.envelope.complaint_id
    received = await _content(store, trigger)
    if received is None:
        return None
    routed_id = derived_event_id(trigger.envelope.event_id, "routed")
    disposed_id = derived_event_id(trigger.envelope.event_id, "disposed")
    decided: list[Decision] = []

    def decide(now: Latest) -> list[Envelope]:
        decided.clear()
        state = now.snapshot
        if state is None or state.settled_after >= trigger.seq:
            return []  # disposed or archived after the trigger, by anyone
        # The units the declining officers named, latest first: picked, or in the reason.
        referred = tuple(
            code
            for d in reversed(state.declines)
            if (code := d.suggested_opd or named_unit(router.table, d.reason, d.opd))
        )
        decision = router.decide(
            received, exclude=frozenset(state.life.declined_by), referred=referred
        )
        decided.append(decision)
        # What an earlier delivery of the same trigger appended is not appended again (its
        # disposition, if any, settled the complaint after the trigger: see above).
        wanted = []
        if str(routed_id) not in state.routed:
            wanted.append(_env(routed_event(decision), trigger, routed_id))
        if decision.confidence >= auto_dispose:
            disposed = ComplaintDisposed(
                opd=decision.opd, opd_name=decision.opd_name, by=ROUTER, automatic=True
            )
            wanted.append(_env(disposed, trigger, disposed_id))
        return wanted

    # Most triggers are still the complaint's last event: decided on the state they carry,
    # with no read; a trigger the complaint has moved past is refused and read again.
    carried = snapshots.from_headers(trigger.headers)
    first = Latest(trigger, carried) if carried is not None else None
    done = await decide_and_append(
        store, complaint_id, decide, attempts=APPEND_ATTEMPTS + (first is not None), first=first
    )
    if not decided:
        return None
    decision = decided[0]
    if done.appended:
        types = [stored.envelope.type for stored in done.appended]
        log.info("complaint routed", opd=decision.opd, rule=decision.rule, appended=types)
    return decision


async def _content(store: EventStore, trigger: StoredEvent) -> ComplaintReceived | None:
    """What the complaint says: the trigger if it is the complaint's first event, else that
    event, read by its literal subject (one read, wherever it is in the log)."""
    if trigger.envelope.type == ComplaintReceived.TYPE:
        event = decode(trigger.envelope)
    else:
        first = await store.last(trigger.envelope.complaint_id, ComplaintReceived.TYPE)
        event = decode(first.envelope) if first is not None else None
    return event if isinstance(event, ComplaintReceived) else None


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
        candidates=[
            RoutingCandidate(opd=c.opd, probability=c.probability) for c in decision.candidates
        ],
        model_version=decision.model_version,
    )


def _env(event: Event, trigger: StoredEvent, event_id: uuid.UUID) -> Envelope:
    return envelope(
        event,
        complaint_id=trigger.envelope.complaint_id,
        correlation_id=trigger.envelope.correlation_id,
        causation_id=trigger.envelope.event_id,
        event_id=event_id,
    )


# --- wiring -------------------------------------------------------------------------


class LiveRules:
    """The routing table and model in force; an operator's change of either (see
    ``rules_store`` and ``model_store``) replaces it without a redeploy."""

    def __init__(self, table: RoutingTable, model: TextModel | None = None) -> None:
        self.router = Router(table, model)

    @property
    def table(self) -> RoutingTable:
        return self.router.table

    def replace(self, table: RoutingTable) -> None:
        log.info("routing rules changed", old=self.table.version, new=table.version)
        self.router = Router(table, self.router.model)

    def use_model(self, model: TextModel) -> None:
        old = self.router.model.version if self.router.model else None
        log.info("routing model changed", old=old, new=model.version)
        self.router = Router(self.router.table, model)


class RulesWatcher:
    """Keeps ``LiveRules`` on the latest table and model of the rules bucket."""

    def __init__(self, rt: Runtime, rules: LiveRules) -> None:
        self.rt, self.rules = rt, rules
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        subjects = self.rt.settings.subjects
        watch = RulesStore.watch(
            self.rt.js,
            subjects.routing_rules_bucket,
            self.rules.replace,
            deployment=self.rt.settings.deployment,
        )
        models = ModelStore(
            self.rt.js,
            rules_bucket=subjects.routing_rules_bucket,
            models_bucket=subjects.routing_models_bucket,
        )
        self._tasks = [
            asyncio.create_task(watch, name="routing rules watcher"),
            asyncio.create_task(models.watch(self.rules.use_model), name="routing model watcher"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)


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
        await route_complaint(rt.store, rules.router, stored, threshold)

    @rt.broker.subscriber(
        subject,
        stream=JStream(rt.settings.subjects.events_stream, declare=False),
        durable=durable,
        config=consumer_config(durable, subject, rt.settings),
        pull_sub=PullSub(batch_size=32, timeout=0.5),
        # Different complaints are routed at once; two triggers of one complaint cannot
        # both append (expected last sequence), the loser looks again.
        max_workers=rt.settings.router_concurrency,
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_trigger() -> None:
        # The message from FastStream's context, not from an annotated parameter: its
        # dependency injection resolves such a parameter in a worker thread per message.
        msg: NatsMessage = rt.broker.context.get_local("message")
        await handle_reliably(
            msg.raw_message,
            handle,
            consumer=durable,
            dead_letters=rt.dead_letters,
            settings=rt.settings,
        )
