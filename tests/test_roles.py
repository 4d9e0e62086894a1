"""Read apart from write (``LAPOR_ROLE``), on real NATS JetStream and PostgreSQL: a
service's roles run as separate processes (here separate apps), and a read API stays up
while the process that keeps its read model is away.

* tracker ``api`` + ``projector``: what the projector writes, the api reads; without the
  projector the api still answers reads and takes commands, the log keeps what waits, and
  a projector started again catches up; the api alone makes no durable consumer.
* analytics ``api`` + ``projector``: the same split.
* router ``routing`` + ``fanout``: routing appends ``complaint.routed`` (two instances
  route each complaint once); only fanout copies to the agency topics.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import nats
from nats.js import JetStreamContext

from lapor.analytics.app import create_app as analytics_app
from lapor.devtools.testing import ROAD, bearer, eventually, serving
from lapor.intake.app import create_app as intake_app
from lapor.router.app import create_app as router_app
from lapor.services.settings import Settings
from lapor.shared.events import ComplaintRouted
from lapor.tracker.app import create_app as tracker_app

WASTE = {
    "title": "Sampah menumpuk di TPS Jl. Merdeka",
    "body": "Sampah tidak diangkut sejak seminggu, bau menyengat sampai ke rumah warga.",
    "category": "sampah",
}


def as_role(settings: Settings, role: str) -> Settings:
    return settings.model_copy(update={"role": role})


@contextlib.asynccontextmanager
async def jetstream(settings: Settings) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(settings.nats_url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


async def durables(js: JetStreamContext, settings: Settings) -> set[str]:
    """The consumers on the log."""
    return {i.name for i in await js.consumers_info(settings.subjects.events_stream)}


async def status_of(api: httpx.AsyncClient, tracking_id: str, wanted: str) -> dict:
    async def probe() -> dict | None:
        r = await api.get(f"/complaints/{tracking_id}")
        return r.json() if r.status_code == 200 and r.json()["status"] == wanted else None

    return await eventually(probe)


async def test_tracker_api_reads_what_a_separate_projector_writes_and_outlives_it(settings):
    async with contextlib.AsyncExitStack() as stack:
        js = await stack.enter_async_context(jetstream(settings))
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        await stack.enter_async_context(serving(router_app(settings)))
        api = await stack.enter_async_context(serving(tracker_app(as_role(settings, "api"))))

        # The api alone: its own readiness, no read model and no consumer of the log.
        ready = await api.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["role"] == "api"
        assert ready.json()["checks"] == {"nats": "ok", "postgresql": "ok"}
        assert "projections" not in ready.json()
        road = (await intake.post("/complaints", json=ROAD)).json()["tracking_id"]
        assert await eventually(lambda: _has_routers(js, settings))
        assert "tracker_status" not in await durables(js, settings)
        assert (await api.get(f"/complaints/{road}")).status_code == 404  # nobody projects

        # A projector beside it: the api reads what it writes.
        async with serving(tracker_app(as_role(settings, "projector"))) as projector:
            status = await status_of(api, road, "disposed")
            assert status["opd"] == "dpupr"
            assert "tracker_status" in await durables(js, settings)
            # The projector serves health and metrics only, and reports its read model.
            assert (await projector.get(f"/complaints/{road}")).status_code == 404
            ready = (await projector.get("/health/ready")).json()
            assert ready["role"] == "projector"
            assert ready["projections"]["tracker.status"]["status"] == "ok"
            assert (await projector.get("/health/metrics")).status_code == 200

        # The projector is away: the api still answers reads and takes commands, while the
        # new events wait in the log for the projector.
        waste = (await intake.post("/complaints", json=WASTE)).json()["tracking_id"]
        officer = bearer(settings, "agency", "dpupr")
        r = await api.post(
            f"/agencies/dpupr/complaints/{road}/follow-ups",
            json={"message": "Tim sudah meninjau lokasi."},
            headers=officer,
        )
        assert r.status_code == 202, r.text

        async def waiting() -> int:
            info = await js.consumer_info(settings.subjects.events_stream, "tracker_status")
            # received, routed, disposed of the waste complaint, the follow-up
            return info.num_pending if info.num_pending >= 4 else 0

        assert await eventually(waiting) >= 4
        r = await api.get(f"/complaints/{road}")
        assert r.status_code == 200
        assert r.json()["status"] == "disposed"  # as last projected
        assert (await api.get(f"/complaints/{waste}")).status_code == 404
        assert (await api.get("/complaints")).status_code == 200
        ready = await api.get("/health/ready")
        assert (ready.status_code, ready.json()["status"]) == (200, "ready")

        # Started again, a projector catches up from where the last one stopped.
        async with serving(tracker_app(as_role(settings, "projector"))):
            assert (await status_of(api, waste, "disposed"))["opd"] == "dlh"
            status = await status_of(api, road, "in_progress")
            assert [h["event"] for h in status["history"]][-1] == "complaint.followed_up"


async def _has_routers(js: JetStreamContext, settings: Settings) -> bool:
    return {"router", "router_rerouting"} <= await durables(js, settings)


async def test_analytics_api_and_projector_split_the_same_way(settings):
    async with contextlib.AsyncExitStack() as stack:
        js = await stack.enter_async_context(jetstream(settings))
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        api = await stack.enter_async_context(serving(analytics_app(as_role(settings, "api"))))
        await intake.post("/complaints", json=ROAD)
        assert (await api.get("/metrics/completion")).json()["overall"]["received"] == 0
        assert not {"analytics_completion", "analytics_facts"} & await durables(js, settings)
        ready = (await api.get("/health/ready")).json()
        assert (ready["role"], ready["status"], "projections" in ready) == ("api", "ready", False)

        async with serving(analytics_app(as_role(settings, "projector"))) as projector:

            async def counted() -> int:
                r = await api.get("/metrics/completion")
                return r.json()["overall"]["received"]

            assert await eventually(counted) == 1
            assert (await projector.get("/metrics/completion")).status_code == 404
            assert {"analytics_completion", "analytics_facts"} <= await durables(js, settings)


async def test_router_routing_appends_decisions_and_only_fanout_copies_to_agencies(settings):
    subjects = settings.subjects
    routed = subjects.of_type(ComplaintRouted.TYPE)

    async def routed_per_complaint(js: JetStreamContext) -> dict[str, int]:
        info = await js.stream_info(subjects.events_stream, subjects_filter=routed)
        return info.state.subjects or {}

    async def agency_copies(js: JetStreamContext) -> int:
        return (await js.stream_info(subjects.agency_stream)).state.messages

    async with contextlib.AsyncExitStack() as stack:
        js = await stack.enter_async_context(jetstream(settings))
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        # Two routing instances share the routing consumers.
        routing = as_role(settings, "routing")
        for _ in range(2):
            ready = await stack.enter_async_context(serving(router_app(routing)))
        assert (await ready.get("/health/ready")).json()["role"] == "routing"

        complaints = [ROAD, WASTE] * 4
        ids = [(await intake.post("/complaints", json=c)).json()["tracking_id"] for c in complaints]

        async def all_routed() -> dict[str, int]:
            found = await routed_per_complaint(js)
            return found if len(found) == len(ids) else {}

        found = await eventually(all_routed)
        assert found == {subjects.complaint(i, ComplaintRouted.TYPE): 1 for i in ids}
        assert await agency_copies(js) == 0
        assert "agency_fanout" not in await durables(js, settings)

        # The fan-out alone copies the log to the agency topics; it routes nothing.
        async with serving(router_app(as_role(settings, "fanout"))) as fanout:
            assert (await fanout.get("/health/ready")).json()["role"] == "fanout"

            async def dpupr_copies() -> int:
                info = await js.stream_info(
                    subjects.agency_stream, subjects_filter=subjects.agency_all("dpupr")
                )
                return info.state.messages

            assert await eventually(dpupr_copies) >= 4
            assert await routed_per_complaint(js) == found
            assert "agency_fanout" in await durables(js, settings)
