"""End to end across the four services on real NATS JetStream and PostgreSQL:
submit over HTTP -> disposed to the OPD -> the agency follows up and answers -> the
reporter confirms -> counted; and "not our authority" re-routes to another level."""

from __future__ import annotations

import contextlib

import httpx

from lapor.analytics.app import create_app as analytics_app
from lapor.devtools.testing import bearer, eventually, serving
from lapor.intake.app import create_app as intake_app
from lapor.router.app import create_app as router_app
from lapor.tracker.app import create_app as tracker_app

ROAD = {
    "title": "Jalan berlubang di Jl. Tanjungpura",
    "body": "Lubang besar di depan pasar sudah dua minggu, membahayakan pengendara motor.",
    "category": "jalan",
    "anonymous": True,
    "reporter": {"name": "Siti Rahmawati", "phone": "+6281234567890"},
}
WASTE = {
    "title": "Sampah menumpuk di TPS Jl. Merdeka",
    "body": "Sampah tidak diangkut sejak seminggu, bau menyengat sampai ke rumah warga.",
    "category": "sampah",
}


@contextlib.asynccontextmanager
async def system(settings):
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        await stack.enter_async_context(serving(router_app(settings)))
        tracker = await stack.enter_async_context(serving(tracker_app(settings)))
        analytics = await stack.enter_async_context(serving(analytics_app(settings)))
        yield intake, tracker, analytics


async def status_when(tracker: httpx.AsyncClient, tracking_id: str, check) -> dict:
    async def probe():
        r = await tracker.get(f"/complaints/{tracking_id}")
        return r.json() if r.status_code == 200 and check(r.json()) else None

    return await eventually(probe)


async def test_complaint_is_disposed_followed_up_answered_confirmed_and_counted(settings):
    async with system(settings) as (intake, tracker, analytics):
        accepted = (await intake.post("/complaints", json=ROAD)).json()
        road, secret = accepted["tracking_id"], accepted["reporter_secret"]
        waste = (await intake.post("/complaints", json=WASTE)).json()["tracking_id"]

        status = await status_when(tracker, road, lambda s: s["status"] == "disposed")
        assert status["opd"] == "dpupr"
        assert status["status_label"] == "Belum Ditindaklanjuti"
        assert status["due_at"] is not None and status["overdue"] is False
        assert [h["event"] for h in status["history"]] == [
            "complaint.received",
            "complaint.routed",
            "complaint.disposed",
        ]
        assert (await status_when(tracker, waste, lambda s: s["opd"]))["opd"] == "dlh"

        officer = bearer(settings, "agency", "dpupr")
        base = f"/agencies/dpupr/complaints/{road}"
        r = await tracker.post(
            f"{base}/follow-ups", json={"message": "Tim sudah meninjau lokasi."}, headers=officer
        )
        assert r.status_code == 202, r.text
        r = await tracker.post(
            f"{base}/resolution", json={"resolution": "Lubang sudah ditambal."}, headers=officer
        )
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "answered"

        me = {"X-Reporter-Secret": secret}
        r = await tracker.post(f"/complaints/{road}/rating", json={"stars": 5}, headers=me)
        assert r.status_code == 202, r.text
        r = await tracker.post(f"/complaints/{road}/confirmation", headers=me)
        assert r.status_code == 202, r.text

        final = await status_when(tracker, road, lambda s: s["status"] == "closed")
        assert final["status_label"] == "Selesai"
        assert final["due_at"] is None
        assert [h["event"] for h in final["history"]][-4:] == [
            "complaint.followed_up",
            "complaint.resolved",
            "complaint.rated",
            "complaint.closed",
        ]

        async def counted():
            body = (await analytics.get("/metrics/completion")).json()
            return body if body["overall"]["resolved"] == 1 else None

        report = await eventually(counted)
        assert report["overall"] == {"received": 2, "resolved": 1, "completion_rate": "50.00"}
        per_opd = {row["opd"]: row for row in report["per_opd"]}
        assert per_opd["dpupr"]["completion_rate"] == "100.00"
        assert per_opd["dlh"]["resolved"] == 0


async def test_not_our_authority_goes_to_another_level_and_never_nowhere(settings):
    async with system(settings) as (intake, tracker, _):
        road = (await intake.post("/complaints", json=ROAD)).json()["tracking_id"]
        await status_when(tracker, road, lambda s: s["opd"] == "dpupr")

        r = await tracker.post(
            f"/agencies/dpupr/complaints/{road}/declination",
            json={"reason": "Ruas ini jalan provinsi, bukan jalan kota."},
            headers=bearer(settings, "agency", "dpupr"),
        )
        assert r.status_code == 202, r.text
        moved = await status_when(tracker, road, lambda s: s["opd"] not in (None, "dpupr"))
        assert moved["opd"] == "pemprov_kalbar"  # the next level up
        assert (
            await tracker.get(
                "/agencies/dpupr/complaints", headers=bearer(settings, "agency", "dpupr")
            )
        ).json()["items"] == []

        # The province declines too: the next level, and finally the coordinating admin.
        for opd in ("pemprov_kalbar",):
            r = await tracker.post(
                f"/agencies/{opd}/complaints/{road}/declination",
                json={"reason": "Bukan kewenangan kami."},
                headers=bearer(settings, "agency", opd),
            )
            assert r.status_code == 202, r.text
        last = await status_when(
            tracker, road, lambda s: s["opd"] not in (None, "dpupr", "pemprov_kalbar")
        )
        assert last["opd"] == "bpjn"  # a road's chain ends at the national roads office
        hops = [h["opd"] for h in last["history"] if h["event"] == "complaint.disposed"]
        assert hops == ["dpupr", "pemprov_kalbar", last["opd"]]


async def test_a_decline_that_names_the_authorized_unit_sends_it_there(settings):
    # Tried as a new user would: "kewenangan Disperkim" in the reason, or the unit picked.
    async with system(settings) as (intake, tracker, _):
        for declination in (
            {"reason": "Lampu di dalam gang perumahan, ini kewenangan Disperkim."},
            {"reason": "Bukan aset kami.", "suggested_opd": "disperkim"},
        ):
            road = (await intake.post("/complaints", json=ROAD)).json()["tracking_id"]
            await status_when(tracker, road, lambda s: s["opd"] == "dpupr")
            r = await tracker.post(
                f"/agencies/dpupr/complaints/{road}/declination",
                json=declination,
                headers=bearer(settings, "agency", "dpupr"),
            )
            assert r.status_code == 202, r.text
            moved = await status_when(tracker, road, lambda s: s["opd"] not in (None, "dpupr"))
            assert moved["opd"] == "disperkim"
