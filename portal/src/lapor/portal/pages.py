"""The pages. Every one is server-rendered HTML that works without JavaScript; the data
comes from intake (``POST /complaints``), the tracker (``GET /complaints``,
``GET /complaints/{id}``) and analytics (``GET /metrics/completion``,
``GET /metrics?by=month``) over HTTP.

| path | page |
| --- | --- |
| ``/`` | home: what to do here |
| ``/lapor`` | the report form (GET), submitting it (POST: the confirmation) |
| ``/lacak`` | the tracking form (``?id=`` goes to the complaint's page) |
| ``/lacak/{id}`` | one complaint's status, unit, due date and timeline; the reporter's forms |
| ``/lacak/{id}/<action>`` | the reporter's reply, rating, confirmation, reopening (POST) |
| ``/statistik`` | the public dashboard |
| ``/laporan`` | the public list of complaints (never a confidential one) |
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import httpx
import jinja2
import structlog
from babel.dates import format_date, format_datetime
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from lapor.portal import csrf as csrf_
from lapor.portal import domain, i18n, reporter
from lapor.router.category_names import CategoryName, name_of
from lapor.shared.tracking import PATTERN, normalise

TRACKING_ID = re.compile(PATTERN)

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

LIST_PAGE = 25
OCTETS = "application/octet-stream"


class Unavailable(Exception):
    """An upstream service did not answer as it should (the page says so: 503)."""


@dataclass
class Portal:
    """What the pages need, built once per app (``app.state.portal``)."""

    intake: httpx.AsyncClient
    tracker: httpx.AsyncClient
    analytics: httpx.AsyncClient
    environments: dict[str, jinja2.Environment]
    csrf: csrf_.Csrf
    categories: dict[str, CategoryName]
    """Every routing category's names (Indonesian and English), by code."""
    places: dict[str, tuple[str, ...]]
    """Each kecamatan and its kelurahan."""
    timezone: ZoneInfo
    site_name: str
    units: dict[str, str] = field(default_factory=dict)
    max_attachments: int = 5
    """Files a report may carry (intake's LAPOR_MAX_ATTACHMENTS), for the form's hint."""
    max_attachment_bytes: int = 5 * 1024 * 1024

    async def call(self, client: httpx.AsyncClient, method: str, path: str, **kw: Any):
        try:
            return await client.request(method, path, **kw)
        except httpx.HTTPError as e:
            log.warning("upstream unreachable", path=path, error=repr(e))
            raise Unavailable(path) from None


def portal_of(request: Request) -> Portal:
    return request.app.state.portal


def language(request: Request) -> str:
    return i18n.choose(request.query_params.get("lang"), request.cookies.get(i18n.COOKIE))


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    portal = portal_of(request)
    lang = language(request)
    env = portal.environments[lang]
    gettext = i18n.translations(lang).gettext
    html = env.get_template(template).render(
        request=request,
        lang=lang,
        other_lang="en" if lang == "id" else "id",
        site_name=portal.site_name,
        units=portal.units,
        path=request.url.path,
        number=lambda v: i18n.number(v, lang),
        rate=lambda v: i18n.percent(v, lang),
        day=lambda v: _day(v, lang),
        moment=lambda v: _moment(v, lang, portal.timezone),
        status_words=lambda s: gettext(domain.PUBLIC_STATUS.get(s, domain.OTHER_EVENT)),
        event_words=lambda e: gettext(domain.EVENT_WORDS.get(e, domain.OTHER_EVENT)),
        note_words=lambda e, n: domain.note_words(e, n, gettext),
        category_words=lambda code: category_words(portal, code, lang),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


def category_words(portal: Portal, code: str | None, lang: str) -> str:
    """A category's name in the page's language (the catalogue's, else the code in
    words); empty for none."""
    if not code:
        return ""
    return portal.categories.get(code, name_of(code)).in_language(lang)


def _categories(portal: Portal, lang: str) -> list[tuple[str, str]]:
    """(code, name) of every routing category, by name in ``lang``."""
    named = ((code, names.in_language(lang)) for code, names in portal.categories.items())
    return sorted(named, key=lambda pair: pair[1].casefold())


def _day(value: str | date | None, lang: str) -> str:
    if not value:
        return "–"
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return format_date(value, format="long", locale=lang)


def _moment(value: str | datetime | None, lang: str, tz: ZoneInfo) -> str:
    if not value:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return format_datetime(value, "d MMMM y, HH:mm zzz", tzinfo=tz, locale=lang)


async def form_data(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (what a plain HTML form sends)."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(raw, keep_blank_values=True))


async def report_form_data(request: Request) -> tuple[dict[str, str], list[UploadFile]]:
    """The report form's values and its files: a ``multipart/form-data`` body (the form
    with its file input; python-multipart, through Starlette, parses it) or a plain
    urlencoded one. Files left unchosen (an empty part) are not files; how many and
    how large they may be is intake's to judge (its 422 names each file)."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return await form_data(request), []
    try:
        form = await request.form(max_files=64, max_fields=64)
    except StarletteHTTPException:
        return {}, []  # unreadable: no CSRF token either, so it is refused as forged
    values: dict[str, str] = {}
    uploads: list[UploadFile] = []
    for name, value in form.multi_items():
        if isinstance(value, str):
            values[name] = value
        elif name == "attachments" and (value.filename or value.size):
            uploads.append(value)
    return values, uploads


def form_token(request: Request) -> str:
    """The CSRF token of the request's cookie if it is ours, else a new one."""
    portal = portal_of(request)
    token = request.cookies.get(csrf_.COOKIE)
    return token if token and portal.csrf.valid(token) else portal.csrf.issue()


def with_form_token(
    response: HTMLResponse, request: Request, token: str, secure: bool | None = None
) -> HTMLResponse:
    """A page with forms: its CSRF cookie (HttpOnly, SameSite=Strict; Secure over HTTPS
    unless told), and kept by no cache."""
    if secure is None:
        secure = request.url.scheme == "https"
    response.set_cookie(csrf_.COOKIE, token, httponly=True, samesite="strict", secure=secure)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- home --------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    return render(request, "home.html")


# --- reporting ---------------------------------------------------------------------------


def _form_page(
    request: Request,
    values: dict[str, str] | None = None,
    errors: dict[str, list[tuple[str, dict]]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    portal = portal_of(request)
    token = form_token(request)
    values = dict(values or {})
    if not _is_key(values.get("key")):
        values["key"] = uuid.uuid4().hex
    response = render(
        request,
        "report.html",
        status_code=status_code,
        values=values,
        errors=errors or {},
        csrf_token=token,
        report_types=domain.REPORT_TYPES,
        labels=domain.FIELD_LABELS,
        categories=_categories(portal, language(request)),
        places=portal.places,
        max_attachments=portal.max_attachments,
        max_attachment_mb=domain.megabytes(portal.max_attachment_bytes),
    )
    return with_form_token(response, request, token)


def _is_key(value: str | None) -> bool:
    return bool(value) and len(value) == 32 and all(c in "0123456789abcdef" for c in value)


@router.get("/lapor", response_class=HTMLResponse)
async def report_form(request: Request) -> Response:
    return _form_page(request)


@router.post("/lapor", response_class=HTMLResponse)
async def report_submit(request: Request) -> Response:
    portal = portal_of(request)
    values, uploads = await report_form_data(request)
    if not portal.csrf.check(request.cookies.get(csrf_.COOKIE), values.get(csrf_.FIELD)):
        return render(request, "forbidden.html", status_code=403)
    key = values.get("key") if _is_key(values.get("key")) else uuid.uuid4().hex
    body = domain.submission(values)
    if uploads:
        # Forwarded as intake's multipart variant: the same JSON, then the files as sent.
        complaint = ("complaint", (None, json.dumps(body).encode(), "application/json"))
        parts = [complaint] + [
            ("attachments", (u.filename or "", await u.read(), u.content_type or OCTETS))
            for u in uploads
        ]
        content: dict[str, Any] = {"files": parts}
    else:
        content = {"json": body}
    answer = await portal.call(
        portal.intake,
        "POST",
        "/complaints",
        **content,
        headers={"Idempotency-Key": f"portal-{key}"},
    )
    if answer.status_code == 422:
        names = [u.filename or "" for u in uploads]
        errors = domain.field_errors(answer.json().get("errors") or [], names)
        return _form_page(request, values, errors or {domain.GENERAL_ERROR: []}, 422)
    if answer.status_code != 202:
        log.warning("intake refused", status=answer.status_code)
        raise Unavailable("/complaints")
    accepted = answer.json()
    response = render(
        request,
        "submitted.html",
        tracking_id=accepted["tracking_id"],
        reporter_secret=accepted.get("reporter_secret"),
        title=values.get("title", ""),
        confidential=values.get("confidential") == "on",
        anonymous=values.get("anonymous") == "on",
        submitted_at=datetime.now(portal.timezone).isoformat(),
    )
    # The secret is on this page only: no cache keeps it, no URL carries it.
    response.headers["Cache-Control"] = "no-store"
    return response


# --- tracking ----------------------------------------------------------------------------


@router.get("/lacak", response_class=HTMLResponse)
async def track_form(request: Request, id: str | None = None) -> Response:
    if id is None:
        return render(request, "track.html", given="", error=None)
    tracking_id = normalise(id.strip())
    if not TRACKING_ID.fullmatch(tracking_id):
        return render(request, "track.html", status_code=422, given=id, error="invalid")
    return RedirectResponse(f"/lacak/{tracking_id}", status_code=303)


@router.get("/lacak/{tracking_id}", response_class=HTMLResponse)
async def track(request: Request, tracking_id: str, done: str | None = None) -> Response:
    wanted = normalise(tracking_id)
    if not TRACKING_ID.fullmatch(wanted):
        return render(request, "track.html", status_code=404, given=tracking_id, error="unknown")
    if wanted != tracking_id:
        return RedirectResponse(f"/lacak/{wanted}", status_code=301)
    return await complaint_page(request, wanted, done=done if done in reporter.ACTIONS else None)


async def complaint_page(
    request: Request, tracking_id: str, status_code: int = 200, **context: Any
) -> Response:
    """One complaint's page: its status and timeline, and the reporter's forms its status
    allows (each with the CSRF token; the ``csrf`` cookie is set as the report form sets
    it). ``context``: ``done`` (an action's slug), ``failed``, ``conflict``, ``errors``,
    ``values`` (what was typed in the failed form, never the secret)."""
    portal = portal_of(request)
    answer = await portal.call(portal.tracker, "GET", f"/complaints/{tracking_id}")
    if answer.status_code == 404:
        return render(request, "track.html", status_code=404, given=tracking_id, error="unknown")
    if answer.status_code != 200:
        raise Unavailable("/complaints/{id}")
    complaint = answer.json()
    token = form_token(request)
    page: dict[str, Any] = {
        "done": None,
        "failed": None,
        "conflict": False,
        "errors": {},
        "values": {},
        **context,
    }
    response = render(
        request,
        "complaint.html",
        status_code=status_code,
        complaint=complaint,
        csrf_token=token,
        actions=reporter.allowed(complaint.get("status")),
        reporter_actions=reporter.ACTIONS,
        reporter_labels=reporter.FIELD_LABELS,
        stars=reporter.STARS,
        **page,
    )
    return with_form_token(response, request, token)


@router.get("/lacak/{tracking_id}/{slug}", response_class=HTMLResponse)
async def reporter_form(request: Request, tracking_id: str, slug: str) -> Response:
    """A form's address opened (a bookmark, the address bar after an error): its page."""
    wanted = normalise(tracking_id)
    if not TRACKING_ID.fullmatch(wanted):
        return render(request, "track.html", status_code=404, given=tracking_id, error="unknown")
    return RedirectResponse(f"/lacak/{wanted}", status_code=303)


@router.post("/lacak/{tracking_id}/{slug}", response_class=HTMLResponse)
async def reporter_act(request: Request, tracking_id: str, slug: str) -> Response:
    """A reporter's form (reply, rate, confirm, reopen) sent to the tracker with the
    secret typed in it (``X-Reporter-Secret``): done, a 303 back to the page; a wrong
    secret, a 403 beside the secret; not allowed now, a 409; invalid, a 422 beside the
    fields. Nothing is changed but by the tracker."""
    portal = portal_of(request)
    values = await form_data(request)
    known = TRACKING_ID.fullmatch(tracking_id) is not None
    if not portal.csrf.check(request.cookies.get(csrf_.COOKIE), values.get(csrf_.FIELD)):
        back = f"/lacak/{tracking_id}" if known else "/lacak"
        return render(request, "forbidden.html", status_code=403, back=back)
    action = reporter.ACTIONS.get(slug)
    if action is None or not known:
        return render(request, "track.html", status_code=404, given=tracking_id, error="unknown")
    typed = {name: values.get(name, "") for name in action.fields}

    async def again(status_code: int, **context: Any) -> Response:
        return await complaint_page(
            request, tracking_id, status_code, failed=slug, values=typed, **context
        )

    secret = reporter.secret_of(values)
    if not secret:
        return await again(422, errors=reporter.refused(action, reporter.NO_SECRET))
    if not secret.isascii() or len(secret) > 200:
        return await again(403, errors=reporter.refused(action, reporter.WRONG_SECRET))
    body = action.body(values)
    answer = await portal.call(
        portal.tracker,
        "POST",
        f"/complaints/{tracking_id}/{action.path}",
        headers={"X-Reporter-Secret": secret},
        **({"json": body} if body is not None else {}),
    )
    if answer.status_code == 202:
        return RedirectResponse(f"/lacak/{tracking_id}?done={slug}", status_code=303)
    if answer.status_code == 403:
        return await again(403, errors=reporter.refused(action, reporter.WRONG_SECRET))
    if answer.status_code == 409:
        return await again(409, conflict=True)
    if answer.status_code == 422:
        errors = reporter.errors_of(action, answer.json().get("errors") or [])
        return await again(422, errors=errors or {domain.GENERAL_ERROR: []})
    if answer.status_code == 404:
        return render(request, "track.html", status_code=404, given=tracking_id, error="unknown")
    log.warning("tracker refused a reporter action", status=answer.status_code, action=slug)
    raise Unavailable(f"/complaints/{{id}}/{action.path}")


# --- public figures and list -------------------------------------------------------------


@router.get("/statistik", response_class=HTMLResponse)
async def dashboard(request: Request) -> Response:
    portal = portal_of(request)
    completion = await portal.call(portal.analytics, "GET", "/metrics/completion")
    monthly = await portal.call(portal.analytics, "GET", "/metrics", params={"by": "month"})
    if completion.status_code != 200 or monthly.status_code != 200:
        raise Unavailable("/metrics")
    report = completion.json()
    overall = report["overall"]
    units = sorted(
        (u for u in report["per_opd"] if u.get("opd")),
        key=lambda u: (-u["received"], u.get("opd_name") or u["opd"]),
    )
    unit_bars = domain.hbars(
        [(u.get("opd_name") or u["opd"], float(u["completion_rate"] or 0)) for u in units], 100
    )
    months = sorted(monthly.json()["groups"], key=lambda g: g.get("key") or "")[-12:]
    trend = domain.line_chart(
        [_month(g["key"], language(request)) for g in months],
        {
            "received": [g["received"] for g in months],
            "finished": [g["finished"] for g in months],
        },
    )
    timeliness = monthly.json()["overall"]  # every month together: the whole log
    received, resolved = overall["received"], overall["resolved"]
    split = domain.hbars([("finished", resolved), ("open", max(0, received - resolved))], received)
    return render(
        request,
        "dashboard.html",
        overall=overall,
        unit_rows=units,
        unit_bars=unit_bars,
        months=months,
        trend=trend,
        split=split,
        open_count=max(0, received - resolved),
        timeliness=timeliness,
        bar_width=domain.HBAR_WIDTH,
        bar_row=domain.HBAR_ROW,
    )


def _month(key: str | None, lang: str) -> str:
    if not key:
        return "–"
    year, month = key.split("-")[:2]
    return format_date(date(int(year), int(month), 1), "MMM y", locale=lang)


@router.get("/laporan", response_class=HTMLResponse)
async def public_list(
    request: Request,
    status: str | None = None,
    category: str | None = None,
    after: str | None = None,
) -> Response:
    portal = portal_of(request)
    params: list[tuple[str, Any]] = [("limit", LIST_PAGE), ("order", "newest")]
    if status in domain.PUBLIC_STATUS:
        # Every status the public sees under the same label ("Proses": in progress and
        # answered), asked of the tracker together.
        label = domain.PUBLIC_STATUS[status]
        params += [("status", s) for s, same in domain.PUBLIC_STATUS.items() if same == label]
    else:
        status = None
    if category in portal.categories:
        params.append(("category", category))
    else:
        category = None
    if after and TRACKING_ID.fullmatch(after):
        params.append(("after", after))
    answer = await portal.call(portal.tracker, "GET", "/complaints", params=params)
    if answer.status_code != 200:
        raise Unavailable("/complaints")
    page = answer.json()
    return render(
        request,
        "list.html",
        items=page["items"],
        next_after=page.get("next_after"),
        status=status,
        statuses=[s for s in domain.PUBLIC_STATUS if s != "answered"],
        category=category,
        categories=_categories(portal, language(request)),
    )
