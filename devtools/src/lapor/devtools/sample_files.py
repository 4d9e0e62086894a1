"""Files a reporter might attach, made for tests: photos with the metadata a phone
writes (camera, times, GPS), and files that only pretend to be photos."""

from __future__ import annotations

import io

from PIL import Image

GPS_IFD = 0x8825
MAKE, MODEL, DATETIME, ORIENTATION = 0x010F, 0x0110, 0x0132, 0x0112

PONTIANAK = (-0.0263, 109.3425)
"""Where the test photos were "taken": Jl. Rahadi Usman, Pontianak."""


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round((value - degrees - minutes / 60) * 3600, 4)
    return (float(degrees), float(minutes), seconds)


def phone_exif(at: tuple[float, float] = PONTIANAK) -> Image.Exif:
    """EXIF as a phone writes it: camera, time, and the GPS position ``at``."""
    exif = Image.Exif()
    exif[MAKE] = "AcmeCam"
    exif[MODEL] = "Lapor Phone 7"
    exif[DATETIME] = "2026:07:30 08:15:00"
    lat, lon = at
    exif[GPS_IFD] = {
        1: "S" if lat < 0 else "N",
        2: _dms(lat),
        3: "W" if lon < 0 else "E",
        4: _dms(lon),
    }
    return exif


def photo(
    size: tuple[int, int] = (320, 240),
    fmt: str = "JPEG",
    exif: Image.Exif | None = None,
    seed: int = 0,
    **options: object,
) -> bytes:
    """A small picture (a gradient, different per ``seed``) in ``fmt``, with ``exif``."""
    width, height = size
    img = Image.new("RGB", size)
    img.putdata(
        [
            ((x * 7 + seed * 31) % 256, (y * 5) % 256, (x + y + seed) % 256)
            for y in range(height)
            for x in range(width)
        ]
    )
    out = io.BytesIO()
    if exif is not None:
        options["exif"] = exif.tobytes()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def phone_photo(seed: int = 0, at: tuple[float, float] = PONTIANAK) -> bytes:
    """A JPEG with a phone's EXIF (GPS included) and a comment."""
    return photo(exif=phone_exif(at), seed=seed, comment=b"taken by Siti")


def noise(n_bytes: int) -> bytes:
    """A PNG of random pixels, at least ``n_bytes`` long (it does not compress)."""
    import os

    side = int((n_bytes / 3) ** 0.5) + 8
    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


HTML_AS_JPEG = b"<!doctype html><script>alert(document.cookie)</script>"
EXECUTABLE_AS_JPEG = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(200)
ELF_AS_JPEG = b"\x7fELF\x02\x01\x01" + bytes(200)

PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)
PDF_WITH_SCRIPT = PDF.replace(
    b"/Type /Catalog", b"/Type /Catalog /OpenAction << /S /JavaScript /JS (app.alert(1)) >>"
)
