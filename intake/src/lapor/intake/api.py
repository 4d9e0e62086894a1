"""POST /complaints: validate, append ``ComplaintReceived`` to the log, answer 202 with the
tracking ID only once JetStream has acknowledged the append."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

import nats.errors
import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from lapor.intake.domain import Submission, fresh_candidates, key_digest, keyed_candidates
from lapor.services import tracing
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
    secret = rt.settings.auth_secret
    tries, marks = _candidates(
        secret.get_secret_value() if secret else None, idempotency_key, submission
    )
    try:
        # The submission's span (in the request's trace, which the caller's traceparent
        # may continue): the events appended in it carry the trace on to every consumer.
        with tracing.tracer().start_as_current_span("intake submit") as span:
            tracking_id = await _append(
                rt.store, submission, tries, marks, correlation_uuid(request)
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
    secret: str | None, key: str | None, submission: Submission
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
        FINGERPRINT_HEADER: submission.fingerprint(secret),
    }
    return keyed_candidates(secret, key), marks


async def _append(
    store: EventStore,
    submission: Submission,
    candidates: Candidates,
    retry_marks: dict[str, str],
    correlation_id: uuid.UUID,
) -> str:
    """Append the complaint under the first free candidate ID; ``retry_marks`` recognise a
    retry of this very request under an ID already taken."""
    for tracking_id, event_id in candidates:
        env = envelope(
            submission.received(),
            complaint_id=tracking_id,
            correlation_id=correlation_id,
            event_id=event_id,
        )
        try:
            await store.append(env, expected_last_seq=0, headers=retry_marks)
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
