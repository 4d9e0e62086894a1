"""Attachments on a real NATS JetStream: what a multipart submission stores in the object
store and appends to the log, and what it refuses without storing or appending anything."""

from __future__ import annotations

import hashlib
import io
import json

import nats
import nats.js.errors
import pytest
from PIL import Image

from lapor.devtools import sample_files as files
from lapor.devtools.testing import serving
from lapor.intake.app import create_app
from lapor.services.settings import Settings
from lapor.shared.envelope import decode, parse
from lapor.shared.events import ComplaintReceived

from .test_submit import COMPLAINT, stream_messages

pytestmark = pytest.mark.connected

PLAIN = {k: v for k, v in COMPLAINT.items() if k not in ("anonymous", "location")}
"""Named, no location given."""


def multipart(complaint: dict, *attached: tuple[str, bytes, str]) -> dict:
    """httpx's ``files=`` for a complaint and its attachments (name, bytes, claimed type)."""
    parts: list[tuple[str, tuple[str | None, bytes, str]]] = [
        ("complaint", (None, json.dumps(complaint).encode(), "application/json"))
    ]
    parts += [("attachments", (name, data, claimed)) for name, data, claimed in attached]
    return {"files": parts}


async def objects(settings: Settings) -> dict[str, bytes]:
    """Every object in the attachments' store, by name."""
    nc = await nats.connect(settings.nats_url)
    try:
        store = await nc.jetstream().object_store(settings.subjects.attachments_bucket)
        try:
            infos = await store.list()
        except nats.js.errors.NotFoundError:
            return {}
        return {i.name: (await store.get(i.name)).data for i in infos if not i.deleted}
    finally:
        await nc.close()


async def received_events(settings: Settings) -> list[ComplaintReceived]:
    log = await stream_messages(settings, settings.subjects.events_stream)
    events = [decode(parse(data)) for _, data in log]
    assert all(isinstance(e, ComplaintReceived) for e in events)
    return events  # type: ignore[return-value]


def metadata_free(data: bytes) -> None:
    """No EXIF (camera, GPS), XMP or comment left, in the bytes or as Pillow reads them."""
    for trace in (b"Exif", b"AcmeCam", b"Lapor Phone", b"taken by Siti", b"http://ns.adobe"):
        assert trace not in data
    with Image.open(io.BytesIO(data)) as img:
        assert not dict(img.getexif())
        assert not {"exif", "xmp", "comment", "icc_profile"} & set(img.info)


async def test_a_photo_is_stored_cleaned_and_the_event_carries_its_reference(settings):
    sent = files.phone_photo()
    async with serving(create_app(settings)) as client:
        r = await client.post(
            "/complaints",
            **multipart(PLAIN, ("../../DCIM/IMG_0001.JPG", sent, "image/jpeg")),
        )
    assert r.status_code == 202, r.text
    [event] = await received_events(settings)
    [ref] = event.attachments
    stored = await objects(settings)
    assert list(stored) == [ref.id]
    data = stored[ref.id]
    assert ref.sha256 == ref.id == hashlib.sha256(data).hexdigest()
    assert (ref.media_type, ref.size, ref.filename) == ("image/jpeg", len(data), "IMG_0001.JPG")
    assert data != sent
    metadata_free(data)
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and img.size == (320, 240)
    # Not shared: the position stays out of the complaint too, and the log has no bytes.
    assert event.location is None
    raw = (await stream_messages(settings, settings.subjects.events_stream))[0][1]
    assert len(raw) < 2000 and b"JFIF" not in raw


@pytest.mark.parametrize(
    ("share", "anonymous", "located"),
    [(True, False, True), (False, False, False), (True, True, False)],
    ids=["shared", "not-shared", "anonymous"],
)
async def test_the_photo_position_becomes_the_location_only_when_shared(
    settings, share, anonymous, located
):
    complaint = {**PLAIN, "share_photo_location": share, "anonymous": anonymous}
    async with serving(create_app(settings)) as client:
        r = await client.post(
            "/complaints", **multipart(complaint, ("a.jpg", files.phone_photo(), "image/jpeg"))
        )
    assert r.status_code == 202, r.text
    [event] = await received_events(settings)
    if located:
        assert event.location is not None
        assert (event.location.lat, event.location.lon) == pytest.approx(files.PONTIANAK, abs=1e-5)
    else:
        assert event.location is None or event.location.lat is None
    # The stored photo never keeps it, shared or not.
    for data in (await objects(settings)).values():
        metadata_free(data)


async def test_a_location_given_is_not_replaced_by_the_photo(settings):
    given = {"address": "Jl. Gajah Mada", "lat": 0.01, "lon": 109.2}
    complaint = {**PLAIN, "share_photo_location": True, "location": given}
    async with serving(create_app(settings)) as client:
        r = await client.post(
            "/complaints", **multipart(complaint, ("a.jpg", files.phone_photo(), "image/jpeg"))
        )
    assert r.status_code == 202, r.text
    [event] = await received_events(settings)
    assert event.location is not None
    assert (event.location.lat, event.location.lon) == (0.01, 109.2)


async def test_png_webp_and_pdf_are_accepted_by_their_content(settings):
    png = files.photo(fmt="PNG", exif=files.phone_exif(), seed=1)
    webp = files.photo(fmt="WEBP", exif=files.phone_exif(), seed=2)
    async with serving(create_app(settings)) as client:
        r = await client.post(
            "/complaints",
            **multipart(
                PLAIN,
                # Named and labelled wrongly: the content decides.
                ("denah.jpg", png, "image/jpeg"),
                ("foto", webp, "application/octet-stream"),
                ("surat.pdf", files.PDF, "application/pdf"),
            ),
        )
    assert r.status_code == 202, r.text
    [event] = await received_events(settings)
    assert [(a.media_type, a.filename) for a in event.attachments] == [
        ("image/png", "denah.jpg.png"),
        ("image/webp", "foto.webp"),
        ("application/pdf", "surat.pdf"),
    ]
    stored = await objects(settings)
    for ref in event.attachments[:2]:
        metadata_free(stored[ref.id])
    assert stored[event.attachments[2].id] == files.PDF  # a PDF is kept as sent


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (files.HTML_AS_JPEG, "not an accepted type"),
        (files.EXECUTABLE_AS_JPEG, "not an accepted type"),
        (files.ELF_AS_JPEG, "not an accepted type"),
        (b"\xff\xd8\xff\xe0" + b"<html>not really a jpeg</html>" * 4, "not a readable JPEG"),
        (files.PDF_WITH_SCRIPT, "PDF with scripts"),
        (b"", "empty"),
    ],
    ids=["html", "windows-exe", "elf", "jpeg-signature-only", "pdf-with-script", "empty"],
)
async def test_a_file_that_is_not_what_it_claims_is_refused_and_nothing_is_kept(
    settings, data, reason
):
    async with serving(create_app(settings)) as client:
        r = await client.post(
            "/complaints",
            **multipart(
                PLAIN,
                ("ok.jpg", files.phone_photo(), "image/jpeg"),
                ("foto.jpg", data, "image/jpeg"),
            ),
        )
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "attachments[1]" and reason in error["reason"]
    assert await stream_messages(settings, settings.subjects.events_stream) == []
    assert await objects(settings) == {}  # not even the good one


async def test_an_oversize_file_is_refused(settings):
    small = settings.model_copy(update={"max_attachment_bytes": 64 * 1024})
    big = files.noise(80 * 1024)
    async with serving(create_app(small)) as client:
        r = await client.post("/complaints", **multipart(PLAIN, ("besar.png", big, "image/png")))
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [
        {"field": "attachments[0]", "reason": f"larger than {64 * 1024} bytes"}
    ]
    assert await stream_messages(settings, settings.subjects.events_stream) == []
    assert await objects(settings) == {}


async def test_a_body_beyond_every_file_allowed_is_413_and_json_keeps_its_limit(settings):
    small = settings.model_copy(update={"max_attachment_bytes": 16 * 1024, "max_attachments": 1})
    async with serving(create_app(small)) as client:
        huge = await client.post(
            "/complaints", **multipart(PLAIN, ("x.png", files.noise(200 * 1024), "image/png"))
        )
        padded = {**PLAIN, "body": "x" * 3000, "title": "y" * 200}
        json_body = json.dumps({**padded, "reporter": {"name": "z" * 200}})
        big_json = await client.post(
            "/complaints",
            content=json_body.encode() + b" " * (settings.max_request_bytes),
            headers={"content-type": "application/json"},
        )
    assert huge.status_code == 413 and big_json.status_code == 413
    assert await stream_messages(settings, settings.subjects.events_stream) == []


async def test_too_many_files_are_refused(settings):
    attached = [(f"{i}.jpg", files.photo(seed=i), "image/jpeg") for i in range(6)]
    async with serving(create_app(settings)) as client:
        r = await client.post("/complaints", **multipart(PLAIN, *attached))
        five = await client.post("/complaints", **multipart(PLAIN, *attached[:5]))
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"field": "attachments", "reason": "at most 5 files"}]
    assert five.status_code == 202, five.text
    [event] = await received_events(settings)
    assert len(event.attachments) == 5 and len(await objects(settings)) == 5


async def test_a_retry_with_the_same_key_stores_one_object_and_one_event(settings):
    headers = {"Idempotency-Key": "attach-retry-0001"}
    photo = ("IMG_1.jpg", files.phone_photo(), "image/jpeg")
    async with serving(create_app(settings)) as client:
        first = await client.post("/complaints", headers=headers, **multipart(PLAIN, photo))
        second = await client.post("/complaints", headers=headers, **multipart(PLAIN, photo))
        other = ("IMG_2.jpg", files.phone_photo(seed=9), "image/jpeg")
        reused = await client.post("/complaints", headers=headers, **multipart(PLAIN, other))
    assert first.status_code == second.status_code == 202, second.text
    assert first.json() == second.json()
    assert reused.status_code == 422
    assert reused.json()["errors"] == [
        {"field": "Idempotency-Key", "reason": "already used for a different complaint"}
    ]
    assert len(await received_events(settings)) == 1
    stored = await objects(settings)
    assert len(stored) == 1  # and the refused request's photo was never stored
    nc = await nats.connect(settings.nats_url)
    try:
        info = await nc.jetstream().stream_info(f"OBJ_{settings.subjects.attachments_bucket}")
    finally:
        await nc.close()
    assert info.state.messages == 2  # one chunk and one record: nothing written twice


async def test_the_same_bytes_twice_are_one_attachment(settings):
    photo = files.phone_photo()
    async with serving(create_app(settings)) as client:
        r = await client.post(
            "/complaints",
            **multipart(PLAIN, ("a.jpg", photo, "image/jpeg"), ("b.jpg", photo, "image/jpeg")),
        )
    assert r.status_code == 202, r.text
    [event] = await received_events(settings)
    assert [a.filename for a in event.attachments] == ["a.jpg"]


@pytest.mark.parametrize(
    ("complaint_part", "field"),
    [
        (json.dumps({**PLAIN, "title": "abc"}), "title"),
        (json.dumps({**PLAIN, "location": {"lat": 120, "lon": 1}}), "location.lat"),
        ("{not json", "complaint"),
        (None, "complaint"),
    ],
)
async def test_a_bad_complaint_part_names_the_field_and_stores_nothing(
    settings, complaint_part, field
):
    parts = [("attachments", ("a.jpg", files.phone_photo(), "image/jpeg"))]
    if complaint_part is not None:
        parts.insert(0, ("complaint", (None, complaint_part.encode(), "application/json")))
    async with serving(create_app(settings)) as client:
        r = await client.post("/complaints", files=parts)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]
    assert await stream_messages(settings, settings.subjects.events_stream) == []
    assert await objects(settings) == {}


async def test_multipart_without_files_and_an_empty_file_input_are_a_plain_complaint(settings):
    async with serving(create_app(settings)) as client:
        alone = await client.post("/complaints", **multipart(PLAIN))
        empty_input = await client.post(
            "/complaints", **multipart(PLAIN, ("", b"", "application/octet-stream"))
        )
    assert alone.status_code == empty_input.status_code == 202, empty_input.text
    events = await received_events(settings)
    assert [e.attachments for e in events] == [[], []]
    assert await objects(settings) == {}
