"""End to end across the four services on real NATS JetStream and PostgreSQL:
submit over HTTP -> routed to the OPD -> the agency follows up and resolves -> counted."""

from __future__ import annotations

import contextlib

from lapor.analytics.app import create_app as analytics_app
from lapor.intake.app import create_app as intake_app
from lapor.router.app import create_app as router_app
from lapor.services.testing import eventually, serving
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


async def test_complaint_is_routed_followed_up_resolved_and_counted(settings):
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        await stack.enter_async_context(serving(router_app(settings)))
        tracker = await stack.enter_async_context(serving(tracker_app(settings)))
        analytics = await stack.enter_async_context(serving(analytics_app(settings)))

        road = (await intake.post("/complaints", json=ROAD)).json()["tracking_id"]
        waste = (await intake.post("/complaints", json=WASTE)).json()["tracking_id"]

        async def routed(tracking_id: str):
            r = await tracker.get(f"/complaints/{tracking_id}")
            return r.json() if r.status_code == 200 and r.json()["opd"] else None

        status = await eventually(lambda: routed(road))
        assert status["opd"] == "dpupr"
        assert status["status"] == "routed"
        assert status["status_label"] == "Belum Ditindaklanjuti"
        assert [h["event"] for h in status["history"]] == ["complaint.received", "complaint.routed"]
        assert (await eventually(lambda: routed(waste)))["opd"] == "dlh"

        base = f"/agencies/dpupr/complaints/{road}"
        r = await tracker.post(f"{base}/follow-ups", json={"message": "Tim sudah meninjau lokasi."})
        assert r.status_code == 202, r.text
        r = await tracker.post(f"{base}/resolution", json={"resolution": "Lubang sudah ditambal."})
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "resolved"

        async def resolved():
            body = (await tracker.get(f"/complaints/{road}")).json()
            return body if body["status"] == "resolved" else None

        final = await eventually(resolved)
        assert final["status_label"] == "Selesai"
        assert [h["event"] for h in final["history"]][-2:] == [
            "complaint.followed_up",
            "complaint.resolved",
        ]

        async def counted():
            body = (await analytics.get("/metrics/completion")).json()
            return body if body["overall"]["resolved"] == 1 else None

        report = await eventually(counted)
        assert report["overall"] == {"received": 2, "resolved": 1, "completion_rate": "50.00"}
        per_opd = {row["opd"]: row for row in report["per_opd"]}
        assert per_opd["dpupr"]["completion_rate"] == "100.00"
        assert per_opd["dlh"]["resolved"] == 0
