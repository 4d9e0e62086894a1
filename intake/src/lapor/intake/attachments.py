"""What intake makes of a file a reporter attached, free of I/O: its type found from the
bytes themselves, its size checked, an image re-encoded without its metadata.

* **Types** are told by the bytes (their signature, then Pillow must decode the whole
  image as that format), never by the client's content type or file name: JPEG, PNG,
  WebP and PDF. A file named ``foto.jpg`` that is an HTML page or a program is refused.
* **Images** are decoded and encoded again (Pillow), with nothing but the pixels: EXIF
  (camera, serial numbers, times, GPS), XMP, IPTC, ICC profiles, comments and text
  chunks are all gone from what is stored, whatever the reporter chose. The EXIF
  orientation is applied to the pixels first, so a photo still stands the right way up.
  Animated images are refused (only the first frame would be kept, silently).
* **The reporter's location**: if they opt in (``share_photo_location``) and are not
  anonymous, the GPS position of the first photo that has one becomes the complaint's
  ``location.lat``/``lon`` when they gave none. The stored file never carries it.
* **PDFs** are stored as sent (there is no cleaning a PDF without rewriting it); one
  that names JavaScript, a launch action or an embedded file in its uncompressed
  structure is refused. Content inside compressed object streams is not inspected.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from lapor.shared.events import UNSTORABLE

JPEG, PNG, WEBP, PDF = "image/jpeg", "image/png", "image/webp", "application/pdf"

EXTENSIONS = {JPEG: (".jpg", ".jpeg"), PNG: (".png",), WEBP: (".webp",), PDF: (".pdf",)}
"""The accepted types and the file name extensions that go with each (the first one is
added to a name that has none of them)."""

_PILLOW_FORMAT = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}

ACCEPTED_WORDS = "JPEG, PNG, WebP or PDF"

_PDF_ACTIVE = re.compile(rb"/(JavaScript|Launch|EmbeddedFile|RichMedia)(?![A-Za-z0-9])")

GPS_IFD = 0x8825
"""The EXIF tag of the GPS directory."""


class Refused(Exception):
    """The file is not accepted; ``reason`` says why in words for the reporter (never
    quoting the file)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Cleaned:
    """A file as it is stored: its bytes, their type, its name, and the position the
    photo was taken at (read from its metadata before that was removed), if any."""

    data: bytes
    media_type: str
    filename: str | None
    sent_sha256: str
    """Of the bytes as sent: what identifies the request (idempotency)."""
    gps: tuple[float, float] | None = None


def sniff(data: bytes) -> str | None:
    """The accepted type the bytes begin like, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data.startswith(b"%PDF-"):
        return PDF
    return None


def clean(
    data: bytes,
    filename: str | None,
    *,
    max_bytes: int,
    max_pixels: int,
    read_gps: bool = False,
) -> Cleaned:
    """The file as intake stores it, or :class:`Refused`."""
    if not data:
        raise Refused("the file is empty")
    if len(data) > max_bytes:
        raise Refused(f"larger than {max_bytes} bytes")
    media_type = sniff(data)
    if media_type is None:
        raise Refused(f"not an accepted type ({ACCEPTED_WORDS}), judged by its content")
    name = clean_filename(filename, media_type)
    sent = hashlib.sha256(data).hexdigest()
    if media_type == PDF:
        if _PDF_ACTIVE.search(data):
            raise Refused("a PDF with scripts, actions or embedded files is not accepted")
        return Cleaned(data, PDF, name, sent)
    stored, gps = _clean_image(data, media_type, max_pixels, read_gps)
    if len(stored) > max_bytes:
        raise Refused(f"larger than {max_bytes} bytes once cleaned")
    return Cleaned(stored, media_type, name, sent, gps)


def _clean_image(
    data: bytes, media_type: str, max_pixels: int, read_gps: bool
) -> tuple[bytes, tuple[float, float] | None]:
    fmt = _PILLOW_FORMAT[media_type]
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise Refused(f"the image is larger than {max_pixels} pixels")
            if getattr(img, "n_frames", 1) > 1:
                raise Refused("animated images are not accepted")
            img.load()  # the whole image: a truncated or disguised file fails here
            gps = _gps(img) if read_gps else None
            upright = ImageOps.exif_transpose(img)
            return _encode(upright, fmt), gps
    except Image.DecompressionBombError:
        raise Refused(f"the image is larger than {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise Refused(f"not a readable {fmt} image") from None


def _encode(img: Image.Image, fmt: str) -> bytes:
    """The pixels alone, in ``fmt``: no metadata of any kind is passed to the encoder."""
    options: dict[str, object] = {}
    if fmt == "JPEG":
        if img.mode not in ("L", "RGB", "CMYK"):
            img = img.convert("RGB")
        options = {"quality": 90, "optimize": True}
    elif fmt == "PNG":
        keyed = "transparency" in img.info  # a colour key lives in info: made RGBA
        if keyed or img.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
            img = img.convert("RGBA")
        options = {"optimize": True}
    else:  # WEBP
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        options = {"quality": 90}
    # A fresh image of the same pixels: nothing of the source's ``info`` (ICC profile,
    # EXIF, XMP, comments, text chunks) can reach the encoder by a default.
    bare = Image.new(img.mode, img.size)
    if img.mode == "P":
        palette = img.getpalette()
        if palette:
            bare.putpalette(palette)
    bare.paste(img)
    out = io.BytesIO()
    bare.save(out, format=fmt, **options)
    return out.getvalue()


def _gps(img: Image.Image) -> tuple[float, float] | None:
    """Latitude and longitude from the image's EXIF GPS directory, if whole and sane."""
    try:
        gps = img.getexif().get_ifd(GPS_IFD)
        lat = _degrees(gps[2], gps.get(1, "N"), "S")
        lon = _degrees(gps[4], gps.get(3, "E"), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat, lon) == (0.0, 0.0):
        return None
    return round(lat, 6), round(lon, 6)


def _degrees(dms: tuple, ref: object, negative: str) -> float:
    d, m, s = (float(x) for x in dms)
    value = d + m / 60 + s / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    return -value if str(ref).strip().upper() == negative else value


MAX_NAME = 120


def clean_filename(given: str | None, media_type: str) -> str | None:
    """The name to keep: the last part of a path, without control characters or
    surrounding spaces, at most ``MAX_NAME`` characters, ending with an extension of its
    real type (``laporan.jpg`` that is a PNG becomes ``laporan.jpg.png``). None if
    nothing is left."""
    if not given:
        return None
    name = unicodedata.normalize("NFC", given)
    name = re.split(r"[/\\]", name)[-1]
    name = UNSTORABLE.sub("", name)
    name = re.sub(r"\s+", " ", name).strip().strip(".")
    if not name:
        return None
    extensions = EXTENSIONS[media_type]
    if not name.lower().endswith(extensions):
        name = f"{name}{extensions[0]}"
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = f"{stem[: MAX_NAME - len(ext) - 1]}{dot}{ext}"
    return name
