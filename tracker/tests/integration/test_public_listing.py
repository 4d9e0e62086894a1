"""The public listing's filters on real JetStream and PostgreSQL: several statuses, several
categories (and none), a period of reception by local date or instant, each answered
whole across small pages; ``updated_at``, the text and the place of every item; a
confidential (Rahasia) complaint matching every filter never listed; bad periods are a
422 naming the parameter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
import pytest

from lapor.devtools.testing import eventually, serving
from lapor.services.eventstore import EventStore
from lapor.services.settings import Settings
from lapor.shared.envelope import Event, envelope
from lapor.shared.events import (
    Actor,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintRouted,
    FollowUpPosted,
    Location,
)
from lapor.shared.tracking import new_tracking_id
from lapor.tracker.app import create_app

# Asia/Pontianak is UTC+7: 2026-01-09T17:30Z is 00:30 on 10 January there.
T0 = datetime(2026, 1, 9, 16, 30, tzinfo=UTC)  # 23:30 local, 9 January
T1 = datetime(2026, 1, 9, 17, 30, tzinfo=UTC)  # 00:30 local, 10 January
T2 = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)
T3 = datetime(2026, 2, 14, 16, 59, tzinfo=UTC)  # 23:59 local, 14 February
T4 = datetime(2026, 2, 14, 17, 0, tzinfo=UTC)  # 00:00 local, 15 February


def received(category: str | None, confidential: bool = False) -> ComplaintReceived:
    return ComplaintReceived(
        title=f"Laporan {category or 'umum'}",
        body=f"Isi laporan tentang {category or 'hal umum'} di lingkungan kami.",
        category=category,
        location=Location(
            address="Jl. Gajah Mada 12", kecamatan="Pontianak Kota", lat=-0.03, lon=109.33
        ),
        confidential=confidential,
    )


ROUTED = ComplaintRouted(
    opd="dpupr",
    opd_name="Dinas PUPR",
    rule="category:jalan",
    reason="category",
    confidence=0.95,
    rules_version="t",
)
DISPOSED = ComplaintDisposed(
    opd="dpupr", opd_name="Dinas PUPR", by=Actor(role="admin"), automatic=False
)
FOLLOWED = FollowUpPosted(opd="dpupr", message="Sedang dikerjakan.")
STEPS = {
    "received": [],
    "disposed": [ROUTED, DISPOSED],
    "in_progress": [ROUTED, DISPOSED, FOLLOWED],
}


async def seed(settings: Settings, plan: list[tuple[str | None, str, datetime, bool]]) -> dict:
    """Each (category, status, received at, confidential) as a complaint whose events are
    an hour apart; returns {tracking_id: (category, status, received_at, updated_at)}."""
    nc = await nats.connect(settings.nats_url)
    store = EventStore(nc.jetstream(), settings.subjects)
    made = {}
    for category, status, at, confidential in plan:
        cid = new_tracking_id()
        events: list[Event] = [received(category, confidential), *STEPS[status]]
        last, when = 0, at
        for i, event in enumerate(events):
            when = at + timedelta(hours=i)
            env = envelope(event, complaint_id=cid, correlation_id=uuid.uuid4(), occurred_at=when)
            last = await store.append(env, expected_last_seq=last)
        made[cid] = (category, status, at, when, confidential)
    await nc.close()
    return made


PLAN = [
    ("jalan", "received", T0, False),
    ("jalan", "disposed", T1, False),
    ("jalan", "in_progress", T2, False),
    ("sampah", "received", T2, False),
    ("sampah", "in_progress", T3, False),
    (None, "received", T3, False),
    (None, "disposed", T4, False),
    ("jalan", "received", T4, False),
    # Confidential ones that match every filter below: never listed.
    ("jalan", "disposed", T1, True),
    ("sampah", "in_progress", T3, True),
    (None, "received", T2, True),
]


async def every_page(tracker: httpx.AsyncClient, params: list[tuple[str, str]]) -> list[dict]:
    """All items of a filtered listing, two at a time; every page but the last is full."""
    items: list[dict] = []
    after: str | None = None
    while True:
        page_params = [*params, ("limit", "2"), *([("after", after)] if after else [])]
        r = await tracker.get("/complaints", params=page_params)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        if page["next_after"] is None:
            assert len(page["items"]) < 2 or not page["items"]  # a short page ends it
            return items
        assert len(page["items"]) == 2
        after = page["next_after"]


@pytest.fixture
async def listed(settings: Settings):
    made = await seed(settings, PLAN)
    async with serving(create_app(settings)) as tracker:

        async def projected():
            for cid, (_, status, *_rest) in made.items():
                r = await tracker.get(f"/complaints/{cid}")
                if r.status_code != 200 or r.json()["status"] != status:
                    return None
            return True

        await eventually(projected)
        yield tracker, made


def expect(made: dict, keep: Any) -> set[str]:
    return {
        cid
        for cid, (category, status, at, _, confidential) in made.items()
        if not confidential and keep(category, status, at)
    }


async def test_filters_are_answered_whole_across_pages(listed):
    tracker, made = listed
    cases: list[tuple[list[tuple[str, str]], Any]] = [
        ([], lambda c, s, t: True),
        ([("status", "received")], lambda c, s, t: s == "received"),
        (
            [("status", "disposed"), ("status", "in_progress")],
            lambda c, s, t: s in ("disposed", "in_progress"),
        ),
        ([("category", "jalan")], lambda c, s, t: c == "jalan"),
        ([("category", "jalan"), ("category", "sampah")], lambda c, s, t: c is not None),
        ([("category", "")], lambda c, s, t: c is None),
        ([("category", "sampah"), ("category", "")], lambda c, s, t: c != "jalan"),
        # Local dates: the whole day in Asia/Pontianak, both ends included.
        ([("from", "2026-01-10")], lambda c, s, t: t >= T1),
        ([("to", "2026-01-09")], lambda c, s, t: t <= T0),
        ([("from", "2026-01-10"), ("to", "2026-02-14")], lambda c, s, t: T1 <= t <= T3),
        # Instants with their offset: included.
        (
            [("from", T1.isoformat()), ("to", "2026-02-14T23:59:00+07:00")],
            lambda c, s, t: T1 <= t <= T3,
        ),
        ([("from", "2026-02-15T00:00:00+07:00")], lambda c, s, t: t >= T4),
        (
            [
                ("status", "received"),
                ("status", "in_progress"),
                ("category", "jalan"),
                ("category", ""),
                ("from", "2026-01-01"),
                ("to", "2026-02-14"),
            ],
            lambda c, s, t: s in ("received", "in_progress") and c != "sampah" and t <= T3,
        ),
        (
            [("opd", "dpupr"), ("category", "sampah")],
            lambda c, s, t: c == "sampah" and s != "received",
        ),
    ]
    for params, keep in cases:
        items = await every_page(tracker, params)
        ids = [i["tracking_id"] for i in items]
        assert len(ids) == len(set(ids)), params
        assert set(ids) == expect(made, keep), params
        assert ids == sorted(ids), params  # keyset order
    everything = await every_page(tracker, [])
    assert not {cid for cid, v in made.items() if v[4]} & {i["tracking_id"] for i in everything}


async def test_items_carry_updated_at_text_and_place(listed):
    tracker, made = listed
    items = {i["tracking_id"]: i for i in await every_page(tracker, [])}
    assert items
    for cid, item in items.items():
        category, status, at, updated, _ = made[cid]
        assert datetime.fromisoformat(item["received_at"]) == at
        assert datetime.fromisoformat(item["updated_at"]) == updated
        assert item["status"] == status and item["category"] == category
        assert item["body"] == received(category).body
        assert item["location"] == {
            "address": "Jl. Gajah Mada 12",
            "kecamatan": "Pontianak Kota",
            "kelurahan": None,
            "lat": -0.03,
            "lon": 109.33,
        }
    # The status page of a non-confidential complaint says the same; a confidential one's
    # keeps only status, unit and dates.
    open_one = next(cid for cid, v in made.items() if not v[4] and v[1] == "in_progress")
    page = (await tracker.get(f"/complaints/{open_one}")).json()
    assert page["body"] == items[open_one]["body"] and page["location"]["lat"] == -0.03
    assert page["category"] == made[open_one][0]
    hidden = next(cid for cid, v in made.items() if v[4] and v[1] == "in_progress")
    page = (await tracker.get(f"/complaints/{hidden}")).json()
    assert page["status"] == "in_progress" and page["opd"] == "dpupr"
    assert page["title"] is page["body"] is page["location"] is page["category"] is None
    assert "Gajah Mada" not in str(page) and "Isi laporan" not in str(page)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "1969-12-31"}, "from"),
        ({"to": "1969-12-31T23:00:00+00:00"}, "to"),
        ({"from": "2026-01-10T08:00:00"}, "from"),  # no offset
        ({"from": "2026-02-01", "to": "2026-01-31"}, "to"),
        ({"to": "9999-12-31"}, "to"),
        ({"category": "Jalan!"}, "category"),
        ({"status": "pending"}, "status"),
    ],
)
async def test_bad_filters_are_a_422_naming_them(settings, params, field):
    async with serving(create_app(settings)) as tracker:
        r = await tracker.get("/complaints", params=params)
        assert r.status_code == 422, r.text
        # A repeated parameter is named with the index of the bad value (category.0).
        assert [e["field"].split(".")[0] for e in r.json()["errors"]] == [field]


async def test_the_newest_first_order_pages_through_everything_once(listed):
    """``order=newest``: the latest received first, page after page, each exactly once,
    filtered the same (what the portal's public list shows)."""
    tracker, made = listed
    for params, keep in (
        ([("order", "newest")], lambda c, s, t: True),
        ([("order", "newest"), ("category", "jalan")], lambda c, s, t: c == "jalan"),
    ):
        items = await every_page(tracker, params)
        order = [(i["received_at"], i["tracking_id"]) for i in items]
        assert order == sorted(order, reverse=True), params
        assert [i["tracking_id"] for i in items] == [cid for _, cid in order]
        assert len(order) == len(set(order)) and {cid for _, cid in order} == expect(made, keep)
