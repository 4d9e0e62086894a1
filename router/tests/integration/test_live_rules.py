"""An operator's change of the routing rules takes effect in a running router, without a
redeploy, and each decision names the rules it was made with (real NATS JetStream)."""

from __future__ import annotations

import contextlib

import nats

from lapor.devtools.testing import eventually, serving
from lapor.intake.app import create_app as intake_app
from lapor.router.app import create_app as router_app
from lapor.router.domain import RoutingTable
from lapor.router.rules_store import RulesStore
from lapor.services.eventstore import EventStore
from lapor.shared.envelope import decode
from lapor.shared.events import ComplaintRouted

PARKING = {
    "title": "Parkir liar di depan pasar",
    "body": "Setiap sore juru parkir liar memungut bayaran tanpa karcis di depan pasar.",
    "category": "parkir",
}


async def routed_to(store: EventStore, tracking_id: str) -> ComplaintRouted | None:
    last = await store.last(tracking_id, ComplaintRouted.TYPE)
    return decode(last.envelope) if last else None  # type: ignore[return-value]


async def test_a_published_table_routes_the_next_complaint(settings):
    # The rules alone: with a model, what its training learned also weighs (see
    # test_router_learning for models).
    settings = settings.model_copy(update={"routing_model": "none"})
    packaged = RoutingTable.load()
    text = packaged_text()
    # The operator moves parking complaints to the public order unit.
    changed = text.replace('"parkir", ', "", 1).replace(
        'categories = ["ketertiban_umum"', 'categories = ["parkir", "ketertiban_umum"', 1
    )
    changed = changed.replace(
        f'version = "{packaged.version.split("+")[0]}"', 'version = "2099.1.1"', 1
    )
    assert RoutingTable.from_text(changed).version.startswith("2099.1.1")

    nc = await nats.connect(settings.nats_url)
    js, store = nc.jetstream(), EventStore(nc.jetstream(), settings.subjects)
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        await stack.enter_async_context(serving(router_app(settings)))

        before = (await intake.post("/complaints", json=PARKING)).json()["tracking_id"]
        first = await eventually(lambda: routed_to(store, before))
        assert first.opd == "dishub" and first.rules_version == packaged.version

        bucket = settings.subjects.routing_rules_bucket
        await RulesStore.publish(js, changed, bucket=bucket, author="Admin Diskominfo")

        async def routed_by_new_rules():
            tid = (await intake.post("/complaints", json=PARKING)).json()["tracking_id"]
            routed = await eventually(lambda: routed_to(store, tid))
            return routed if routed.rules_version.startswith("2099.1.1") else None

        after = await eventually(routed_by_new_rules)
        assert after.opd == "satpolpp"
        [change] = await RulesStore.changes(js, bucket)
        assert change.author == "Admin Diskominfo"
    await nc.close()


def packaged_text() -> str:
    from importlib.resources import files

    return files("lapor.router").joinpath("routing_table.toml").read_text("utf-8")
