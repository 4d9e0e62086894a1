"""What a command on one complaint costs on a log of a given size, measured in this process
through the functions the services call (their public signatures only, so the figures
follow whatever those functions do when the benchmark runs):

* the router's decision path, ``lapor.router.handlers.route_complaint``, for complaints
  just received (as the router meets them): it reads what it needs of the complaint,
  decides with the rules and the shipped model (as ``lapor serve router`` starts), and
  appends ``ComplaintRouted`` (and ``ComplaintDisposed`` when confident);
* a tracker action, ``lapor.services.commands.decide_and_append`` with a decision made by
  ``lapor.tracker.domain`` on the complaint's life as the tracker's API takes it (from the
  snapshot it is handed, or folded from the history where the code hands that): the
  reporter rates a closed complaint, one event, on complaints spread over the whole log,
  old and new.

Each call runs alone (one after another), so its wall time is its latency and the
process's CPU time around it is its own; nats-server's CPU over all the calls is divided
among them by the caller.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import nats
from workload import demo_complaints

from lapor.router.domain import RoutingTable
from lapor.router.handlers import LiveRules, route_complaint
from lapor.router.model import shipped_model
from lapor.services.commands import decide_and_append
from lapor.services.eventstore import EventStore
from lapor.services.settings import Settings
from lapor.shared.envelope import Envelope, decode, envelope
from lapor.shared.events import Actor, ComplaintReceived
from lapor.shared.lifecycle import Lifecycle, evolve
from lapor.shared.tracking import new_tracking_id
from lapor.tracker import domain

try:
    from lapor.shared import snapshot as snapshots
except ImportError:  # events carry no state
    snapshots = None

WARM_UP = 20


def life_of(seen: Any) -> Lifecycle | None:
    """The complaint's life from what ``decide_and_append`` hands a decision: the complaint
    as it stands (its snapshot's life), or its history (folded, as the tracker's API did
    before snapshots)."""
    if isinstance(seen, list):
        life: Lifecycle | None = None
        for stored in seen:
            env = stored.envelope
            life = evolve(life, decode(env), env.complaint_id, env.occurred_at)
        return life
    snapshot = getattr(seen, "snapshot", None)
    return snapshot.life if snapshot is not None else None


def intake_headers(received: ComplaintReceived, env: Envelope) -> dict[str, str]:
    """The headers intake adds to a complaint's first event (its first snapshot)."""
    if snapshots is None:
        return {}
    return snapshots.headers(snapshots.after(None, received, env, 0))


def _timed(samples: list[tuple[float, float]]) -> dict[str, Any]:
    wall = sorted(w * 1000 for w, _ in samples)
    cpu = [c * 1000 for _, c in samples]
    n = len(wall)

    def at(q: float) -> float:
        return wall[max(0, min(n - 1, round(q / 100 * n + 0.5) - 1))] if n else float("nan")

    return {
        "calls": n,
        "wall_ms": {"p50": at(50), "p90": at(90), "p99": at(99), "max": wall[-1] if n else None},
        "process_cpu_ms_per_call": sum(cpu) / n if n else float("nan"),
    }


async def route_costs(settings: Settings, count: int, warm_up: int = WARM_UP) -> dict[str, Any]:
    """Append ``count`` (+ ``warm_up``, not counted) new complaints' ``ComplaintReceived``
    as intake does (its own ``EventStore``), then route each with the router's own store
    and rules: latency and this process's CPU per complaint, and what was decided."""
    table = RoutingTable.load(deployment=settings.deployment)
    model = shipped_model() if settings.routing_model == "shipped" else None
    rules = LiveRules(table, model)
    templates = demo_complaints()
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream(timeout=120)
        intake, router = EventStore(js, settings.subjects), EventStore(js, settings.subjects)
        triggers = []
        for i in range(count + warm_up):
            fields = {k: v for k, v in templates[i % len(templates)].items() if k != "reporter"}
            received = ComplaintReceived(**fields)
            env = envelope(received, complaint_id=new_tracking_id(), correlation_id=uuid.uuid4())
            headers = intake_headers(received, env)
            seq = await intake.append(env, expected_last_seq=0, headers=headers)
            # As the router's consumer is delivered it: with every header the append wrote
            # (its chain hash too, which the router's append links to without a read).
            stored = await intake.at(seq)
            assert stored is not None
            triggers.append(stored)
        samples = []
        decided: dict[str, int] = {}
        for n, trigger in enumerate(triggers):
            wall, cpu = time.perf_counter(), time.process_time()
            decision = await route_complaint(
                router, rules.router, trigger, settings.auto_dispose_confidence
            )
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if n >= warm_up:
                samples.append((wall, cpu))
                outcome = "none" if decision is None else decision.rule.split(":")[0]
                decided[outcome] = decided.get(outcome, 0) + 1
        return {
            **_timed(samples),
            "model": model.version if model else None,
            "auto_dispose_confidence": settings.auto_dispose_confidence,
            "decided_by": decided,
        }
    finally:
        await nc.close()


async def action_costs(
    settings: Settings, complaint_ids: list[str], warm_up: Sequence[str] = ()
) -> dict[str, Any]:
    """The reporter rates each of ``complaint_ids`` (closed complaints of the log) through
    ``decide_and_append`` as the tracker's API decides, after the same on ``warm_up``
    (not counted): latency and this process's CPU per action, and how many events each
    decision was made on (where the code hands it the history)."""
    reporter = Actor(role="reporter")
    command = domain.rate(5, "Cepat ditangani, terima kasih.")
    nc = await nats.connect(settings.nats_url)
    try:
        store = EventStore(nc.jetstream(timeout=120), settings.subjects)
        samples = []
        read: list[int] = []
        refused: dict[str, int] = {}
        counted = len(warm_up)
        for n, complaint_id in enumerate([*warm_up, *complaint_ids]):
            correlation = uuid.uuid4()

            def decide(
                seen: Any, cid: str = complaint_id, cor: uuid.UUID = correlation
            ) -> list[Envelope]:
                event = domain.decide(life_of(seen), reporter, command)
                return [envelope(event, complaint_id=cid, correlation_id=cor)]

            wall, cpu = time.perf_counter(), time.process_time()
            try:
                done = await decide_and_append(store, complaint_id, decide)
            except (domain.NotFound, domain.NotAllowed, domain.Forbidden) as e:
                refused[type(e).__name__] = refused.get(type(e).__name__, 0) + 1
                continue
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if n >= counted:
                samples.append((wall, cpu))
                history = getattr(done, "history", None)  # before snapshots
                if history is not None:
                    read.append(len(history))
        return {
            **_timed(samples),
            "action": "rate (reporter), on a closed complaint",
            "events_read_per_action": sum(read) / len(read) if read else None,
            "refused": refused,
        }
    finally:
        await nc.close()
