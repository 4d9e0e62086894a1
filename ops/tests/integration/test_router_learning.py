"""The router learns from the log (real NATS JetStream): a model trained on the human
decisions in the log is published, a running router picks it up and names it in its next
decision, and an operator rolls it back with one command."""

from __future__ import annotations

import contextlib
import uuid

import nats

from lapor.devtools.testing import eventually, serving
from lapor.intake.app import create_app as intake_app
from lapor.ops.commands.router import train_from_log
from lapor.router import corpus
from lapor.router.app import create_app as router_app
from lapor.router.model import shipped_model
from lapor.router.model_store import ModelStore
from lapor.services.commands import decide_and_append
from lapor.services.eventstore import EventStore
from lapor.shared.envelope import decode, envelope
from lapor.shared.events import Actor, ComplaintDisposed, ComplaintRouted, FollowUpPosted

ADMIN = Actor(role="admin", name="Admin Diskominfo")
# A kind of complaint the corpus never names, which this deployment's people send to the
# tourism office: what the log teaches.
KLOTOK = "Perahu klotok wisata susur sungai di dermaga tepian kapuas tidak laik, {}"
DETAILS = ["pelampung tidak ada", "mesin sering mati", "atap bocor", "tiket mahal sekali",
           "awak kasar", "jadwal tidak jelas"]  # fmt: skip


async def decided(store: EventStore, tracking_id: str, *events) -> None:
    """The coordinator's and the unit's decisions on a complaint, appended to the log."""

    def decide(now):
        correlation = now.last.envelope.correlation_id
        return [envelope(e, complaint_id=tracking_id, correlation_id=correlation) for e in events]

    await decide_and_append(store, tracking_id, decide, attempts=5)


async def routed(store: EventStore, tracking_id: str) -> ComplaintRouted | None:
    last = await store.last(tracking_id, ComplaintRouted.TYPE)
    return decode(last.envelope) if last else None  # type: ignore[return-value]


async def test_a_model_learned_from_the_log_is_used_then_rolled_back(settings):
    base = corpus.examples(corpus.development()[::6])  # a small start keeps it quick
    nc = await nats.connect(settings.nats_url)
    js, store = nc.jetstream(), EventStore(nc.jetstream(), settings.subjects)
    models = ModelStore(
        js,
        rules_bucket=settings.subjects.routing_rules_bucket,
        models_bucket=settings.subjects.routing_models_bucket,
    )
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        await stack.enter_async_context(serving(router_app(settings)))

        async def submit(detail: str) -> str:
            body = {"title": "Perahu klotok wisata", "body": KLOTOK.format(detail)}
            return (await intake.post("/complaints", json=body)).json()["tracking_id"]

        # The shipped model routes at first, and the people decide: the coordinator
        # disposes each to the tourism office, which acts on it.
        for detail in DETAILS:
            tid = await submit(detail)
            first = await eventually(lambda tid=tid: routed(store, tid))
            assert first.model_version == shipped_model().version
            await decided(
                store,
                tid,
                ComplaintDisposed(opd="disporapar", opd_name="-", by=ADMIN, automatic=False),
                FollowUpPosted(opd="disporapar", message="Sudah kami periksa ke dermaga."),
            )

        learned = await train_from_log(js, settings, seed=0, base=base)
        assert learned.info["sources"] == {"acted": len(DETAILS), "corpus": len(base)}
        # Deterministic: the same log and seed give the same model.
        assert (await train_from_log(js, settings, seed=0, base=base)).version == learned.version
        without_log = await train_from_log(js, settings, seed=0, base=base[:-1])
        assert without_log.version != learned.version

        await models.publish(without_log, author="Admin Diskominfo")
        record = await models.publish(learned, author="Admin Diskominfo")
        assert record.version == learned.version

        async def decided_by(version: str) -> ComplaintRouted | None:
            decision = await eventually(lambda: _route(store, submit, "pelampung hilang"))
            return decision if decision.model_version == version else None

        after = await eventually(lambda: decided_by(learned.version))
        assert after.opd == "disporapar"
        assert after.candidates and after.candidates[0].opd == "disporapar"

        back = await models.rollback(author="Admin Diskominfo")
        assert back.version == without_log.version
        await eventually(lambda: decided_by(without_log.version))
        history = [r.version for r in await models.history()]
        assert history == [without_log.version, learned.version, without_log.version]
    await nc.close()


async def _route(store: EventStore, submit, detail: str) -> ComplaintRouted | None:
    tid = await submit(f"{detail} {uuid.uuid4().hex[:6]}")
    return await eventually(lambda: routed(store, tid))
