"""The photos and documents of a complaint: listed in its content, downloaded from the
object store by those who may read the complaint whole.

* the coordinating admin: ``GET /admin/complaints/{id}/attachments/{attachment_id}``;
* an officer of the unit the complaint is disposed to:
  ``GET /agencies/{opd}/complaints/{id}/attachments/{attachment_id}`` (a complaint not
  disposed to the unit, another unit's included, is a 404 like one that does not exist);
* its reporter: ``GET /complaints/{id}/attachments/{attachment_id}`` with
  ``X-Reporter-Secret`` (without it, or with a wrong one: 404).

Never the public and never another unit, whether the complaint is confidential or not:
a photo can show a face, a house, a number plate. The bytes are streamed as the store
sends them and checked against the digest the event carries; they go out as a download
(``Content-Disposition: attachment``) of the type intake found, with
``X-Content-Type-Options: nosniff`` and a sandboxing ``Content-Security-Policy``, so a
browser never runs what it is given.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

import nats.errors
import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Path, status
from pydantic import BaseModel, Field

from lapor.services.attachments import AttachmentMissing
from lapor.services.auth import AuthenticatedActor, auth_secret_of, is_reporter
from lapor.services.runtime import Runtime, runtime_of
from lapor.shared.events import OPD_CODE
from lapor.shared.tracking import PATTERN as TRACKING_ID
from lapor.tracker.exports import ExportResponse
from lapor.tracker.read_model import complaint_attachments

log = structlog.get_logger(__name__)
attachments_router = APIRouter(tags=["tracker"])

TrackingId = Annotated[str, Path(pattern=TRACKING_ID, description="Tracking ID, e.g. 7K3MQ-9X2AB")]
AttachmentId = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9_-]{1,128}$",
        description="The attachment's id, as the complaint's content lists it",
    ),
]
OpdCode = Annotated[str, Path(pattern=OPD_CODE)]
Rt = Annotated[Runtime, Depends(runtime_of)]


class Attachment(BaseModel):
    """A photo or document the reporter attached (the bytes: its download route)."""

    id: str
    filename: str | None = Field(description="As the reporter's device named it, cleaned")
    media_type: str = Field(description="Found from the bytes: image/jpeg, image/png, ...")
    size: int = Field(description="Bytes")
    sha256: str = Field(description="Digest of the bytes served, hex")


def attachments_of(complaint: dict[str, Any]) -> list[Attachment]:
    """The attachments of a complaint's read-model row (``tracker.complaints``)."""
    raw = complaint.get("attachment_refs") or "[]"
    refs = json.loads(raw) if isinstance(raw, str) else raw
    return [Attachment.model_validate(ref) for ref in refs]


_DOWNLOAD = {
    "response_class": ExportResponse,
    "responses": {
        200: {
            "description": "The file's bytes, as a download",
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}}
                for t in ("image/jpeg", "image/png", "image/webp", "application/pdf")
            },
        },
        404: {"description": "No such attachment for you (or it was erased)"},
        503: {"description": "The attachment store is unavailable; retry"},
    },
}


@attachments_router.get("/admin/complaints/{tracking_id}/attachments/{attachment_id}", **_DOWNLOAD)
async def admin_attachment(
    tracking_id: TrackingId, attachment_id: AttachmentId, rt: Rt, actor: AuthenticatedActor
) -> ExportResponse:
    """A file of a complaint, for the coordinating admin."""
    if actor.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only for the admin role")
    return await _download(rt, tracking_id, attachment_id, unit=None)


@attachments_router.get(
    "/agencies/{opd}/complaints/{tracking_id}/attachments/{attachment_id}", **_DOWNLOAD
)
async def agency_attachment(
    opd: OpdCode,
    tracking_id: TrackingId,
    attachment_id: AttachmentId,
    rt: Rt,
    actor: AuthenticatedActor,
) -> ExportResponse:
    """A file of a complaint disposed to the unit (another unit's complaint: 404)."""
    if actor.role != "agency" or actor.opd != opd:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this token is not for that unit")
    return await _download(rt, tracking_id, attachment_id, unit=opd)


@attachments_router.get("/complaints/{tracking_id}/attachments/{attachment_id}", **_DOWNLOAD)
async def reporter_attachment(
    tracking_id: TrackingId,
    attachment_id: AttachmentId,
    rt: Rt,
    secret: Annotated[str, Depends(auth_secret_of)],
    x_reporter_secret: Annotated[
        str | None, Header(description="The reporter's secret, given at submission")
    ] = None,
) -> ExportResponse:
    """A file of a complaint, for its reporter. Without the reporter's secret (or with a
    wrong one) a 404, as for a file that does not exist: the files are never public."""
    if not is_reporter(secret, tracking_id, x_reporter_secret):
        raise _not_found()
    return await _download(rt, tracking_id, attachment_id, unit=None)


def _not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, "no such attachment for you")


async def _download(
    rt: Runtime, tracking_id: str, attachment_id: str, unit: str | None
) -> ExportResponse:
    """``unit``: the complaint must be disposed to it (an officer's download)."""
    found = await complaint_attachments(rt.db, tracking_id)
    if found is None:
        raise _not_found()
    opd, _, refs = found
    if unit is not None and opd != unit:
        raise _not_found()
    ref = next((Attachment.model_validate(r) for r in refs if r["id"] == attachment_id), None)
    if ref is None:
        raise _not_found()
    try:
        size, chunks = await rt.attachments.open(ref.id, ref.sha256)
        # The first chunk before the 200: a store that cannot be read is a 503, not a
        # transfer cut short.
        first = await anext(chunks, b"")
    except AttachmentMissing:
        log.warning("attachment not in the store", complaint_id=tracking_id)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "the attachment is no longer stored"
        ) from None
    except (nats.errors.Error, TimeoutError) as e:
        log.error("attachment store unavailable", error=repr(e))
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the attachment store is unavailable; retry",
            headers={"Retry-After": "5"},
        ) from None
    digest = base64.b64encode(bytes.fromhex(ref.sha256)).decode()
    return ExportResponse(
        _guarded(first, chunks),
        media_type=ref.media_type,
        headers={
            "Content-Length": str(size),
            "Content-Disposition": _disposition(ref.filename, ref.media_type),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
            "ETag": f'"{ref.sha256}"',
            "Repr-Digest": f"sha-256=:{digest}:",
        },
    )


async def _guarded(first: bytes, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks; a failure after the 200 has gone out (the store lost, bytes that do not
    match their digest) propagates, so the transfer is cut short, never ended as whole."""
    try:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _disposition(filename: str | None, media_type: str) -> str:
    """``attachment`` with the file's name: an ASCII fallback and the UTF-8 original."""
    name = filename or "lampiran" + {
        "image/jpeg": ".jpg",
        "image/png": ".png",
        "image/webp": ".webp",
        "application/pdf": ".pdf",
    }.get(media_type, "")
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
