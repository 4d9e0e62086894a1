"""What intake makes of a file, without servers: the type from the bytes, the metadata
gone, the photo's position read only when asked, names cleaned, limits kept."""

from __future__ import annotations

import hashlib
import hmac
import io

import pytest
from PIL import Image

from lapor.devtools import sample_files as files
from lapor.intake.attachments import PDF, Refused, clean, clean_filename, sniff
from lapor.intake.domain import Submission

LIMITS = {"max_bytes": 5 * 1024 * 1024, "max_pixels": 40_000_000}


def test_the_type_is_told_by_the_bytes() -> None:
    assert sniff(files.photo()) == "image/jpeg"
    assert sniff(files.photo(fmt="PNG")) == "image/png"
    assert sniff(files.photo(fmt="WEBP")) == "image/webp"
    assert sniff(files.PDF) == PDF
    for fake in (files.HTML_AS_JPEG, files.EXECUTABLE_AS_JPEG, files.ELF_AS_JPEG, b"GIF89a"):
        assert sniff(fake) is None


def test_a_phone_photo_loses_every_trace_and_stands_upright() -> None:
    exif = files.phone_exif()
    exif[files.ORIENTATION] = 6  # taken with the phone on its side
    sent = files.photo(size=(40, 30), exif=exif, comment=b"taken by Siti")
    kept = clean(sent, "IMG.jpg", **LIMITS)
    assert kept.gps is None  # not asked for
    assert b"AcmeCam" not in kept.data and b"Exif" not in kept.data and b"Siti" not in kept.data
    with Image.open(io.BytesIO(kept.data)) as img:
        assert img.size == (30, 40)  # the orientation is in the pixels now
        assert not dict(img.getexif())


def test_the_position_is_read_only_when_asked() -> None:
    kept = clean(files.phone_photo(), "a.jpg", read_gps=True, **LIMITS)
    assert kept.gps == pytest.approx(files.PONTIANAK, abs=1e-5)
    assert b"Exif" not in kept.data
    north = clean(files.phone_photo(at=(1.5, -20.25)), "b.jpg", read_gps=True, **LIMITS)
    assert north.gps == pytest.approx((1.5, -20.25), abs=1e-5)
    bare = clean(files.photo(), "c.jpg", read_gps=True, **LIMITS)
    assert bare.gps is None


def test_a_transparent_png_stays_transparent_without_its_text() -> None:
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "Siti Rahmawati")
    out = io.BytesIO()
    img.save(out, format="PNG", pnginfo=info)
    kept = clean(out.getvalue(), "x.png", **LIMITS)
    assert b"Siti" not in kept.data
    with Image.open(io.BytesIO(kept.data)) as back:
        assert back.mode == "RGBA" and back.getpixel((0, 0))[3] == 0


@pytest.mark.parametrize(
    ("data", "limits", "reason"),
    [
        (files.noise(40_000), {"max_bytes": 20_000, "max_pixels": 10**8}, "larger than 20000"),
        (files.photo(size=(200, 200)), {"max_bytes": 10**7, "max_pixels": 1000}, "pixels"),
        (files.PDF_WITH_SCRIPT, LIMITS, "PDF with scripts"),
        (files.HTML_AS_JPEG, LIMITS, "not an accepted type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, LIMITS, "not a readable PNG"),
        (b"", LIMITS, "empty"),
    ],
)
def test_refused_files_say_why(data: bytes, limits: dict, reason: str) -> None:
    with pytest.raises(Refused) as refused:
        clean(data, "f", **limits)
    assert reason in refused.value.reason


def test_an_animated_image_is_refused() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, format="WEBP", save_all=True, append_images=frames[1:])
    with pytest.raises(Refused, match="animated"):
        clean(out.getvalue(), "a.webp", **LIMITS)


@pytest.mark.parametrize(
    ("given", "media_type", "kept"),
    [
        ("C:\\Users\\siti\\Foto Jalan.JPG", "image/jpeg", "Foto Jalan.JPG"),
        ("../../etc/passwd", "image/png", "passwd.png"),
        ("laporan.jpg", "image/png", "laporan.jpg.png"),
        ("surat\x00\x1b[2J.pdf", PDF, "surat[2J.pdf"),
        ("   ", "image/jpeg", None),
        (None, PDF, None),
        ("a" * 300 + ".pdf", PDF, "a" * 116 + ".pdf"),
    ],
)
def test_file_names_are_cleaned(given: str | None, media_type: str, kept: str | None) -> None:
    assert clean_filename(given, media_type) == kept


BASE = {"title": "Jalan berlubang", "body": "Lubang besar di depan pasar."}


def test_the_photo_position_becomes_the_location_only_when_shared_by_a_named_reporter() -> None:
    gps = (-0.0263, 109.3425)
    shared = Submission(**BASE, share_photo_location=True)
    assert (shared.received(gps=gps).location.lat, shared.received(gps=gps).location.lon) == gps
    assert Submission(**BASE).received(gps=gps).location is None
    anonymous = Submission(**BASE, share_photo_location=True, anonymous=True)
    assert anonymous.received(gps=gps).location is None
    placed = Submission(**BASE, share_photo_location=True, location={"lat": 1.0, "lon": 2.0})
    assert placed.received(gps=gps).location.lat == 1.0


def test_the_fingerprint_covers_the_files_and_is_unchanged_without_them() -> None:
    plain = Submission(**BASE)
    assert plain.fingerprint("k") == plain.fingerprint("k", [])
    # What a request sent before attachments existed left in the log still matches.
    before = plain.model_dump_json(exclude={"share_photo_location"}).encode()
    assert plain.fingerprint("k") == hmac.new(b"k", before, hashlib.sha256).hexdigest()
    assert plain.fingerprint("k", ["a:x.jpg"]) != plain.fingerprint("k", ["b:x.jpg"])
    assert plain.fingerprint("k", ["a:x.jpg"]) != plain.fingerprint("k")
