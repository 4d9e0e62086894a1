"""POST /complaints: validate, store the attachments, append ``ComplaintReceived`` to the
log, answer 202 with the tracking ID only once JetStream has acknowledged the append.

The complaint comes as JSON, or as ``multipart/form-data`` with the same JSON in a part
``complaint`` and up to ``LAPOR_MAX_ATTACHMENTS`` files in parts ``attachments``
(:mod:`lapor.intake.attachments` says what is accepted and how images are cleaned). Every
file is checked before anything is stored; each is then stored in the object store
under the sha256 of its stored bytes, and only then is the event appended, carrying
references: an accepted complaint's files are durable before the 202.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import nats.errors
import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from lapor.intake import attachments as files_
from lapor.intake.domain import Submission, fresh_candidates, key_digest, keyed_candidates
from lapor.services import tracing
from lapor.services.attachments import sha256_hex
from lapor.services.auth import reporter_secret
from lapor.services.errors import invalid
from lapor.services.eventstore import ConcurrencyError, EventStore
from lapor.services.runtime import Runtime, correlation_uuid, runtime_of
from lapor.services.settings import Settings
from lapor.shared import snapshot as snapshots
from lapor.shared.envelope import derived_event_id, envelope
from lapor.shared.events import AttachmentRef, ComplaintReceived, ReporterIdentified

log = structlog.get_logger(__name__)
router = APIRouter(tags=["intake"])

KEY_HEADER = "Lapor-Idempotency-Key"
FINGERPRINT_HEADER = "Lapor-Request-Fingerprint"


class Accepted(BaseModel):
    tracking_id: str
    status: str = "received"
    track: str
    reporter_secret: str | None = Field(
        default=None,
        description="Keep it: with the tracking ID it lets the reporter reply, rate and reopen",
    )


class KeyReused(Exception):
    pass


def _is_multipart(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.lower().startswith(b"multipart/form-data")
    return False


class MultipartRoute(APIRoute):
    """A route taken only by a ``multipart/form-data`` request: the same path and method
    as the JSON route, which keeps every other request exactly as it was."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not _is_multipart(scope):
            return Match.NONE, {}
        return super().matches(scope)


RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid field (a file: `attachments[i]` and why)"},
    503: {"description": "Log or attachment store unavailable; nothing was recorded"},
}

MULTIPART_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["complaint"],
                    "properties": {
                        "complaint": {
                            "$ref": "#/components/schemas/Submission",
                            "description": "The complaint: the same JSON object as the "
                            "application/json body",
                        },
                        "attachments": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Photos and documents: JPEG, PNG, WebP or PDF, "
                            "told by their content (never by the name or the part's content "
                            "type); at most LAPOR_MAX_ATTACHMENTS files (5 by default) of "
                            "LAPOR_MAX_ATTACHMENT_BYTES each (5 MiB by default). Images are "
                            "stored re-encoded, without EXIF, GPS, XMP or comments. A refused "
                            "file is a 422 naming it (`attachments[0]`, ...) and nothing is "
                            "stored or appended",
                        },
                    },
                    "additionalProperties": False,
                },
                "encoding": {
                    "complaint": {"contentType": "application/json"},
                    "attachments": {
                        "contentType": "image/jpeg, image/png, image/webp, application/pdf"
                    },
                },
            }
        }
    }
}


async def submit_with_files(
    request: Request,
    rt: Annotated[Runtime, Depends(runtime_of)],
    idempotency_key: Annotated[str | None, Header(min_length=8, max_length=200)] = None,
) -> Accepted:
    """The multipart variant of ``POST /complaints`` (documented on the JSON route)."""
    submission, uploads = await _read_multipart(request, rt.settings)
    cleaned = await _clean_all(uploads, submission, rt.settings)
    return await _submit(rt, request, submission, idempotency_key, cleaned)


router.add_api_route(
    "/complaints",
    submit_with_files,
    methods=["POST"],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    include_in_schema=False,
    route_class_override=MultipartRoute,
)


@router.post(
    "/complaints",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=RESPONSES,
    openapi_extra=MULTIPART_BODY,
)
async def submit_complaint(
    submission: Submission,
    request: Request,
    rt: Annotated[Runtime, Depends(runtime_of)],
    idempotency_key: Annotated[str | None, Header(min_length=8, max_length=200)] = None,
) -> Accepted:
    """Lapor: submit a complaint, aspiration or information request.

    As ``application/json``, or as ``multipart/form-data`` with the same JSON in the part
    ``complaint`` and photos or documents in parts ``attachments``: each is checked by its
    content (JPEG, PNG, WebP, PDF), images are stored re-encoded without their metadata
    (with ``share_photo_location`` and not anonymous, a photo's GPS position becomes the
    location when none is given), and every file is stored before the complaint is
    appended. The event carries references and digests, never the bytes; the tracker
    serves them to those who may read the complaint."""
    return await _submit(rt, request, submission, idempotency_key, [])


async def _submit(
    rt: Runtime,
    request: Request,
    submission: Submission,
    idempotency_key: str | None,
    cleaned: Sequence[files_.Cleaned],
) -> Accepted:
    secret = rt.settings.auth_secret
    tries, marks = _candidates(
        secret.get_secret_value() if secret else None,
        idempotency_key,
        submission,
        [f"{c.sent_sha256}:{c.filename or ''}" for c in cleaned],
    )
    try:
        # The submission's span (in the request's trace, which the caller's traceparent
        # may continue): the events appended in it carry the trace on to every consumer.
        with tracing.tracer().start_as_current_span("intake submit") as span:
            refs, gps = [], None
            if cleaned:
                if marks:
                    # A retry of an accepted request stores nothing; the key reused for
                    # other content is refused before anything is stored.
                    await _known_retry(rt.store, idempotency_key, secret, marks)
                refs = await _store_files(rt, cleaned)
                gps = next((c.gps for c in cleaned if c.gps is not None), None)
            event = submission.received(refs, gps)
            tracking_id = await _append(
                rt.store, submission, event, tries, marks, correlation_uuid(request)
            )
            span.set_attribute("lapor.complaint_id", tracking_id)
    except KeyReused:
        raise RequestValidationError(
            [
                {
                    "loc": ("header", "Idempotency-Key"),
                    "msg": "already used for a different complaint",
                    "type": "value_error",
                }
            ]
        ) from None
    except (nats.errors.Error, TimeoutError) as e:
        log.error("log unavailable, complaint not accepted", error=repr(e))
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the complaint log is unavailable; nothing was recorded, please retry",
            headers={"Retry-After": "5"},
        ) from None
    return Accepted(
        tracking_id=tracking_id,
        track=f"/complaints/{tracking_id}",
        reporter_secret=reporter_secret(secret.get_secret_value(), tracking_id) if secret else None,
    )


Candidates = Iterator[tuple[str, uuid.UUID]]


def _candidates(
    secret: str | None, key: str | None, submission: Submission, files: Sequence[str] = ()
) -> tuple[Candidates, dict[str, str]]:
    """The (tracking ID, event id) pairs to try, and the headers by which a retry of this
    very request is recognised in the log (none without a key)."""
    if key is None:
        return fresh_candidates(), {}
    if secret is None:
        # Never fall back to an unkeyed hash: anyone knowing the key could derive the ID.
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "idempotency keys are not configured (no deployment secret); nothing was recorded",
        )
    marks = {
        KEY_HEADER: key_digest(secret, key),
        FINGERPRINT_HEADER: submission.fingerprint(secret, files),
    }
    return keyed_candidates(secret, key), marks


async def _append(
    store: EventStore,
    submission: Submission,
    received: ComplaintReceived,
    candidates: Candidates,
    retry_marks: dict[str, str],
    correlation_id: uuid.UUID,
) -> str:
    """Append the complaint under the first free candidate ID; ``retry_marks`` recognise a
    retry of this very request under an ID already taken."""
    for tracking_id, event_id in candidates:
        env = envelope(
            received,
            complaint_id=tracking_id,
            correlation_id=correlation_id,
            event_id=event_id,
        )
        try:
            # The complaint's first snapshot, which its later writers fold on from.
            first = snapshots.headers(snapshots.after(None, received, env, 0))
            await store.append(env, expected_last_seq=0, headers={**retry_marks, **first})
        except ConcurrencyError:
            # The ID is taken: by this very request (a retry), or by another one.
            existing = await store.last(tracking_id, env.type)
            held = existing.headers if existing else {}
            if not retry_marks or held.get(KEY_HEADER) != retry_marks[KEY_HEADER]:
                continue
            if held.get(FINGERPRINT_HEADER) != retry_marks[FINGERPRINT_HEADER]:
                raise KeyReused from None
            event_id = existing.envelope.event_id if existing else event_id
            log.info("idempotent retry", complaint_id=tracking_id)
        await _keep_contact(store, submission, tracking_id, event_id, correlation_id)
        log.info("complaint accepted", complaint_id=tracking_id)
        return tracking_id
    raise RuntimeError("no free tracking ID after several attempts")


async def _keep_contact(
    store: EventStore,
    submission: Submission,
    tracking_id: str,
    received_id: uuid.UUID,
    correlation_id: uuid.UUID,
) -> None:
    """Record the reporter's contact in its own erasable stream (also on a retry, in case
    the first attempt stopped between the two appends; the message id de-duplicates)."""
    if submission.reporter is None:
        return
    env = envelope(
        ReporterIdentified(**submission.reporter.model_dump()),
        complaint_id=tracking_id,
        correlation_id=correlation_id,
        causation_id=received_id,
        event_id=derived_event_id(received_id, "reporter"),
    )
    subjects = store.subjects
    await store.publish(subjects.reporter(tracking_id), env, subjects.reporters_stream)


# --- attachments ---------------------------------------------------------------------------

COMPLAINT_PART, FILES_PART = "complaint", "attachments"


def _files_field(index: int | None = None) -> str:
    return FILES_PART if index is None else f"{FILES_PART}[{index}]"


async def _read_multipart(
    request: Request, settings: Settings
) -> tuple[Submission, list[tuple[int, UploadFile]]]:
    """The complaint part, validated as the JSON body is, and the file parts that hold a
    file, with their place among the parts ``attachments`` (a browser sends an empty part
    when none was chosen)."""
    try:
        form = await request.form(
            # Counted here too (two more: an empty part, and one to tell "too many").
            max_files=settings.max_attachments + 2,
            max_fields=8,
            max_part_size=settings.max_request_bytes,
        )
    except StarletteHTTPException as e:
        if e.status_code != 400:
            raise  # 413: the body limit
        if "Too many files" in str(e.detail):
            raise invalid(
                FILES_PART, f"at most {settings.max_attachments} files", where="body"
            ) from None
        if "exceeded maximum size" in str(e.detail):
            raise invalid(COMPLAINT_PART, "too large", where="body") from None
        raise invalid("body", "not a readable multipart/form-data body", where="body") from None
    except ValueError:
        raise invalid("body", "not a readable multipart/form-data body", where="body") from None
    unknown = sorted(set(form.keys()) - {COMPLAINT_PART, FILES_PART})
    if unknown:
        raise invalid(unknown[0], "not a part of a complaint", where="body")
    parts = form.getlist(COMPLAINT_PART)
    if len(parts) != 1:
        reason = "missing" if not parts else "given more than once"
        raise invalid(COMPLAINT_PART, f"{reason}: the complaint as JSON", where="body")
    submission = await _submission(parts[0], settings)
    uploads: list[tuple[int, UploadFile]] = []
    for index, item in enumerate(form.getlist(FILES_PART)):
        if item == "":
            continue  # the file input left empty, sent as a field
        if not isinstance(item, UploadFile):
            raise invalid(_files_field(index), "must be a file", where="body")
        if not item.filename and not item.size:
            continue  # the file input left empty
        uploads.append((index, item))
    if len(uploads) > settings.max_attachments:
        raise invalid(FILES_PART, f"at most {settings.max_attachments} files", where="body")
    return submission, uploads


async def _submission(part: str | UploadFile, settings: Settings) -> Submission:
    raw: str | bytes
    if isinstance(part, UploadFile):
        raw = await part.read(settings.max_request_bytes + 1)
        if len(raw) > settings.max_request_bytes:
            raise invalid(COMPLAINT_PART, "too large", where="body")
    else:
        raw = part
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise invalid(COMPLAINT_PART, "not valid JSON", where="body") from None
    try:
        return Submission.model_validate(data)
    except ValidationError as e:
        # The same field names as the JSON body's (``location.lat``).
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_input=False)]
        ) from None


async def _clean_all(
    uploads: Sequence[tuple[int, UploadFile]], submission: Submission, settings: Settings
) -> list[files_.Cleaned]:
    """Every file checked and cleaned (in threads: decoding an image takes a while), or a
    422 naming each refused one; duplicates (the same stored bytes) are kept once."""
    limit = settings.max_attachment_bytes

    async def one(upload: UploadFile) -> files_.Cleaned:
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise files_.Refused(f"larger than {limit} bytes")
        return await asyncio.to_thread(
            files_.clean,
            data,
            upload.filename,
            max_bytes=limit,
            max_pixels=settings.max_image_pixels,
            read_gps=submission.shares_photo_location,
        )

    results = await asyncio.gather(*(one(u) for _, u in uploads), return_exceptions=True)
    errors = []
    for (index, _), result in zip(uploads, results, strict=True):
        if isinstance(result, files_.Refused):
            errors.append(
                {"loc": ("body", _files_field(index)), "msg": result.reason, "type": "value_error"}
            )
        elif isinstance(result, BaseException):
            raise result
    if errors:
        raise RequestValidationError(errors)
    kept: dict[str, files_.Cleaned] = {}
    for result in results:
        assert isinstance(result, files_.Cleaned)
        kept.setdefault(sha256_hex(result.data), result)
    return list(kept.values())


async def _known_retry(
    store: EventStore, key: str | None, secret: Any, marks: dict[str, str]
) -> None:
    """Before storing files: :class:`KeyReused` if the key already holds another request."""
    if key is None or secret is None:
        return
    for tracking_id, _ in keyed_candidates(secret.get_secret_value(), key):
        existing = await store.last(tracking_id, ComplaintReceived.TYPE)
        if existing is None:
            return
        if existing.headers.get(KEY_HEADER) != marks[KEY_HEADER]:
            continue  # another request's ID: the append will try the next one
        if existing.headers.get(FINGERPRINT_HEADER) != marks[FINGERPRINT_HEADER]:
            raise KeyReused
        return


async def _store_files(rt: Runtime, cleaned: Sequence[files_.Cleaned]) -> list[AttachmentRef]:
    """Store each file (once: by the sha256 of its bytes) and return the references."""
    refs = []
    for c in cleaned:
        name, _ = await rt.attachments.put(c.data, c.media_type)
        refs.append(
            AttachmentRef(
                id=name, sha256=name, media_type=c.media_type, size=len(c.data), filename=c.filename
            )
        )
    return refs
