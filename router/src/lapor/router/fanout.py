"""The agency topics: each unit's copy of every event that concerns it, in log order.

One follower reads the whole log in order (see ``LogFollower``) and copies to
``<root>.agency.<opd>.<event>`` what a unit must know, as ``lapor.shared.audience`` says:
the assignment with the complaint's content (never the reporter's identity, which is never
in the log), the follow-ups, replies, ratings, holds and deadline notices of complaints it
holds, and the notice when a complaint is taken away from it; deadline breaches go to the
coordinator too.

Which unit holds a complaint, and its content, are remembered per complaint as the log
goes by, so that an event costs no read of the log; a complaint not remembered (after a
restart, or forgotten to bound memory) costs two reads: the snapshot its previous event
carries (``lapor.shared.snapshot``) and its content, whatever its history (its history is
read only for events written before snapshots). A batch's copies are published together
and their acknowledgements awaited together.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

from nats.aio.msg import Msg

from lapor.services.consumers import give_back
from lapor.services.eventstore import EventStore, StoredEvent, header
from lapor.services.follower import LogFollower
from lapor.services.observability import event_handled
from lapor.services.runtime import Runtime
from lapor.services.tracing import consuming
from lapor.shared import snapshot as snapshots
from lapor.shared.audience import Copy, told
from lapor.shared.envelope import Envelope, Event, decode, derived_event_id, envelope
from lapor.shared.events import ComplaintAssigned, ComplaintDisposed, ComplaintReceived
from lapor.shared.lifecycle import Lifecycle, evolve

DURABLE = "agency_fanout"
REMEMBERED_COMPLAINTS = 50_000


@dataclass(frozen=True)
class Concern:
    """What the fan-out knows of a complaint after the event at ``seq``: its content (for
    the copy a unit gets when it is disposed to) and its life (whose it is)."""

    seq: int
    received: ComplaintReceived | None = None
    life: Lifecycle | None = None

    def after(self, stored: StoredEvent, event: Event) -> Concern:
        env = stored.envelope
        received = event if isinstance(event, ComplaintReceived) else self.received
        life = evolve(self.life, event, env.complaint_id, env.occurred_at)
        return Concern(stored.seq, received, life)


def copies(concern: Concern, stored: StoredEvent, event: Event) -> list[tuple[str, Envelope]]:
    """(unit, envelope) for each copy of ``event``, given the complaint before it: who is
    told is part of what the event means (``lapor.shared.audience``)."""
    found = []
    for unit, what in told(concern.life, event):
        if what is Copy.EVENT:
            found.append((unit, stored.envelope))
        elif concern.received is None:
            raise RuntimeError(f"{stored.envelope.complaint_id}: disposed before received")
        else:
            assert isinstance(event, ComplaintDisposed)
            found.append((unit, _assignment(concern.received, event, stored)))
    return found


class AgencyFanOut:
    """Copies events to agency topics, remembering what each complaint's copies need."""

    def __init__(self, store: EventStore, remembered: int = REMEMBERED_COMPLAINTS) -> None:
        self.store = store
        self.remembered = remembered
        self._known: OrderedDict[str, Concern] = OrderedDict()

    async def copies_of(self, stored: StoredEvent, event: Event) -> list[tuple[str, Envelope]]:
        """The copies of ``event``; remembers the complaint as it is after it."""
        if isinstance(event, ComplaintReceived):
            concern = Concern(0)  # a complaint's first event: nothing came before it
        else:
            concern = await self._before(stored)
        found = copies(concern, stored, event)
        self._remember(stored.envelope.complaint_id, concern.after(stored, event))
        return found

    async def _before(self, stored: StoredEvent) -> Concern:
        complaint_id = stored.envelope.complaint_id
        known = self._known.get(complaint_id)
        if known is not None and known.seq < stored.seq:
            return known
        # Not remembered, or this is a redelivery of an event already seen: the complaint
        # as the event before it left it; else (no snapshot there) its history.
        carried = await self._carried(stored)
        if carried is not None:
            return carried
        concern = Concern(0)
        for earlier in await self.store.load(complaint_id):
            if earlier.seq >= stored.seq:
                break
            concern = concern.after(earlier, decode(earlier.envelope))
        return concern

    async def _carried(self, stored: StoredEvent) -> Concern | None:
        """The complaint before ``stored`` from the snapshot its previous event carries."""
        complaint_id, prev = stored.envelope.complaint_id, stored.previous_seq
        if not prev:
            return None
        earlier = await self.store.at(prev)
        if earlier is None or earlier.envelope.complaint_id != complaint_id:
            return None
        state = snapshots.from_headers(earlier.headers)
        first = await self.store.last(complaint_id, ComplaintReceived.TYPE)
        if state is None or first is None:
            return None
        received = decode(first.envelope)
        assert isinstance(received, ComplaintReceived)
        return Concern(prev, received, state.life)

    def _remember(self, complaint_id: str, concern: Concern) -> None:
        self._known[complaint_id] = concern
        self._known.move_to_end(complaint_id)
        while len(self._known) > self.remembered:
            self._known.popitem(last=False)


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


def agency_fan_out(rt: Runtime) -> LogFollower:
    """The follower that keeps the agency topics."""
    fanout = AgencyFanOut(rt.store)
    subjects, settings = rt.settings.subjects, rt.settings

    async def publish(stored: StoredEvent, event: Event) -> list[asyncio.Future]:
        futures = []
        for opd, env in await fanout.copies_of(stored, event):
            copy = env.model_copy(
                update={"event_id": derived_event_id(stored.envelope.event_id, opd)}
            )
            futures.append(
                await fanout.store.publish_pipelined(
                    subjects.agency(opd, copy.type),
                    copy,
                    subjects.agency_stream,
                    headers={"Lapor-Log-Sequence": str(stored.seq)},
                )
            )
        return futures

    async def handle_batch(msgs: list[Msg]) -> None:
        sent: list[tuple[Msg, list[asyncio.Future]]] = []
        for msg in msgs:
            try:
                # In the event's trace: the copies carry it on to the agencies.
                with consuming(
                    DURABLE,
                    msg.subject,
                    msg.headers,
                    seq=msg.metadata.sequence.stream,
                    event_type=header(msg.headers, "Lapor-Event-Type"),
                ):
                    stored = StoredEvent.from_msg(msg)
                    sent.append((msg, await publish(stored, decode(stored.envelope))))
            except Exception as e:
                await give_back(msg, e, **settle)
        for msg, futures in sent:
            try:
                await asyncio.wait_for(
                    asyncio.gather(*futures), timeout=settings.publish_timeout_seconds
                )
            except Exception as e:
                await give_back(msg, e, **settle)
            else:
                await msg.ack()
                event_handled(DURABLE)

    settle = {"consumer": DURABLE, "dead_letters": rt.dead_letters, "settings": settings}
    return LogFollower(rt.js, rt.settings, DURABLE, handle_batch)
