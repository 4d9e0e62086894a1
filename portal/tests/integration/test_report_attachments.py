"""The report form with files, without JavaScript (in process over intake, router,
tracker and analytics on real NATS and PostgreSQL): a photo sent with the form reaches
the complaint cleaned of its metadata, its position becomes the location only when the
reporter shares it, a file that is not what it claims is refused beside the file field,
and a multipart post without the CSRF token stores nothing."""

from __future__ import annotations

import io
import re

import nats
import nats.js.errors
import pytest
from PIL import Image

from lapor.devtools import sample_files as files
from lapor.devtools.testing import bearer, eventually
from lapor.services.settings import Settings

from .test_portal import GOOD, check_page, form_token, listed, system

pytestmark = pytest.mark.connected

NAMED = {**GOOD, "anonymous": "", "name": "Siti Rahmawati"}


async def stored_objects(settings: Settings) -> int:
    nc = await nats.connect(settings.nats_url)
    try:
        store = await nc.jetstream().object_store(settings.subjects.attachments_bucket)
        try:
            return len(await store.list())
        except nats.js.errors.NotFoundError:
            return 0
    finally:
        await nc.close()


async def test_the_form_sends_a_photo_without_javascript_and_the_complaint_has_it(settings):
    async with system(settings) as (_, tracker, portal):
        hidden, html = await form_token(portal)
        assert 'enctype="multipart/form-data"' in html
        page = check_page(html)  # the file input is labelled like every other
        assert any(i.get("type") == "file" and i.get("name") == "attachments" for i in page.inputs)
        assert "Foto atau dokumen" in html and "5 berkas" in html

        sent = {**NAMED, **hidden, "share_photo_location": "on"}
        answer = await portal.post(
            "/lapor",
            data=sent,
            files=[("attachments", ("IMG_20260302.jpg", files.phone_photo(), "image/jpeg"))],
        )
        assert answer.status_code == 200, answer.text
        tracking_id = check_page(answer.text).text("tracking-id")

        admin = bearer(settings, "admin")

        async def content() -> dict | None:
            r = await tracker.get(f"/admin/complaints/{tracking_id}", headers=admin)
            return r.json() if r.status_code == 200 else None

        complaint = await eventually(content)
        [photo] = complaint["attachments"]
        assert (photo["filename"], photo["media_type"]) == ("IMG_20260302.jpg", "image/jpeg")
        # Shared by a named reporter: the photo's position is the complaint's location.
        location = complaint["location"]
        assert (location["lat"], location["lon"]) == pytest.approx(files.PONTIANAK, abs=1e-5)
        assert location["kecamatan"] == GOOD["kecamatan"]
        r = await tracker.get(
            f"/admin/complaints/{tracking_id}/attachments/{photo['id']}", headers=admin
        )
        assert r.status_code == 200
        with Image.open(io.BytesIO(r.content)) as img:
            assert not dict(img.getexif()) and "comment" not in img.info


async def test_a_file_that_is_not_a_photo_is_refused_beside_the_file_field(settings):
    async with system(settings) as (_, tracker, portal):
        hidden, _ = await form_token(portal)
        answer = await portal.post(
            "/lapor",
            data={**NAMED, **hidden},
            files=[
                ("attachments", ("foto.jpg", files.phone_photo(), "image/jpeg")),
                ("attachments", ("bukti.jpg", files.HTML_AS_JPEG, "image/jpeg")),
            ],
        )
        assert answer.status_code == 422, answer.text
        page = check_page(answer.text)
        error = page.text("attachments-error")
        assert "bukti.jpg" in error and "bukan foto" in error, error
        field = next(i for i in page.inputs if i.get("id") == "attachments")
        assert "attachments-error" in (field.get("aria-describedby") or "")
        assert answer.text.index('id="attachments-error"') < answer.text.index('id="attachments"')
        assert "pilih lagi" in answer.text  # the browser does not keep the files
        assert f'value="{GOOD["title"]}"' in answer.text  # what was typed is kept
        assert await listed(tracker) == []
        assert await stored_objects(settings) == 0

        # In English too.
        hidden, _ = await form_token(portal)
        answer = await portal.post(
            "/lapor?lang=en",
            data={**NAMED, **hidden},
            files=[("attachments", ("x.jpg", files.EXECUTABLE_AS_JPEG, "image/jpeg"))],
        )
        assert answer.status_code == 422
        assert re.search(
            r"x\.jpg is not a photo", check_page(answer.text).text("attachments-error")
        )


async def test_a_multipart_post_without_the_csrf_token_stores_nothing(settings):
    async with system(settings) as (_, tracker, portal):
        await portal.get("/lapor")  # the cookie is set, the field is missing
        answer = await portal.post(
            "/lapor",
            data=NAMED,
            files=[("attachments", ("foto.jpg", files.phone_photo(), "image/jpeg"))],
        )
        assert answer.status_code == 403
        hidden, _ = await form_token(portal)
        forged = await portal.post(
            "/lapor",
            data={**NAMED, **hidden, "csrf_token": "abc.def"},
            files=[("attachments", ("foto.jpg", files.phone_photo(), "image/jpeg"))],
        )
        assert forged.status_code == 403
        assert await listed(tracker) == []
        assert await stored_objects(settings) == 0
