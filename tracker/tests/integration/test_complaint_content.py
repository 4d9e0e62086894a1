"""A complaint whole (body, location, incident date, type, channel, attachments) on real
JetStream and PostgreSQL: the coordinator reads it with the router's proposal, the unit it
is disposed to reads it, another unit gets 404, and the public never gets the body of a
confidential complaint. The content is filled by the projection's bulk writer the same in
any batch size, and a read model rebuilt from the log equals the live one."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import nats

from lapor.devtools.testing import bearer, eventually, serving
from lapor.ops.replay import replay
from lapor.services.eventstore import EventStore, StoredEvent
from lapor.services.settings import DeadlineSettings, Settings
from lapor.shared.envelope import Event, envelope
from lapor.shared.events import (
    Actor,
    Channel,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintRouted,
    FollowUpPosted,
    Location,
    ReportType,
    RoutingCandidate,
)
from lapor.shared.tracking import new_tracking_id
from lapor.tracker.app import create_app
from lapor.tracker.read_model import StatusProjection

BODY = "Petugas loket meminta uang tambahan Rp 500.000 agar izin usaha cepat terbit."
LOCATION = Location(
    address="Jl. Rahadi Usman No. 3",
    kecamatan="Pontianak Kota",
    kelurahan="Darat Sekip",
    lat=-0.0263,
    lon=109.3425,
)
INCIDENT = date(2026, 7, 30)


def received(confidential: bool, anonymous: bool) -> ComplaintReceived:
    return ComplaintReceived(
        title="Pungutan liar saat mengurus izin usaha",
        body=BODY,
        report_type=ReportType.COMPLAINT,
        channel=Channel.MOBILE_APP,
        category="perizinan",
        location=LOCATION,
        incident_date=INCIDENT,
        suggested_opd="dpmptsp",
        anonymous=anonymous,
        confidential=confidential,
    )


ROUTED = ComplaintRouted(
    opd="dpmptsp",
    opd_name="DPMPTSP",
    rule="keyword:izin",
    reason="mentions 'izin' and 'pungutan'",
    confidence=0.62,
    rules_version="t",
    candidates=[
        RoutingCandidate(opd="dpmptsp", probability=0.62),
        RoutingCandidate(opd="satpol_pp", probability=0.21),
    ],
    model_version="m1",
)
DISPOSED = ComplaintDisposed(
    opd="dpmptsp", opd_name="DPMPTSP", by=Actor(role="admin"), automatic=False
)


async def seed(settings: Settings, events: list[Event]) -> str:
    cid = new_tracking_id()
    nc = await nats.connect(settings.nats_url)
    store = EventStore(nc.jetstream(), settings.subjects)
    last = 0
    for event in events:
        env = envelope(event, complaint_id=cid, correlation_id=uuid.uuid4())
        last = await store.append(env, expected_last_seq=last)
    await nc.close()
    return cid


def assert_content(page: dict) -> None:
    assert page["body"] == BODY
    assert page["location"] == LOCATION.model_dump()
    assert page["incident_date"] == INCIDENT.isoformat()
    assert (page["report_type"], page["channel"]) == ("pengaduan", "mobile_app")
    assert page["suggested_opd"] == "dpmptsp" and page["category"] == "perizinan"
    assert page["attachments"] == []  # the events carry none
    # No identity at all: the tracker never has it, anonymous or not.
    assert not {k for k in page if "reporter" in k or k in ("name", "phone", "email")}


async def test_content_for_the_coordinator_and_the_unit_only(settings):
    secret = await seed(
        settings,
        [
            received(confidential=True, anonymous=True),
            ROUTED,
            DISPOSED,
            FollowUpPosted(opd="dpmptsp", message="Sedang kami periksa."),
        ],
    )
    waiting = await seed(settings, [received(confidential=False, anonymous=False), ROUTED])
    unrouted = await seed(settings, [received(confidential=False, anonymous=False)])
    admin, unit = bearer(settings, "admin"), bearer(settings, "agency", "dpmptsp")
    async with serving(create_app(settings)) as tracker:

        async def projected():
            pages = [
                (await tracker.get(f"/admin/complaints/{cid}", headers=admin))
                for cid in (secret, waiting, unrouted)
            ]
            if any(p.status_code != 200 for p in pages):
                return None
            pages = [p.json() for p in pages]
            done = len(pages[0]["history"]) == 4 and pages[1]["proposal"]
            return pages if done else None

        on_desk, queued, fresh = await eventually(projected)

        # The coordinator: the content and the router's proposal.
        for page in (on_desk, queued, fresh):
            assert_content(page)
        assert on_desk["confidential"] and on_desk["anonymous"]
        assert on_desk["status"] == "in_progress" and on_desk["opd"] == "dpmptsp"
        assert on_desk["history"][-1]["note"] == "Sedang kami periksa."
        proposal = queued["proposal"]
        assert (proposal["opd"], proposal["rule"], proposal["confidence"]) == (
            "dpmptsp",
            "keyword:izin",
            0.62,
        )
        assert proposal["reason"] == "mentions 'izin' and 'pungutan'"
        assert proposal["candidates"] == [
            {"opd": "dpmptsp", "probability": 0.62},
            {"opd": "satpol_pp", "probability": 0.21},
        ]
        assert queued["proposed_opd"] == "dpmptsp" and on_desk["proposed_opd"] is None
        kept = {k: v for k, v in on_desk["proposal"].items() if k != "at"}
        assert kept == {k: v for k, v in proposal.items() if k != "at"}  # after disposition
        assert fresh["proposal"] is None

        # The unit it is disposed to: the content (confidential too), not the proposal.
        r = await tracker.get(f"/agencies/dpmptsp/complaints/{secret}", headers=unit)
        assert r.status_code == 200, r.text
        page = r.json()
        assert_content(page)
        assert "proposal" not in page and page["title"] == on_desk["title"]
        assert page["history"] == on_desk["history"]

        # Not disposed to it (yet): 404, as for another unit's complaint.
        r = await tracker.get(f"/agencies/dpmptsp/complaints/{waiting}", headers=unit)
        assert r.status_code == 404
        # Another unit: 404 on its own path (existence not revealed), 403 on another's.
        other = bearer(settings, "agency", "dpupr")
        r = await tracker.get(f"/agencies/dpupr/complaints/{secret}", headers=other)
        assert r.status_code == 404
        missing = await tracker.get(
            f"/agencies/dpupr/complaints/{new_tracking_id()}", headers=other
        )
        assert missing.status_code == 404 and missing.json()["detail"] == r.json()["detail"]
        r = await tracker.get(f"/agencies/dpmptsp/complaints/{secret}", headers=other)
        assert r.status_code == 403
        # Only the admin reads the coordinator's view; nobody reads without a token.
        assert (await tracker.get(f"/admin/complaints/{secret}", headers=unit)).status_code == 403
        assert (await tracker.get(f"/admin/complaints/{secret}")).status_code == 401
        assert (await tracker.get(f"/agencies/dpmptsp/complaints/{secret}")).status_code == 401

        # The public: never the body (nor the place) of the confidential one, which is
        # never listed; those of the others are public, as LAPOR! publishes reports.
        r = await tracker.get(f"/complaints/{secret}")
        assert r.status_code == 200
        assert BODY not in r.text and LOCATION.address not in r.text
        for path in ("/complaints", "/complaints?opd=dpmptsp", "/complaints?category=perizinan"):
            r = await tracker.get(path)
            assert r.status_code == 200
            assert secret not in r.text, path
        listed = {i["tracking_id"]: i for i in (await tracker.get("/complaints")).json()["items"]}
        assert listed[waiting]["body"] == BODY
        assert listed[waiting]["location"]["address"] == LOCATION.address
        shown = (await tracker.get(f"/complaints/{waiting}")).json()
        assert shown["body"] == BODY and shown["location"]["kelurahan"] == LOCATION.kelurahan
        for insider in (admin, unit):  # the status page stays a status page for them too
            assert BODY not in (await tracker.get(f"/complaints/{secret}", headers=insider)).text

    # A read model rebuilt from the log equals the live one, content and proposal included.
    report = await replay(settings, ["tracker.status"], mode="verify", show_progress=False)
    assert report["tracker.status"].clean, report["tracker.status"].differences


async def test_content_is_the_same_in_any_batch_size(settings):
    """The bulk writer fills the content and the proposal the same whether a complaint's
    events come one at a time or in one batch, and a second delivery changes nothing."""
    config = DeadlineSettings()
    projection = StatusProjection(config.calendar(), config.policy())
    at = datetime(2026, 8, 3, 1, tzinfo=UTC)
    rerouted = ROUTED.model_copy(update={"opd": "satpol_pp", "confidence": 0.4})
    lives = {
        "K0001-00001": [received(True, True), ROUTED, DISPOSED],
        "K0002-00001": [received(False, False), ROUTED, rerouted],
        "K0003-00001": [ComplaintReceived(title="Jalan berlubang", body="Lubang besar di jalan")],
        "K0004-00001": [ROUTED],  # its receipt left out: no row, no error
    }
    log = []
    for cid, events in lives.items():
        for event in events:
            at += timedelta(minutes=7)
            env = envelope(event, complaint_id=cid, correlation_id=uuid.uuid4(), occurred_at=at)
            log.append((StoredEvent(len(log) + 1, f"lapor.complaint.{cid}.{env.type}", env), event))

    conn = await asyncpg.connect(settings.database_url)
    try:

        async def rows() -> list[dict]:
            found = await conn.fetch("SELECT * FROM tracker.complaints ORDER BY tracking_id")
            return [dict(r) for r in found]

        for applied in log:
            async with conn.transaction():
                await projection.apply(conn, [applied])
        one_by_one = await rows()
        await conn.execute("TRUNCATE tracker.complaints, tracker.history")
        async with conn.transaction():
            await projection.apply(conn, log)
        assert await rows() == one_by_one
        async with conn.transaction():
            await projection.apply(conn, log[2:])  # delivered again
        assert await rows() == one_by_one
    finally:
        await conn.close()

    first, second, plain = one_by_one
    assert first["body"] == BODY and first["location_kelurahan"] == "Darat Sekip"
    assert (first["location_lat"], first["location_lon"]) == (LOCATION.lat, LOCATION.lon)
    assert first["incident_date"] == INCIDENT and first["suggested_opd"] == "dpmptsp"
    assert '"keyword:izin"' in first["routing"]
    assert '"satpol_pp"' in second["routing"] and '"confidence": 0.4' in second["routing"]
    assert plain["body"] == "Lubang besar di jalan" and plain["routing"] is None
    assert plain["location_address"] is None and plain["incident_date"] is None
