"""POST /complaints: validate, append ``ComplaintReceived`` to the log, answer 202 with the
tracking ID only once JetStream has acknowledged the append."""

from __future__ import annotations

import uuid
from typing import Annotated

import nats.errors
import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from lapor.intake.domain import Submission, candidates, key_digest
from lapor.services.auth import reporter_secret
from lapor.services.eventstore import ConcurrencyError, EventStore
from lapor.services.runtime import Runtime, correlation_uuid, runtime_of
from lapor.shared.envelope import derived_event_id, envelope
from lapor.shared.events import ReporterIdentified

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


@router.post(
    "/complaints",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={422: {"description": "Invalid field"}, 503: {"description": "Log unavailable"}},
)
async def submit_complaint(
    submission: Submission,
    request: Request,
    rt: Annotated[Runtime, Depends(runtime_of)],
    idempotency_key: Annotated[str | None, Header(min_length=8, max_length=200)] = None,
) -> Accepted:
    """Lapor: submit a complaint, aspiration or information request."""
    try:
        tracking_id = await _append(
            rt.store, submission, idempotency_key, correlation_uuid(request)
        )
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
    secret = rt.settings.auth_secret
    return Accepted(
        tracking_id=tracking_id,
        track=f"/complaints/{tracking_id}",
        reporter_secret=reporter_secret(secret.get_secret_value(), tracking_id) if secret else None,
    )


async def _append(
    store: EventStore, submission: Submission, key: str | None, correlation_id: uuid.UUID
) -> str:
    fingerprint = submission.fingerprint()
    digest = key_digest(key) if key else None
    for tracking_id, event_id in candidates(key):
        env = envelope(
            submission.received(),
            complaint_id=tracking_id,
            correlation_id=correlation_id,
            event_id=event_id,
        )
        headers = {FINGERPRINT_HEADER: fingerprint}
        if digest:
            headers[KEY_HEADER] = digest
        try:
            await store.append(env, expected_last_seq=0, headers=headers)
        except ConcurrencyError:
            # The ID is taken: by this very request (a retry), or by another one.
            existing = await store.last(tracking_id, env.type)
            if digest is None or existing is None or existing.headers.get(KEY_HEADER) != digest:
                continue
            if existing.headers.get(FINGERPRINT_HEADER) != fingerprint:
                raise KeyReused from None
            event_id = existing.envelope.event_id
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
