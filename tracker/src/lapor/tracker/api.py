"""Tracker HTTP API: status for everyone, and the actions of each role.

Reads come from the read model. Actions are decided on the complaint's state rebuilt from
the log itself and appended with the last sequence they saw: two racing actions cannot
both succeed, and a lagging read model cannot mislead a decision.

* anyone: read a status by tracking ID; list the non-confidential complaints;
* the coordinating admin (bearer token ``admin``): dispose, hold, resume, archive; the queue;
  read any complaint whole (content and the router's proposal);
* a liaison officer (bearer token ``agency:<opd>``): read whole, follow up, answer, decline
  (Bukan Wewenang), on complaints disposed to that OPD only;
* the reporter (``X-Reporter-Secret``, given at submission): reply, rate, reopen, confirm.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints

from lapor.services.auth import (
    AuthenticatedActor,
    InvalidToken,
    actor_from_token,
    auth_secret_of,
    is_reporter,
)
from lapor.services.commands import Latest, decide_and_append, latest
from lapor.services.errors import invalid
from lapor.services.eventstore import ConcurrencyError
from lapor.services.runtime import Runtime, correlation_uuid, runtime_of
from lapor.services.settings import DeadlineSettings
from lapor.shared.envelope import Envelope, envelope
from lapor.shared.events import (
    OPD_CODE,
    Actor,
    ArchiveReason,
    MessageText,
    NoteText,
    ReasonText,
)
from lapor.shared.registry import load_registry
from lapor.shared.tracking import PATTERN as TRACKING_ID
from lapor.shared.tracking import normalise
from lapor.tracker import domain
from lapor.tracker.attachments_api import Attachment, attachments_of
from lapor.tracker.domain import Forbidden, NotAllowed, NotFound, Status
from lapor.tracker.period import BadBound, period
from lapor.tracker.read_model import (
    complaint_view,
    list_by_due,
    list_complaints,
    list_public_complaints,
)

router = APIRouter(tags=["tracker"])

TrackingId = Annotated[str, Path(pattern=TRACKING_ID, description="Tracking ID, e.g. 7K3MQ-9X2AB")]
OpdCode = Annotated[str, Path(pattern=OPD_CODE)]
Rt = Annotated[Runtime, Depends(runtime_of)]


# --- reading ------------------------------------------------------------------------


class Location(BaseModel):
    """Lokasi kejadian as the reporter gave it; every field may be missing."""

    address: str | None
    kecamatan: str | None
    kelurahan: str | None
    lat: float | None
    lon: float | None


class HistoryEntry(BaseModel):
    event: str
    status: Status
    status_label: str
    opd: str | None
    note: str | None = Field(
        description="Withheld when the complaint is confidential, except from its reporter, "
        "the unit it is disposed to and the admin"
    )
    at: datetime


class ComplaintStatus(BaseModel):
    tracking_id: str
    status: Status
    status_label: str = Field(description="The public status (Belum Terverifikasi ... Selesai)")
    opd: str | None
    opd_name: str | None
    title: str | None = Field(
        description="Withheld when the complaint is confidential (Rahasia), except from its "
        "reporter, the unit it is disposed to and the admin"
    )
    category: str | None = Field(
        description="The category code; withheld like the title (it tells the subject)"
    )
    body: str | None = Field(
        description="What the reporter wrote, for a complaint that is not confidential (as "
        "LAPOR! publishes reports' text); null for a confidential one, whoever asks (its "
        "content is read at /admin/... and /agencies/...). Never the reporter's identity, "
        "which the tracker does not have"
    )
    location: Location | None = Field(
        description="Where it happened (address, kecamatan, kelurahan, lat/lon as given), "
        "for a complaint that is not confidential; null for a confidential one"
    )
    received_at: datetime
    updated_at: datetime
    due_at: datetime | None = Field(description="When the current step is due, if a clock runs")
    overdue: bool
    history: list[HistoryEntry]


def _invalid(field: str, reason: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("path", field), "msg": reason, "type": "value_error"}])


@router.get(
    "/complaints/{tracking_id}",
    response_model=ComplaintStatus,
    responses={404: {"description": "No complaint with this tracking ID (yet)"}},
)
async def get_complaint(
    tracking_id: Annotated[str, Path(max_length=20, description="As typed, e.g. 7k3mq 9x2ab")],
    rt: Rt,
    authorization: Annotated[
        str | None, Header(description="Optional: the admin's or the unit's bearer token")
    ] = None,
    x_reporter_secret: Annotated[
        str | None, Header(description="Optional: the reporter's secret")
    ] = None,
) -> ComplaintStatus:
    """Cek status: the status and history of one complaint.

    A confidential (Rahasia) complaint shows the public its status, unit and dates only:
    no title, category, body, location or notes (the notes quote the router's keywords,
    the unit's follow-ups and everyone's reasons and so give the content away). Its
    reporter (``X-Reporter-Secret``), the unit it is disposed to and the admin (bearer
    token) see its title, category and notes; its text and place stay off this page for
    everyone (they read them at ``/admin/…`` and ``/agencies/…``). Any other complaint
    shows everyone its text and place (as LAPOR! publishes reports) and its notes: a
    public follow-up is what the channel promises. Never the reporter's identity: the
    tracker does not have it. A missing, invalid or foreign credential is not refused here:
    the caller simply reads the public page.
    """
    tracking_id = normalise(tracking_id)
    if not re.match(TRACKING_ID, tracking_id):
        raise _invalid(
            "tracking_id", "not a tracking ID (ten letters and digits, e.g. 7K3MQ-9X2AB)"
        )
    view = await complaint_view(rt.db, tracking_id)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no complaint with this tracking ID yet")
    complaint = view["complaint"]
    reader = _reader(rt, tracking_id, authorization, x_reporter_secret)
    whole = not complaint["confidential"] or domain.reads_confidential(reader, complaint["opd"])
    return _status(view, labels=domain.PUBLIC_LABEL, withheld=not whole)


def _reader(
    rt: Runtime, tracking_id: str, authorization: str | None, given_secret: str | None
) -> Actor | None:
    """Who reads a status page: its reporter, an admin or an officer; None for the public,
    also when a credential does not check out (the page is public, so no 401)."""
    secret = rt.settings.auth_secret
    if secret is None:
        return None
    key = secret.get_secret_value()
    if is_reporter(key, tracking_id, given_secret):
        return Actor(role="reporter")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return actor_from_token(key, token)
    except InvalidToken:
        return None


def _status(view: dict[str, Any], labels: dict[Status, str], withheld: bool) -> ComplaintStatus:
    """The status page; ``withheld``: without the title and the notes."""
    c = view["complaint"]
    return ComplaintStatus(
        tracking_id=c["tracking_id"],
        status=c["status"],
        status_label=labels[Status(c["status"])],
        opd=c["opd"],
        opd_name=c["opd_name"],
        title=None if withheld else c["title"],
        category=None if withheld else c["category"],
        body=None if c["confidential"] else c["body"],
        location=None if c["confidential"] else _location(c),
        received_at=c["received_at"],
        updated_at=c["updated_at"],
        due_at=c["due_at"],
        overdue=c["overdue"],
        history=[
            HistoryEntry(
                event=h["event_type"],
                status=h["status"],
                status_label=labels[Status(h["status"])],
                opd=h["opd"],
                note=None if withheld else h["note"],
                at=h["occurred_at"],
            )
            for h in view["history"]
        ],
    )


class ComplaintSummary(BaseModel):
    tracking_id: str
    status: Status
    status_label: str
    opd: str | None
    opd_name: str | None
    category: str | None
    title: str
    received_at: datetime
    due_at: datetime | None
    overdue: bool
    proposed_opd: str | None = None


class ComplaintList(BaseModel):
    items: list[ComplaintSummary]
    next_after: str | None = Field(description="Pass as ?after= for the next page")


Page = Annotated[int, Query(ge=1, le=200)]
Order = Annotated[
    Literal["id", "due"],
    Query(description="id: by tracking ID; due: the earliest deadline first (a work queue)"),
]
DueBefore = Annotated[
    datetime | None,
    Query(description="Only complaints whose current step is due by then (ordered by due)"),
]


class PublicComplaintSummary(ComplaintSummary):
    """A complaint in the public listing, which never holds a confidential one: what
    LAPOR! publishes of a report (its text and place), never who reported it."""

    updated_at: datetime = Field(description="When its last event happened")
    body: str | None = Field(
        description="What the reporter wrote; None only for a complaint projected before "
        "the tracker kept content, until its read model is rebuilt"
    )
    location: Location


class PublicComplaintList(BaseModel):
    items: list[PublicComplaintSummary]
    next_after: str | None = Field(description="Pass as ?after= for the next page")


CategoryCode = Annotated[str, StringConstraints(max_length=64, pattern=r"^[a-z0-9_]*$")]


@router.get("/complaints", response_model=PublicComplaintList)
async def public_listing(
    rt: Rt,
    status_: Annotated[
        list[Status] | None,
        Query(alias="status", description="Any of these statuses (repeat the parameter)"),
    ] = None,
    category: Annotated[
        list[CategoryCode] | None,
        Query(
            description="Any of these category codes (repeat the parameter); an empty value "
            "stands for a complaint without a category"
        ),
    ] = None,
    opd: Annotated[str | None, Query(pattern=OPD_CODE)] = None,
    date_from: Annotated[
        str | None,
        Query(
            alias="from",
            description="Received on or after: a local date (2026-01-31, the whole day in "
            "the deployment's zone) or an instant with its offset",
        ),
    ] = None,
    date_to: Annotated[
        str | None,
        Query(
            alias="to",
            description="Received on or before: a local date (the whole day included) or an "
            "instant with its offset (included)",
        ),
    ] = None,
    after: Annotated[str | None, Query(pattern=TRACKING_ID)] = None,
    limit: Page = 50,
    order: Annotated[
        Literal["id", "newest"],
        Query(description="id: by tracking ID; newest: the latest received first"),
    ] = "id",
) -> PublicComplaintList:
    """Public listing by tracking ID, or the newest first with ``order=newest`` (keyset
    pagination either way: pass ``next_after`` as ``after``).

    Confidential (Rahasia) complaints never appear here, whatever the filters. Each item
    carries what LAPOR! publishes of a report: its text (``body``) and place
    (``location``), and ``updated_at``; never the reporter's identity, which the tracker
    does not have. The filters (``status``, ``category``, ``opd``, ``from``/``to`` on the
    reception) are applied before the page is cut: a page is full while more complaints
    match. A ``from``/``to`` that is not a date or an instant with its offset, lies
    before 1970, or a ``to`` before ``from``, is a 422 naming the parameter.
    """
    try:
        since, before = period(
            date_from, date_to, ZoneInfo(DeadlineSettings().timezone), names=("from", "to")
        )
    except BadBound as e:
        raise invalid(e.field, e.reason) from None
    rows = await list_public_complaints(
        rt.db,
        statuses=status_ or (),
        categories=category or (),
        opd=opd,
        since=since,
        before=before,
        after=after,
        limit=limit,
        newest=order == "newest",
    )
    items = [
        PublicComplaintSummary(
            **{k: r[k] for k in PublicComplaintSummary.model_fields if k in r},
            status_label=domain.PUBLIC_LABEL[Status(r["status"])],
            location=_location(r),
        )
        for r in rows
    ]
    return PublicComplaintList(
        items=items, next_after=items[-1].tracking_id if len(items) == limit else None
    )


@router.get("/admin/complaints", response_model=ComplaintList)
async def admin_queue(
    rt: Rt,
    actor: AuthenticatedActor,
    status_: Annotated[Status | Literal["all"], Query(alias="status")] = Status.RECEIVED,
    after: Annotated[str | None, Query(pattern=TRACKING_ID)] = None,
    limit: Page = 50,
    order: Order = "id",
    due_before: DueBefore = None,
) -> ComplaintList:
    """The coordinating admin's queue: by default what awaits verification, with proposals
    (``status=all``: every complaint; ``order=due``, ``due_before``: what nears or is past
    its deadline, the earliest first)."""
    _require(actor, "admin")
    wanted = None if status_ == "all" else Status(status_)
    rows = await _listing(rt, wanted, None, after, limit, order, due_before)
    return _page(rows, limit, domain.AGENCY_LABEL)


@router.get("/agencies/{opd}/complaints", response_model=ComplaintList)
async def agency_listing(
    opd: OpdCode,
    rt: Rt,
    actor: AuthenticatedActor,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    after: Annotated[str | None, Query(pattern=TRACKING_ID)] = None,
    limit: Page = 50,
    order: Order = "id",
    due_before: DueBefore = None,
) -> ComplaintList:
    """A unit's own complaints (including confidential ones, which it must handle); its
    inbox with ``order=due``: the earliest deadline first, those without one last."""
    _require_unit(actor, opd)
    rows = await _listing(rt, status_, opd, after, limit, order, due_before)
    return _page(rows, limit, domain.AGENCY_LABEL)


async def _listing(
    rt: Runtime,
    status_: Status | None,
    opd: str | None,
    after: str | None,
    limit: int,
    order: str,
    due_before: datetime | None,
) -> list[dict[str, Any]]:
    if order == "due" or due_before is not None:
        return await list_by_due(
            rt.db, status=status_, opd=opd, due_before=due_before, after=after, limit=limit
        )
    return await list_complaints(rt.db, status=status_, opd=opd, after=after, limit=limit)


class Candidate(BaseModel):
    opd: str
    probability: float


class Proposal(BaseModel):
    """The router's latest proposal for the complaint (``complaint.routed``)."""

    opd: str
    opd_name: str
    rule: str = Field(description="The routing rule that fired")
    reason: str = Field(description="Why, in words an operator can read")
    confidence: float
    candidates: list[Candidate] = Field(description="The text classifier's top units")
    level: str | None
    excluded: list[str] = Field(description="Units that declined and were not considered")
    rules_version: str
    model_version: str | None
    at: datetime


class ComplaintContent(BaseModel):
    """A complaint whole, as the unit it is disposed to and the coordinator read it. Never
    the reporter's identity: the tracker does not have it (it travels in a stream no
    agency reads); an anonymous (Anonim) complaint reads the same."""

    tracking_id: str
    status: Status
    status_label: str = Field(description="The admin's and the unit's label")
    opd: str | None
    opd_name: str | None
    report_type: str
    channel: str
    category: str | None
    title: str
    body: str | None = Field(
        description="None only for a complaint projected before the tracker kept content, "
        "until its read model is rebuilt (lapor replay tracker.status --swap)"
    )
    location: Location
    incident_date: date | None
    suggested_opd: str | None = Field(description="The unit the reporter thought responsible")
    attachments: list[Attachment] = Field(
        description="Photos and documents the reporter attached, in their order; the bytes "
        "at .../attachments/{id} of this complaint's path (/admin/... or /agencies/...)"
    )
    anonymous: bool
    confidential: bool
    received_at: datetime
    updated_at: datetime
    due_at: datetime | None
    overdue: bool
    history: list[HistoryEntry]
    allowed_actions: list[str] = Field(
        default_factory=list,
        description="What the reader (the coordinator, or the unit) may do now; the "
        "actions' paths are named after them",
    )


class AdminComplaint(ComplaintContent):
    proposed_opd: str | None = Field(description="The proposal awaiting the disposition")
    proposal: Proposal | None = Field(
        description="The router's latest proposal (kept after the disposition); none before "
        "the router has seen the complaint"
    )


NOT_YOURS = {404: {"description": "No such complaint (for this unit)"}}


@router.get("/admin/complaints/{tracking_id}", response_model=AdminComplaint, responses=NOT_YOURS)
async def admin_complaint(tracking_id: TrackingId, rt: Rt, actor: AuthenticatedActor) -> Any:
    """A complaint whole for the coordinator: its content and the router's proposal."""
    _require(actor, "admin")
    view = await complaint_view(rt.db, tracking_id)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no complaint with this tracking ID yet")
    c = view["complaint"]
    routing = json.loads(c["routing"]) if c["routing"] else None
    return AdminComplaint(
        **_content(view).model_dump(exclude={"allowed_actions"}),
        allowed_actions=domain.allowed_in(Status(c["status"]), "admin"),
        proposed_opd=c["proposed_opd"],
        proposal=Proposal.model_validate(routing) if routing else None,
    )


@router.get(
    "/agencies/{opd}/complaints/{tracking_id}",
    response_model=ComplaintContent,
    responses=NOT_YOURS,
)
async def agency_complaint(
    opd: OpdCode, tracking_id: TrackingId, rt: Rt, actor: AuthenticatedActor
) -> Any:
    """A complaint disposed to the unit, whole (confidential ones too). Another unit's
    complaint, or one no longer disposed to it, is a 404 like one that does not exist."""
    _require_unit(actor, opd)
    view = await complaint_view(rt.db, tracking_id)
    if view is None or view["complaint"]["opd"] != opd:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such complaint for you")
    content = _content(view)
    content.allowed_actions = domain.allowed_in(content.status, "agency")
    return content


def _content(view: dict[str, Any]) -> ComplaintContent:
    c, labels = view["complaint"], domain.AGENCY_LABEL
    return ComplaintContent(
        **{k: c[k] for k in ComplaintContent.model_fields if k in c},
        status_label=labels[Status(c["status"])],
        location=_location(c),
        attachments=attachments_of(c),
        history=[
            HistoryEntry(
                event=h["event_type"],
                status=h["status"],
                status_label=labels[Status(h["status"])],
                opd=h["opd"],
                note=h["note"],
                at=h["occurred_at"],
            )
            for h in view["history"]
        ],
    )


def _location(c: dict[str, Any]) -> Location:
    return Location(
        address=c["location_address"],
        kecamatan=c["location_kecamatan"],
        kelurahan=c["location_kelurahan"],
        lat=c["location_lat"],
        lon=c["location_lon"],
    )


def _page(rows: list[dict[str, Any]], limit: int, labels: dict[Status, str]) -> ComplaintList:
    items = [
        ComplaintSummary(
            **{k: r[k] for k in ComplaintSummary.model_fields if k in r},
            status_label=labels[Status(r["status"])],
        )
        for r in rows
    ]
    return ComplaintList(
        items=items, next_after=items[-1].tracking_id if len(items) == limit else None
    )


# --- acting -------------------------------------------------------------------------


class ActionAccepted(BaseModel):
    tracking_id: str
    event_id: str
    status: Status
    allowed_actions: list[str]


class Disposition(BaseModel):
    opd: str = Field(pattern=OPD_CODE)


# Request bodies take their text types from the events they become, so what is accepted
# here is exactly what the event (and every read model) can hold.


class Reason(BaseModel):
    reason: ReasonText


class Declination(BaseModel):
    reason: ReasonText
    suggested_opd: str | None = Field(
        default=None,
        pattern=OPD_CODE,
        description="The unit the declining officer believes is authorized: a unit of the "
        "OPD registry other than their own",
    )


class Archival(BaseModel):
    reason: ArchiveReason
    note: NoteText | None = None


class FollowUp(BaseModel):
    message: MessageText


class Answer(BaseModel):
    resolution: MessageText


class Reply(BaseModel):
    message: MessageText


class Rating(BaseModel):
    stars: int = Field(ge=1, le=5)
    comment: NoteText | None = None


class Conflict(BaseModel):
    """The action does not fit the complaint's state, or another action came first."""

    detail: str
    status: Status
    allowed_actions: list[str]


ACCEPTED = {
    "status_code": status.HTTP_202_ACCEPTED,
    "response_model": ActionAccepted,
    "responses": {
        403: {"description": "Not this complaint's reporter, or the role may not do this"},
        404: {"description": "No such complaint (for this unit)"},
        409: {"model": Conflict, "description": "Not allowed now; nothing was appended"},
    },
}


@router.post("/complaints/{tracking_id}/disposition", **ACCEPTED)
async def post_disposition(
    tracking_id: TrackingId, body: Disposition, request: Request, rt: Rt, actor: AuthenticatedActor
) -> ActionAccepted | JSONResponse:
    """Verifikasi and disposisi: the coordinating admin sends it to the unit to act."""
    unit = load_registry(rt.settings.deployment).get(body.opd)
    if unit is None:
        raise RequestValidationError(
            [{"loc": ("body", "opd"), "msg": "not a unit in the registry", "type": "value_error"}]
        )
    command = domain.dispose(unit.code, unit.name, actor)
    return await _act(rt, request, tracking_id, actor, command)


@router.post("/complaints/{tracking_id}/hold", **ACCEPTED)
async def post_hold(
    tracking_id: TrackingId, body: Reason, request: Request, rt: Rt, actor: AuthenticatedActor
) -> ActionAccepted | JSONResponse:
    """Tunda: on hold with a reason; the deadline clock stops."""
    return await _act(rt, request, tracking_id, actor, domain.hold(body.reason, actor))


@router.post("/complaints/{tracking_id}/resumption", **ACCEPTED)
async def post_resumption(
    tracking_id: TrackingId, request: Request, rt: Rt, actor: AuthenticatedActor
) -> ActionAccepted | JSONResponse:
    return await _act(rt, request, tracking_id, actor, domain.resume(actor))


@router.post("/complaints/{tracking_id}/archive", **ACCEPTED)
async def post_archive(
    tracking_id: TrackingId, body: Archival, request: Request, rt: Rt, actor: AuthenticatedActor
) -> ActionAccepted | JSONResponse:
    """Arsipkan, with a reason from the fixed list that tells the citizen where to go."""
    command = domain.archive(body.reason, body.note, actor)
    return await _act(rt, request, tracking_id, actor, command)


@router.post("/agencies/{opd}/complaints/{tracking_id}/follow-ups", **ACCEPTED)
async def post_follow_up(
    opd: OpdCode,
    tracking_id: TrackingId,
    body: FollowUp,
    request: Request,
    rt: Rt,
    actor: AuthenticatedActor,
) -> ActionAccepted | JSONResponse:
    """Tindak lanjut: the unit reports what it is doing."""
    _require_unit(actor, opd)
    command = domain.follow_up(body.message, actor)
    return await _act(rt, request, tracking_id, actor, command)


@router.post("/agencies/{opd}/complaints/{tracking_id}/resolution", **ACCEPTED)
async def post_resolution(
    opd: OpdCode,
    tracking_id: TrackingId,
    body: Answer,
    request: Request,
    rt: Rt,
    actor: AuthenticatedActor,
) -> ActionAccepted | JSONResponse:
    """The unit's answer; the reporter may then confirm, reply, rate or reopen."""
    _require_unit(actor, opd)
    command = domain.answer(body.resolution, actor)
    return await _act(rt, request, tracking_id, actor, command)


@router.post("/agencies/{opd}/complaints/{tracking_id}/declination", **ACCEPTED)
async def post_declination(
    opd: OpdCode,
    tracking_id: TrackingId,
    body: Declination,
    request: Request,
    rt: Rt,
    actor: AuthenticatedActor,
) -> ActionAccepted | JSONResponse:
    """Bukan Wewenang: not this unit's authority; the complaint goes back to routing.

    ``suggested_opd`` names the unit the officer believes is authorized, for the router to
    weigh: a unit the registry does not know, or the declining unit itself, is refused
    (422 naming the field) and nothing is appended.
    """
    _require_unit(actor, opd)
    if body.suggested_opd is not None and body.suggested_opd not in load_registry(
        rt.settings.deployment
    ):
        raise invalid("suggested_opd", "not a unit in the registry", where="body")
    command = domain.decline(body.reason, actor, body.suggested_opd)
    return await _act(rt, request, tracking_id, actor, command)


async def reporter(
    tracking_id: TrackingId,
    secret: Annotated[str, Depends(auth_secret_of)],
    x_reporter_secret: Annotated[str | None, Header()] = None,
) -> Actor:
    """FastAPI dependency: the reporter, proven by the secret given at submission."""
    if not is_reporter(secret, tracking_id, x_reporter_secret):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not the reporter of this complaint")
    return Actor(role="reporter")


Reporter = Annotated[Actor, Depends(reporter)]


@router.post("/complaints/{tracking_id}/replies", **ACCEPTED)
async def post_reply(
    tracking_id: TrackingId, body: Reply, request: Request, rt: Rt, actor: Reporter
) -> ActionAccepted | JSONResponse:
    return await _act(rt, request, tracking_id, actor, domain.reply(body.message))


@router.post("/complaints/{tracking_id}/rating", **ACCEPTED)
async def post_rating(
    tracking_id: TrackingId, body: Rating, request: Request, rt: Rt, actor: Reporter
) -> ActionAccepted | JSONResponse:
    command = domain.rate(body.stars, body.comment)
    return await _act(rt, request, tracking_id, actor, command)


@router.post("/complaints/{tracking_id}/reopening", **ACCEPTED)
async def post_reopening(
    tracking_id: TrackingId, body: Reason, request: Request, rt: Rt, actor: Reporter
) -> ActionAccepted | JSONResponse:
    """Not satisfied: back to the unit."""
    return await _act(rt, request, tracking_id, actor, domain.reopen(body.reason))


@router.post("/complaints/{tracking_id}/confirmation", **ACCEPTED)
async def post_confirmation(
    tracking_id: TrackingId, request: Request, rt: Rt, actor: Reporter
) -> ActionAccepted | JSONResponse:
    """Satisfied: the complaint is finished (Selesai)."""
    return await _act(rt, request, tracking_id, actor, domain.confirm(actor))


def _require(actor: Actor, role: str) -> None:
    if actor.role != role:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"only for the {role} role")


def _require_unit(actor: Actor, opd: str) -> None:
    if actor.role != "agency" or actor.opd != opd:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this token is not for that unit")


async def _act(
    rt: Runtime,
    request: Request,
    tracking_id: str,
    actor: Actor,
    command: domain.Command,
) -> ActionAccepted | JSONResponse:
    correlation_id = correlation_uuid(request)

    def decide(now: Latest) -> list[Envelope]:
        event = domain.decide(now.snapshot.life if now.snapshot else None, actor, command)
        return [envelope(event, complaint_id=tracking_id, correlation_id=correlation_id)]

    try:
        # One attempt: a person decided on what they saw; if another action came first,
        # they are told, not overruled behind their back.
        done = await decide_and_append(rt.store, tracking_id, decide)
    except Forbidden as e:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(e)) from None
    except NotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such complaint for you") from None
    except NotAllowed as e:
        return _conflict(str(e), e.status, e.allowed)
    except domain.InvalidInput as e:
        raise invalid(e.field, e.reason, where="body") from None
    except ConcurrencyError:
        current = (await latest(rt.store, tracking_id)).snapshot
        assert current is not None
        now = current.life
        return _conflict(
            "another action on this complaint came first; reload and retry",
            now.status,
            domain.allowed_actions(now, actor.role),
        )
    [appended] = done.appended
    assert done.snapshot is not None
    after = done.snapshot.life
    return ActionAccepted(
        tracking_id=tracking_id,
        event_id=str(appended.envelope.event_id),
        status=after.status,
        allowed_actions=domain.allowed_actions(after, actor.role),
    )


def _conflict(detail: str, current: Status, allowed: list[str]) -> JSONResponse:
    return JSONResponse(
        {"detail": detail, "status": current, "allowed_actions": allowed},
        status_code=status.HTTP_409_CONFLICT,
    )
