"""The staff pages: sign-in, the officer's inbox, the coordinator's desk. Server-rendered
like the citizen's pages, every action a plain form; the data and the actions are the
tracker's API, called with a token minted for the signed-in account for one request
(five minutes), so the tracker checks every action as it checks any other caller's.

| path | page |
| --- | --- |
| ``/masuk`` | sign-in (GET form, POST) |
| ``/keluar`` | sign-out (POST) |
| ``/unit`` | an officer's inbox: the unit's complaints by due date, filter by status |
| ``/unit/laporan/{id}`` | one complaint whole, its history; follow up, answer, Bukan Wewenang |
| ``/koordinator`` | the verification queue (by default what awaits verification) |
| ``/koordinator/tenggat`` | complaints nearing or past their deadline |
| ``/koordinator/laporan/{id}`` | one complaint, the proposal; dispose, hold, resume, archive |
| ``…/laporan/{id}/lampiran/{file}`` | a file the reporter attached (through the tracker) |

A session is a random token in the cookie ``lapor_staff`` (HttpOnly, SameSite=Strict,
Secure except over plain HTTP to a loopback address, i.e. ``lapor run``); the bucket keeps
its digest. Every form carries a CSRF token derived from the session (an HMAC of its key),
so a form is valid for its session only. A page of the other role, or with no session,
sends to ``/masuk``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from lapor.portal import csrf as csrf_
from lapor.portal import domain, i18n
from lapor.portal.pages import (
    TRACKING_ID,
    Unavailable,
    form_data,
    form_token,
    language,
    portal_of,
    render,
    with_form_token,
)
from lapor.portal.staff import accounts as acc
from lapor.portal.staff.signin import sign_in
from lapor.portal.staff.stores import (
    Accounts,
    Session,
    Sessions,
    SignIns,
    Throttle,
    utc_now,
)
from lapor.services.auth import issue_token

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

COOKIE = "lapor_staff"
CSRF_FIELD = "csrf_token"
TOKEN_TTL = 300
"""Seconds a token minted for one request lives."""
SOON = timedelta(days=3)
"""The deadlines view shows what is due within this (and what is past)."""
PAGE = 50
HOME = {"officer": "/unit", "coordinator": "/koordinator"}
OFFICER_STATUSES = ("disposed", "in_progress", "answered", "on_hold", "closed", "archived")
QUEUE_STATUSES = (
    "received",
    "disposed",
    "in_progress",
    "answered",
    "on_hold",
    "closed",
    "archived",
)


@dataclass
class Staff:
    """What the staff pages need (``app.state.staff``): the auth secret the tracker
    checks tokens with, how long a session lasts, and the stores (opened on first use, once NATS is
    connected)."""

    secret: str | None
    session_seconds: float
    _stores: tuple[Accounts, Sessions, SignIns] | None = field(default=None, repr=False)
    _throttle: Throttle | None = field(default=None, repr=False)

    async def stores(self, request: Request) -> tuple[Accounts, Sessions, SignIns]:
        if self._stores is None:
            runtime = request.app.state.runtime
            subjects = runtime.settings.subjects
            self._stores = (
                await Accounts.open(runtime.js, subjects),
                await Sessions.open(runtime.js, subjects),
                SignIns(runtime.js, subjects),
            )
        return self._stores

    async def throttle(self, request: Request) -> Throttle:
        if self._throttle is None:
            runtime = request.app.state.runtime
            self._throttle = await Throttle.open(runtime.js, runtime.settings.subjects)
        return self._throttle

    def csrf(self, session: Session) -> str:
        key = hashlib.sha256(f"lapor-staff-csrf:{self.secret}".encode()).digest()
        return hmac.new(key, session.key.encode(), hashlib.sha256).hexdigest()

    def token(self, account: acc.Account) -> str:
        if self.secret is None:
            raise Unavailable("no LAPOR_AUTH_SECRET: the staff pages cannot act")
        actor = account.actor()
        return issue_token(self.secret, actor.role, actor.opd, account.username, TOKEN_TTL)


def staff_of(request: Request) -> Staff:
    return request.app.state.staff


@dataclass(frozen=True)
class SignedIn:
    account: acc.Account
    session: Session
    csrf: str


class GoElsewhere(Exception):
    """Not for this account (or no account): the page answers ``response`` instead."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.headers.get("location"))
        self.response = response


async def go_elsewhere(request: Request, error: Exception) -> Response:
    """The app's handler of :class:`GoElsewhere`."""
    assert isinstance(error, GoElsewhere)
    return error.response


async def signed_in(request: Request, role: str) -> SignedIn:
    """The signed-in account of ``role``; else :class:`GoElsewhere` to the sign-in page
    (no session, an account removed, disabled or locked since) or the account's own
    home."""
    staff = staff_of(request)
    accounts, sessions, _ = await staff.stores(request)
    token = request.cookies.get(COOKIE)
    session = await sessions.get(token)
    found = await accounts.get(session.username) if session else None
    account = found[0] if found else None
    if session is None or account is None or account.disabled or account.locked(utc_now()):
        if session is not None:
            await sessions.end(token)
        target = quote(request.url.path, safe="/")
        raise GoElsewhere(RedirectResponse(f"/masuk?next={target}", status_code=303))
    if account.role != role:
        raise GoElsewhere(RedirectResponse(HOME[account.role], status_code=303))
    return SignedIn(account, session, staff.csrf(session))


def client_address(request: Request) -> str:
    """The client's address as the nearest proxy saw it: the last ``X-Forwarded-For``
    entry (the Ingress, or ``lapor run``'s gateway, appends the address it was reached
    from; earlier entries are whatever the client claimed), else the peer's."""
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",")[-1].strip()[:64]
    return request.client.host if request.client else "-"


def _secure(request: Request) -> bool:
    """Secure cookies, except over plain HTTP to this machine (``lapor run``), where a
    browser would not send them back."""
    if request.url.scheme == "https":
        return True
    try:
        return not ipaddress.ip_address(request.url.hostname or "").is_loopback
    except ValueError:
        return request.url.hostname != "localhost"


def page(request: Request, template: str, who: SignedIn, status_code: int = 200, **context: Any):
    gettext = i18n.translations(language(request)).gettext
    now = utc_now()
    response = render(
        request,
        template,
        status_code=status_code,
        staff=who.account,
        csrf_token=who.csrf,
        staff_status=lambda s: gettext(domain.STAFF_STATUS.get(s, domain.OTHER_EVENT)),
        due_class=lambda item: due_class(item, now),
        archive_words=domain.ARCHIVE_REASONS,
        report_types=domain.REPORT_TYPES,
        channels=domain.CHANNELS,
        **context,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- signing in and out --------------------------------------------------------------------


def _next(value: str | None, role: str) -> str:
    """Where to go after signing in: a page of the role's own area, else its home."""
    home = HOME[role]
    if value and value.startswith(home) and "//" not in value and "\\" not in value:
        return value
    return home


def _signin_page(request: Request, status_code: int = 200, **context: Any) -> Response:
    token = form_token(request)
    response = render(
        request,
        "staff/signin.html",
        status_code=status_code,
        csrf_token=token,
        next=request.query_params.get("next", ""),
        **context,
    )
    return with_form_token(response, request, token, secure=_secure(request))


@router.get("/masuk", response_class=HTMLResponse)
async def signin_form(request: Request) -> Response:
    return _signin_page(request)


@router.post("/masuk", response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    portal, staff = portal_of(request), staff_of(request)
    values = await form_data(request)
    if not portal.csrf.check(request.cookies.get(csrf_.COOKIE), values.get(CSRF_FIELD)):
        return render(request, "forbidden.html", status_code=403)
    accounts, sessions, record = await staff.stores(request)
    username = values.get("username", "")
    attempt = await sign_in(
        accounts,
        record,
        username,
        values.get("password", ""),
        utc_now(),
        await staff.throttle(request),
        address=client_address(request),
        user_agent=request.headers.get("user-agent", "")[:200],
    )
    if attempt.outcome == "throttled":
        return _signin_page(request, 429, error="throttled", username=username[:40])
    if attempt.account is None:
        error = "locked" if attempt.outcome == "locked" else "wrong"
        return _signin_page(request, 401, error=error, username=username[:40])
    token, _ = await sessions.start(attempt.account.username, utc_now())
    target = _next(values.get("next"), attempt.account.role)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(staff.session_seconds),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.post("/keluar")
async def signout(request: Request) -> Response:
    staff = staff_of(request)
    _, sessions, _ = await staff.stores(request)
    token = request.cookies.get(COOKIE)
    session = await sessions.get(token)
    values = await form_data(request)
    if session is None or not hmac.compare_digest(values.get(CSRF_FIELD, ""), staff.csrf(session)):
        return render(request, "forbidden.html", status_code=403)
    await sessions.end(token)
    response = RedirectResponse("/masuk?keluar=1", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=_secure(request))
    return response


# --- calling the tracker as the account ------------------------------------------------------


async def tracker(request: Request, who: SignedIn, method: str, path: str, **kw: Any) -> Any:
    portal, staff = portal_of(request), staff_of(request)
    headers = {"Authorization": f"Bearer {staff.token(who.account)}", **kw.pop("headers", {})}
    return await portal.call(portal.tracker, method, path, headers=headers, **kw)


# --- the officer -------------------------------------------------------------------------------


@router.get("/unit", response_class=HTMLResponse)
async def inbox(request: Request, status: str | None = None, after: str | None = None):
    who = await signed_in(request, "officer")
    status = status if status in OFFICER_STATUSES else None
    params = {"status": status} if status else {}
    path = f"/agencies/{who.account.opd}/complaints"
    return await _list(request, who, "inbox", path, params, after, status, OFFICER_STATUSES)


@router.get("/unit/laporan/{tracking_id}", response_class=HTMLResponse)
async def officer_complaint(request: Request, tracking_id: str, done: str | None = None):
    who = await signed_in(request, "officer")
    return await _complaint_page(request, who, tracking_id, done=done)


OFFICER_ACTIONS = {
    # form action -> (tracker path's last part, the form's fields as the body)
    "tindak-lanjut": ("follow-ups", lambda v: {"message": v.get("message", "")}),
    "jawaban": ("resolution", lambda v: {"resolution": v.get("resolution", "")}),
    "bukan-wewenang": (
        "declination",
        lambda v: {"reason": v.get("reason", ""), "suggested_opd": v.get("suggested_opd") or None},
    ),
}
COORDINATOR_ACTIONS = {
    "disposisi": ("disposition", lambda v: {"opd": v.get("opd", "")}),
    "tunda": ("hold", lambda v: {"reason": v.get("reason", "")}),
    "lanjutkan": ("resumption", lambda v: None),
    "arsip": (
        "archive",
        lambda v: {"reason": v.get("reason", ""), "note": (v.get("note") or "").strip() or None},
    ),
}


ACTIONS = {"officer": OFFICER_ACTIONS, "coordinator": COORDINATOR_ACTIONS}
"""Each role's forms: the form's name -> (the tracker action path's last part, the body)."""


@router.post("/unit/laporan/{tracking_id}/{action}", response_class=HTMLResponse)
async def officer_act(request: Request, tracking_id: str, action: str):
    who = await signed_in(request, "officer")
    return await _act(request, who, tracking_id, action)


# --- the coordinator ---------------------------------------------------------------------------


@router.get("/koordinator", response_class=HTMLResponse)
async def queue(request: Request, status: str | None = "received", after: str | None = None):
    who = await signed_in(request, "coordinator")
    status = status if status in QUEUE_STATUSES else None
    params = {"status": status or "all"}
    return await _list(request, who, "queue", "/admin/complaints", params, after, status)


@router.get("/koordinator/tenggat", response_class=HTMLResponse)
async def deadlines(request: Request, after: str | None = None):
    who = await signed_in(request, "coordinator")
    params = {"status": "all", "due_before": (utc_now() + SOON).isoformat()}
    return await _list(request, who, "deadlines", "/admin/complaints", params, after)


LIST_PAGES = {"inbox": "/unit", "queue": "/koordinator", "deadlines": "/koordinator/tenggat"}


async def _list(
    request: Request,
    who: SignedIn,
    heading: str,
    path: str,
    params: dict[str, Any],
    after: str | None,
    status: str | None = None,
    statuses: tuple[str, ...] = QUEUE_STATUSES,
) -> Response:
    """A staff list: the tracker's listing at ``path``, the earliest deadline first, a
    page of :data:`PAGE` after ``after``; ``statuses`` the filter offers (none for the
    deadlines)."""
    asked: dict[str, Any] = {"order": "due", "limit": PAGE, **params}
    if after and TRACKING_ID.fullmatch(after):
        asked["after"] = after
    answer = await tracker(request, who, "GET", path, params=asked)
    if answer.status_code != 200:
        raise Unavailable(path)
    listing = answer.json()
    item_base = "/unit/laporan" if heading == "inbox" else "/koordinator/laporan"
    return page(
        request,
        "staff/list.html",
        who,
        heading=heading,
        items=listing["items"],
        next_after=listing.get("next_after"),
        status=status,
        statuses=() if heading == "deadlines" else statuses,
        base=LIST_PAGES[heading],
        item_base=item_base,
        soon_days=SOON.days,
    )


@router.get("/koordinator/laporan/{tracking_id}", response_class=HTMLResponse)
async def coordinator_complaint(request: Request, tracking_id: str, done: str | None = None):
    who = await signed_in(request, "coordinator")
    return await _complaint_page(request, who, tracking_id, done=done)


@router.post("/koordinator/laporan/{tracking_id}/{action}", response_class=HTMLResponse)
async def coordinator_act(request: Request, tracking_id: str, action: str):
    who = await signed_in(request, "coordinator")
    return await _act(request, who, tracking_id, action)


# --- the reporter's files ------------------------------------------------------------------------

PASSED_ON = (
    "content-type",
    "content-length",
    "content-disposition",
    "x-content-type-options",
    "content-security-policy",
    "etag",
    "repr-digest",
)
"""The tracker's download headers the browser gets (type and name, never sniffed, never
rendered as a page of the portal's origin: the tracker's sandbox CSP travels along)."""
ATTACHMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
"""As the tracker has them (its path parameter's pattern)."""


@router.get("/unit/laporan/{tracking_id}/lampiran/{attachment_id}")
async def officer_attachment(request: Request, tracking_id: str, attachment_id: str):
    who = await signed_in(request, "officer")
    return await _attachment(request, who, tracking_id, attachment_id)


@router.get("/koordinator/laporan/{tracking_id}/lampiran/{attachment_id}")
async def coordinator_attachment(request: Request, tracking_id: str, attachment_id: str):
    who = await signed_in(request, "coordinator")
    return await _attachment(request, who, tracking_id, attachment_id)


async def _attachment(
    request: Request, who: SignedIn, tracking_id: str, attachment_id: str
) -> Response:
    """The file streamed from the tracker, which checks who may read it (the unit the
    complaint is disposed to, the coordinator) and its digest."""
    if not TRACKING_ID.fullmatch(tracking_id) or not ATTACHMENT_ID.fullmatch(attachment_id):
        return page(request, "staff/missing.html", who, status_code=404)
    portal, staff = portal_of(request), staff_of(request)
    path = f"{_content_path(who, tracking_id)}/attachments/{attachment_id}"
    upstream = portal.tracker.build_request(
        "GET", path, headers={"Authorization": f"Bearer {staff.token(who.account)}"}
    )
    try:
        answer = await portal.tracker.send(upstream, stream=True)
    except httpx.HTTPError as e:
        log.warning("upstream unreachable", path=path, error=repr(e))
        raise Unavailable(path) from None
    if answer.status_code != 200:
        await answer.aclose()
        if answer.status_code == 404:
            return page(request, "staff/missing.html", who, status_code=404)
        raise Unavailable(path)
    headers = {k: v for k, v in answer.headers.items() if k.lower() in PASSED_ON}
    headers["Cache-Control"] = "private, no-store"
    return StreamingResponse(
        answer.aiter_raw(), headers=headers, background=BackgroundTask(answer.aclose)
    )


# --- one complaint, and acting on it -----------------------------------------------------------


def _content_path(who: SignedIn, tracking_id: str) -> str:
    if who.account.role == "coordinator":
        return f"/admin/complaints/{tracking_id}"
    return f"/agencies/{who.account.opd}/complaints/{tracking_id}"


async def _complaint_page(
    request: Request,
    who: SignedIn,
    tracking_id: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    if not TRACKING_ID.fullmatch(tracking_id):
        return page(request, "staff/missing.html", who, status_code=404)
    answer = await tracker(request, who, "GET", _content_path(who, tracking_id))
    if answer.status_code == 404:
        return page(request, "staff/missing.html", who, status_code=404)
    if answer.status_code != 200:
        raise Unavailable("complaint content")
    complaint = answer.json()
    base = "/koordinator/laporan" if who.account.role == "coordinator" else "/unit/laporan"
    return page(
        request,
        "staff/complaint.html",
        who,
        status_code=status_code,
        complaint=complaint,
        action_base=f"{base}/{tracking_id}",
        archive_reasons=list(domain.ARCHIVE_GUIDANCE.items()),
        errors=context.pop("errors", {}),
        values=context.pop("values", {}),
        **context,
    )


def _action_path(who: SignedIn, tracking_id: str, last: str) -> str:
    """The tracker's path of an action: the unit's own, or the coordinator's."""
    if who.account.role == "officer":
        return f"/agencies/{who.account.opd}/complaints/{tracking_id}/{last}"
    return f"/complaints/{tracking_id}/{last}"


async def _act(request: Request, who: SignedIn, tracking_id: str, action: str) -> Response:
    """A form of the role's (:data:`ACTIONS`) sent to the tracker as the account."""
    if action not in ACTIONS[who.account.role]:
        return render(request, "forbidden.html", status_code=404)
    values = await form_data(request)
    if not hmac.compare_digest(values.get(CSRF_FIELD, ""), who.csrf):
        return render(request, "forbidden.html", status_code=403)
    if not TRACKING_ID.fullmatch(tracking_id):
        return page(request, "staff/missing.html", who, status_code=404)
    last, body_of = ACTIONS[who.account.role][action]
    path = _action_path(who, tracking_id, last)
    body = body_of(values)
    answer = await tracker(request, who, "POST", path, **({"json": body} if body else {}))
    if answer.status_code == 202:
        base = "/koordinator/laporan" if who.account.role == "coordinator" else "/unit/laporan"
        return RedirectResponse(f"{base}/{tracking_id}?done={action}", status_code=303)
    if answer.status_code in (409, 422):
        detail = answer.json()
        errors = {}
        if answer.status_code == 422:
            for error in detail.get("errors") or []:
                name = str(error.get("field", "")).split(".")[-1]
                errors.setdefault(name, []).append(domain.reason(name, str(error.get("reason"))))
        return await _complaint_page(
            request,
            who,
            tracking_id,
            status_code=answer.status_code,
            failed=action,
            conflict=answer.status_code == 409,
            errors=errors,
            values={"action": action, **values},
        )
    if answer.status_code == 404:
        return page(request, "staff/missing.html", who, status_code=404)
    log.warning("tracker refused a staff action", status=answer.status_code, action=action)
    raise Unavailable(path)


def due_class(item: dict[str, Any], now: datetime) -> str:
    """``overdue``, ``soon`` (within :data:`SOON`) or nothing: how a row is highlighted."""
    if item.get("overdue"):
        return "overdue"
    due = item.get("due_at")
    if due and datetime.fromisoformat(due) <= now + SOON:
        return "soon"
    return ""
