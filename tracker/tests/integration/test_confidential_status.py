"""A confidential (Rahasia) complaint's status page on real JetStream and PostgreSQL: the
public sees status, unit and dates only; its reporter, its unit and the admin see it whole;
a credential that does not check out is simply the public."""

from __future__ import annotations

import uuid

import nats

from lapor.devtools.testing import as_reporter, bearer, eventually, serving
from lapor.services.auth import issue_token
from lapor.services.eventstore import EventStore
from lapor.services.settings import Settings
from lapor.shared.envelope import envelope
from lapor.shared.events import (
    Actor,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintRouted,
    FollowUpPosted,
)
from lapor.shared.tracking import new_tracking_id
from lapor.tracker.app import create_app

TITLE = "Pungutan liar saat mengurus izin usaha"
FOLLOW_UP = "Petugas loket yang meminta uang sudah kami periksa."


FOREIGN_SECRET = "another deployment's secret, of a realistic length"


async def seed(settings: Settings, confidential: bool) -> str:
    """A complaint disposed to DPMPTSP with a follow-up; returns its tracking ID."""
    cid = new_tracking_id()
    nc = await nats.connect(settings.nats_url)
    store = EventStore(nc.jetstream(), settings.subjects)
    last = 0
    for event in (
        ComplaintReceived(
            title=TITLE,
            body="Petugas meminta uang tambahan agar izin cepat terbit.",
            confidential=confidential,
        ),
        ComplaintRouted(
            opd="dpmptsp",
            opd_name="DPMPTSP",
            rule="keyword:izin",
            reason="mentions 'izin' and 'pungutan'",
            confidence=0.9,
            rules_version="t",
        ),
        ComplaintDisposed(
            opd="dpmptsp", opd_name="DPMPTSP", by=Actor(role="admin"), automatic=False
        ),
        FollowUpPosted(opd="dpmptsp", message=FOLLOW_UP),
    ):
        env = envelope(event, complaint_id=cid, correlation_id=uuid.uuid4())
        last = await store.append(env, expected_last_seq=last)
    await nc.close()
    return cid


def notes(page: dict) -> list[str | None]:
    return [entry["note"] for entry in page["history"]]


async def test_confidential_status_is_whole_only_for_its_reporter_unit_and_admin(settings):
    secret, other = await seed(settings, confidential=True), await seed(settings, False)
    async with serving(create_app(settings)) as tracker:

        async def projected():
            pages = [(await tracker.get(f"/complaints/{cid}")).json() for cid in (secret, other)]
            return pages if all(len(p.get("history", [])) == 4 for p in pages) else None

        public, open_page = await eventually(projected)

        async def page_as(headers: dict[str, str]) -> dict:
            r = await tracker.get(f"/complaints/{secret}", headers=headers)
            assert r.status_code == 200, r.text
            return r.json()

        # The public: status, unit and dates, no title and no note.
        assert public["title"] is None and notes(public) == [None] * 4
        assert public["status"] == "in_progress" and public["opd"] == "dpmptsp"
        assert public["received_at"] and all(entry["at"] for entry in public["history"])

        # Whoever it belongs to reads it whole.
        for insider in (
            as_reporter(settings, secret),
            bearer(settings, "agency", "dpmptsp"),
            bearer(settings, "admin"),
        ):
            page = await page_as(insider)
            assert page["title"] == TITLE
            assert notes(page)[1] == "Proposed: DPMPTSP. mentions 'izin' and 'pungutan'"
            assert notes(page)[-1] == FOLLOW_UP

        # Anyone else is the public, and no credential breaks the public page.
        assert settings.auth_secret is not None
        key = settings.auth_secret.get_secret_value()
        for outsider in (
            bearer(settings, "agency", "dpupr"),
            as_reporter(settings, other),
            {"X-Reporter-Secret": "NOT-THE-SECRET"},
            {"Authorization": "Bearer not-a-token"},
            {"Authorization": "Basic c2l0aTpyYWhhc2lh"},
            {"Authorization": f"Bearer {issue_token(FOREIGN_SECRET, 'admin')}"},
            {"Authorization": f"Bearer {issue_token(key, 'admin', ttl=-60)}"},  # expired
        ):
            assert await page_as(outsider) == public, outsider

    # A complaint that is not confidential keeps its notes public.
    assert open_page["title"] == TITLE and notes(open_page)[-1] == FOLLOW_UP
