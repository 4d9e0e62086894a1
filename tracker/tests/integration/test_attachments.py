"""A complaint's photos and documents through the tracker, on real JetStream and
PostgreSQL: submitted through intake (multipart), listed in the content for the
coordinator and the unit it is disposed to, downloaded by them and by the reporter with
the bytes the object store holds, and never by the public or another unit. A read model
rebuilt from the log lists the same files."""

from __future__ import annotations

import base64
import hashlib
import json

import nats
import pytest

from lapor.devtools import sample_files as files
from lapor.devtools.testing import bearer, eventually, serving
from lapor.intake.app import create_app as intake_app
from lapor.ops.replay import replay
from lapor.services.settings import Settings
from lapor.tracker.app import create_app

pytestmark = pytest.mark.connected

COMPLAINT = {
    "title": "Pungutan liar saat mengurus izin usaha",
    "body": "Petugas loket meminta uang tambahan Rp 500.000 agar izin usaha cepat terbit.",
    "category": "perizinan",
    "confidential": True,
}


async def stored(settings: Settings, name: str) -> bytes:
    nc = await nats.connect(settings.nats_url)
    try:
        store = await nc.jetstream().object_store(settings.subjects.attachments_bucket)
        return (await store.get(name)).data
    finally:
        await nc.close()


async def submit(settings: Settings) -> dict:
    parts = [
        ("complaint", (None, json.dumps(COMPLAINT).encode(), "application/json")),
        ("attachments", ("loket.jpg", files.phone_photo(), "image/jpeg")),
        ("attachments", ("kwitansi Rp500rb.pdf", files.PDF, "application/pdf")),
    ]
    async with serving(intake_app(settings)) as intake:
        r = await intake.post("/complaints", files=parts)
    assert r.status_code == 202, r.text
    return r.json()


async def test_the_files_reach_the_coordinator_the_unit_and_the_reporter_only(settings):
    accepted = await submit(settings)
    cid, secret = accepted["tracking_id"], accepted["reporter_secret"]
    another = (await submit(settings))["tracking_id"]
    admin = bearer(settings, "admin")
    unit, other = bearer(settings, "agency", "dpmptsp"), bearer(settings, "agency", "dpupr")
    async with serving(create_app(settings)) as tracker:

        async def projected():
            r = await tracker.get(f"/admin/complaints/{cid}", headers=admin)
            return r.json() if r.status_code == 200 else None

        async def both_projected():
            r = await tracker.get(f"/admin/complaints/{another}", headers=admin)
            return await projected() if r.status_code == 200 else None

        content = await eventually(both_projected)
        photo, pdf = content["attachments"]
        assert (photo["media_type"], photo["filename"]) == ("image/jpeg", "loket.jpg")
        assert (pdf["media_type"], pdf["filename"]) == ("application/pdf", "kwitansi Rp500rb.pdf")

        # The coordinator downloads the bytes the store holds, and they match the digest.
        for ref in (photo, pdf):
            r = await tracker.get(f"/admin/complaints/{cid}/attachments/{ref['id']}", headers=admin)
            assert r.status_code == 200, r.text
            assert r.content == await stored(settings, ref["id"])
            assert hashlib.sha256(r.content).hexdigest() == ref["sha256"]
            assert len(r.content) == ref["size"] == int(r.headers["content-length"])
            assert r.headers["content-type"] == ref["media_type"]
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["content-disposition"].startswith("attachment;")
            digest = base64.b64encode(hashlib.sha256(r.content).digest()).decode()
            assert r.headers["repr-digest"] == f"sha-256=:{digest}:"
        assert b"AcmeCam" not in r.content  # the last one is the PDF; the photo:
        photo_bytes = await stored(settings, photo["id"])
        assert b"Exif" not in photo_bytes and b"AcmeCam" not in photo_bytes
        r = await tracker.get(f"/admin/complaints/{cid}/attachments/{pdf['id']}", headers=admin)
        assert "filename*=UTF-8''kwitansi%20Rp500rb.pdf" in r.headers["content-disposition"]

        photo_path = f"/complaints/{cid}/attachments/{photo['id']}"
        unit_path = f"/agencies/dpmptsp{photo_path}"
        # Before the disposition the unit has nothing, as for any complaint not its own.
        assert (await tracker.get(unit_path, headers=unit)).status_code == 404

        r = await tracker.post(
            f"/complaints/{cid}/disposition", json={"opd": "dpmptsp"}, headers=admin
        )
        assert r.status_code == 202, r.text

        async def disposed():
            r = await tracker.get(f"/agencies/dpmptsp/complaints/{cid}", headers=unit)
            return r.json() if r.status_code == 200 else None

        assert (await eventually(disposed))["attachments"] == content["attachments"]
        r = await tracker.get(unit_path, headers=unit)
        assert r.status_code == 200 and r.content == photo_bytes

        # Another unit: 404 on its own path, 403 on the unit's; the admin path is the admin's.
        assert (await tracker.get(f"/agencies/dpupr{photo_path}", headers=other)).status_code == 404
        assert (await tracker.get(unit_path, headers=other)).status_code == 403
        admin_path = f"/admin{photo_path}"
        assert (await tracker.get(admin_path, headers=unit)).status_code == 403
        assert (await tracker.get(admin_path)).status_code == 401

        # The public: never, not even listed; the reporter with their secret.
        assert (await tracker.get(photo_path)).status_code == 404
        wrong = {"X-Reporter-Secret": "AAAAAAAAAAAAAAAA"}
        assert (await tracker.get(photo_path, headers=wrong)).status_code == 404
        mine = await tracker.get(photo_path, headers={"X-Reporter-Secret": secret})
        assert mine.status_code == 200 and mine.content == photo_bytes
        page = await tracker.get(f"/complaints/{cid}", headers={"X-Reporter-Secret": secret})
        assert "attachments" not in page.json() and photo["id"] not in page.text

        # An id the complaint does not list is not served, even if the store holds it.
        assert (
            await tracker.get(f"/admin/complaints/{cid}/attachments/{'0' * 64}", headers=admin)
        ).status_code == 404
        assert (
            await tracker.get(
                f"/complaints/{another}/attachments/{photo['id']}",
                headers={"X-Reporter-Secret": secret},
            )
        ).status_code == 404

    # A read model rebuilt from the log equals the live one, the files included.
    report = await replay(settings, ["tracker.status"], mode="verify", show_progress=False)
    assert report["tracker.status"].clean, report["tracker.status"].differences


async def test_a_file_erased_from_the_store_is_a_404_not_an_error(settings):
    accepted = await submit(settings)
    cid = accepted["tracking_id"]
    admin = bearer(settings, "admin")
    async with serving(create_app(settings)) as tracker:

        async def projected():
            r = await tracker.get(f"/admin/complaints/{cid}", headers=admin)
            return r.json() if r.status_code == 200 else None

        photo = (await eventually(projected))["attachments"][0]
        nc = await nats.connect(settings.nats_url)
        try:
            store = await nc.jetstream().object_store(settings.subjects.attachments_bucket)
            await store.delete(photo["id"])  # erased on the reporter's request
        finally:
            await nc.close()
        r = await tracker.get(f"/admin/complaints/{cid}/attachments/{photo['id']}", headers=admin)
        assert r.status_code == 404
        assert r.json()["detail"] == "the attachment is no longer stored"
