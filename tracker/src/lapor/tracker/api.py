"""Tracker HTTP API: the status of a complaint, and the agency's follow-up and resolution.

Reads come from the read model; actions are decided on the complaint's state rebuilt from
the log itself and appended with the last sequence they saw, so two racing actions cannot
both succeed and a lagging read model cannot mislead a decision.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lapor.services.eventstore import ConcurrencyError, EventStore
from lapor.services.runtime import Runtime, correlation_uuid, runtime_of
from lapor.shared.envelope import Event, decode, envelope
from lapor.shared.events import OPD_CODE
from lapor.shared.tracking import PATTERN as TRACKING_ID
from lapor.shared.tracking import normalise
from lapor.tracker import domain
from lapor.tracker.domain import ComplaintState, NotAllowed, NotFound, Status
from lapor.tracker.read_model import complaint_view

router = APIRouter(tags=["tracker"])

TrackingId = Annotated[str, Path(pattern=TRACKING_ID, description="Tracking ID, e.g. 7K3MQ-9X2AB")]
OpdCode = Annotated[str, Path(pattern=OPD_CODE)]


class HistoryEntry(BaseModel):
    event: str
    status: Status
    status_label: str
    opd: str | None
    note: str | None
    at: datetime


class ComplaintStatus(BaseModel):
    tracking_id: str
    status: Status
    status_label: str = Field(description="The public status (Belum Terverifikasi ... Selesai)")
    opd: str | None
    opd_name: str | None
    title: str | None = Field(description="Withheld when the complaint is confidential (Rahasia)")
    received_at: datetime
    updated_at: datetime
    history: list[HistoryEntry]


@router.get("/complaints/{tracking_id}", response_model=ComplaintStatus)
async def get_complaint(
    tracking_id: Annotated[str, Path(max_length=20, description="As typed, e.g. 7k3mq 9x2ab")],
    rt: Annotated[Runtime, Depends(runtime_of)],
) -> ComplaintStatus:
    """Cek status: the public status and history of one complaint."""
    tracking_id = normalise(tracking_id)
    if not re.match(TRACKING_ID, tracking_id):
        raise RequestValidationError(
            [
                {
                    "loc": ("path", "tracking_id"),
                    "msg": "not a tracking ID (ten letters and digits, e.g. 7K3MQ-9X2AB)",
                    "type": "value_error",
                }
            ]
        )
    view = await complaint_view(rt.db, tracking_id)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no complaint with this tracking ID yet")
    c = view["complaint"]
    return ComplaintStatus(
        tracking_id=c["tracking_id"],
        status=c["status"],
        status_label=domain.PUBLIC_LABEL[Status(c["status"])],
        opd=c["opd"],
        opd_name=c["opd_name"],
        title=None if c["confidential"] else c["title"],
        received_at=c["received_at"],
        updated_at=c["updated_at"],
        history=[
            HistoryEntry(
                event=h["event_type"],
                status=h["status"],
                status_label=domain.PUBLIC_LABEL[Status(h["status"])],
                opd=h["opd"],
                note=h["note"],
                at=h["occurred_at"],
            )
            for h in view["history"]
        ],
    )


class FollowUp(BaseModel):
    message: str = Field(min_length=1, max_length=4000)
    officer: str | None = Field(default=None, max_length=200)


class Resolution(BaseModel):
    resolution: str = Field(min_length=1, max_length=4000)
    officer: str | None = Field(default=None, max_length=200)


class ActionAccepted(BaseModel):
    tracking_id: str
    event_id: str
    status: Status


@router.post(
    "/agencies/{opd}/complaints/{tracking_id}/follow-ups",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionAccepted,
)
async def post_follow_up(
    opd: OpdCode,
    tracking_id: TrackingId,
    body: FollowUp,
    request: Request,
    rt: Annotated[Runtime, Depends(runtime_of)],
) -> ActionAccepted | JSONResponse:
    """Tindak lanjut: the OPD the complaint is disposed to reports what it is doing."""
    return await _act(
        rt, request, tracking_id, lambda s: domain.follow_up(s, opd, body.message, body.officer)
    )


@router.post(
    "/agencies/{opd}/complaints/{tracking_id}/resolution",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionAccepted,
)
async def post_resolution(
    opd: OpdCode,
    tracking_id: TrackingId,
    body: Resolution,
    request: Request,
    rt: Annotated[Runtime, Depends(runtime_of)],
) -> ActionAccepted | JSONResponse:
    """Selesai: the OPD declares the complaint finished."""
    return await _act(
        rt, request, tracking_id, lambda s: domain.resolve(s, opd, body.resolution, body.officer)
    )


async def _act(
    rt: Runtime, request: Request, tracking_id: str, decide
) -> ActionAccepted | JSONResponse:
    state, last_seq = await load_state(rt.store, tracking_id)
    try:
        event = decide(state)
    except NotFound:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "no such complaint for this agency"
        ) from None
    except NotAllowed as e:
        return _conflict(str(e), e.status, e.allowed)
    env = envelope(event, complaint_id=tracking_id, correlation_id=correlation_uuid(request))
    try:
        await rt.store.append(env, expected_last_seq=last_seq)
    except ConcurrencyError:
        state, _ = await load_state(rt.store, tracking_id)
        current = state.status if state else Status.RECEIVED
        return _conflict(
            "another action on this complaint came first; reload and retry",
            current,
            domain.allowed_actions(current),
        )
    after = domain.evolve(state, event, tracking_id, env.occurred_at)
    assert after is not None
    return ActionAccepted(tracking_id=tracking_id, event_id=str(env.event_id), status=after.status)


def _conflict(detail: str, current: Status, allowed: list[str]) -> JSONResponse:
    return JSONResponse(
        {"detail": detail, "status": current, "allowed_actions": allowed},
        status_code=status.HTTP_409_CONFLICT,
    )


async def load_state(store: EventStore, tracking_id: str) -> tuple[ComplaintState | None, int]:
    """The complaint's state folded from the log, and the sequence it was read at."""
    state: ComplaintState | None = None
    last_seq = 0
    for stored in await store.load(tracking_id):
        event: Event = decode(stored.envelope)
        state = domain.evolve(state, event, tracking_id, stored.envelope.occurred_at)
        last_seq = stored.seq
    return state, last_seq
