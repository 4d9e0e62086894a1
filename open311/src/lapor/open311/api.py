"""Open311 GeoReport v2 endpoints under ``/open311/v2/``, each as ``.json`` and ``.xml``.

A client of intake (``POST /complaints``) and the tracker (``GET /complaints``, the public
listing, which never holds a confidential complaint, and ``GET /complaints/{id}``) like
any other: it reads no database and no log. ``GET requests`` is answered by the tracker's
own filters (``category``, ``status``, ``from``/``to``), page after page, so no request
that matches is left out however many others there are. Errors are Open311's: ``[{"code",
"description"}]`` (``<errors><error>…`` in XML) with 400, 403 or 404 (503 when intake or
the tracker does not answer).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from lapor.open311.domain import (
    GENERAL,
    LAPOR_STATUSES,
    MAX_RESULTS,
    Open311Error,
    ServiceType,
    as_request,
    category_filter,
    date_window,
    preceding_id,
    to_xml,
    tracking_id,
)
from lapor.open311.keys import KeyStore
from lapor.shared.words import short

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/open311/v2", tags=["open311"])

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
PAGE = 200


@dataclass
class Open311:
    """What the endpoints need, built once per app (``app.state.open311``)."""

    intake: httpx.AsyncClient
    tracker: httpx.AsyncClient
    keys: KeyStore
    services: dict[str, ServiceType]
    notice: str
    jurisdiction: str

    # --- the tracker ------------------------------------------------------------------

    async def page(self, params: list[tuple[str, Any]]) -> dict[str, Any]:
        """One page of the tracker's public listing (``items``, ``next_after``)."""
        response = await self._call(self.tracker, "GET", "/complaints", params=params)
        if response.status_code != 200:
            raise _unavailable("tracker", response)
        return response.json()

    async def listing(self, params: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        """Every complaint of the public listing that matches ``params``, page after page
        (the tracker filters before it cuts a page)."""
        rows: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = await self.page(
                [*params, ("limit", PAGE), *([("after", after)] if after else [])]
            )
            rows += page["items"]
            after = page.get("next_after")
            if not after:
                return rows

    async def public(self, request_id: str) -> dict[str, Any] | None:
        """One complaint as the public listing shows it (so never a confidential one);
        None if there is none."""
        before = preceding_id(request_id)
        page = await self.page([("limit", 1), *([("after", before)] if before else [])])
        rows = page["items"]
        if not rows or rows[0]["tracking_id"] != request_id:
            return None
        return rows[0]

    async def exists(self, request_id: str) -> bool:
        page = await self._call(self.tracker, "GET", f"/complaints/{request_id}")
        if page.status_code == 404:
            return False
        if page.status_code != 200:
            raise _unavailable("tracker", page)
        return True

    # --- intake -----------------------------------------------------------------------

    async def submit(self, complaint: dict[str, Any]) -> str:
        response = await self._call(
            self.intake,
            "POST",
            "/complaints",
            json=complaint,
            headers={"Idempotency-Key": f"open311-{uuid.uuid4()}"},
        )
        if response.status_code == 422:
            errors = response.json().get("errors") or []
            fields = ", ".join(sorted({_open311_field(e.get("field", "")) for e in errors}))
            reasons = "; ".join(f"{_open311_field(e['field'])}: {e['reason']}" for e in errors)
            raise Open311Error(400, f"invalid {fields or 'request'} ({reasons})")
        if response.status_code != 202:
            raise _unavailable("intake", response)
        return response.json()["tracking_id"]

    async def _call(
        self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        try:
            return await client.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            log.warning("upstream unreachable", path=path, error=repr(e))
            raise Open311Error(503, "the complaint service is unavailable; retry later") from None


def _unavailable(service: str, response: httpx.Response) -> Open311Error:
    log.warning("upstream refused", service=service, status=response.status_code)
    return Open311Error(503, f"the {service} service did not answer; retry later")


def _open311_field(field: str) -> str:
    return {
        "title": "description",
        "body": "description",
        "location.lat": "lat",
        "location.lon": "long",
        "location.address": "address_string",
        "reporter.name": "first_name",
        "reporter.email": "email",
        "reporter.phone": "phone",
    }.get(field, field)


def state(request: Request) -> Open311:
    return request.app.state.open311


# --- rendering ------------------------------------------------------------------------


def render(fmt: str, data: Any, root: str, item: str | None, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, item, data), status, media_type="text/xml; charset=utf-8")
    return JSONResponse(data, status)


def format_of(fmt: str) -> str:
    if fmt not in ("json", "xml"):
        raise Open311Error(400, "the format must be json or xml")
    return fmt


def error_response(fmt: str, error: Open311Error) -> Response:
    errors = [{"code": error.code, "description": error.description}]
    return render(fmt, errors, "errors", "error", error.code)


# --- endpoints ------------------------------------------------------------------------


@router.get("/discovery.{fmt}", summary="Discovery: where this API is and what it speaks")
async def discovery(fmt: str, request: Request) -> Response:
    fmt = format_of(fmt)
    base = str(request.base_url).rstrip("/") + "/open311/v2/"
    endpoint = {
        "specification": SPECIFICATION,
        "url": base,
        "changeset": "2026-01-01T00:00:00+00:00",
        "type": "production",
        "formats": ["application/json", "text/xml"],
    }
    data = {
        "changeset": "2026-01-01T00:00:00+00:00",
        "contact": f"The coordinating admin of {state(request).jurisdiction} (SP4N-LAPOR!)",
        "key_service": "Ask the operator for a key (lapor open311-keys add NAME)",
        "endpoints": [endpoint],
    }
    return render(fmt, data, "discovery", None)


@router.get("/services.{fmt}", summary="The services: the routing table's categories")
async def services(fmt: str, request: Request) -> Response:
    fmt = format_of(fmt)
    data = [s.as_open311() for s in state(request).services.values()]
    return render(fmt, data, "services", "service")


@router.get("/services/{service_code}.{fmt}", summary="A service's definition (no attributes)")
async def service_definition(service_code: str, fmt: str, request: Request) -> Response:
    fmt = format_of(fmt)
    if service_code not in state(request).services:
        raise Open311Error(404, f"no service {service_code!r}")
    data = {"service_code": service_code, "attributes": []}
    return render(fmt, data, "service_definition", None)


@router.get("/requests.{fmt}", summary="Service requests (never a confidential complaint)")
async def get_requests(fmt: str, request: Request) -> Response:
    fmt = format_of(fmt)
    o = state(request)
    q = request.query_params
    ids = q.get("service_request_id")
    if ids:
        # As the specification says: with ids, the other filters are ignored.
        found = []
        for text in dict.fromkeys(i.strip() for i in ids.split(",") if i.strip()):
            try:
                one = await o.public(tracking_id(text))
            except Open311Error as e:
                if e.code != 404:
                    raise
                continue
            if one is not None:
                found.append(as_request(one, o.services, o.notice))
        return render(fmt, found, "service_requests", "request")
    status = q.get("status")
    if status not in (None, "", "open", "closed"):
        raise Open311Error(400, "status must be open or closed")
    codes = {c.strip() for c in (q.get("service_code") or "").split(",") if c.strip()}
    unknown = codes - o.services.keys()
    if unknown:
        raise Open311Error(400, f"unknown service_code {', '.join(sorted(unknown))}")
    start, end = date_window(q.get("start_date"), q.get("end_date"), datetime.now(UTC))
    params: list[tuple[str, Any]] = [("from", start.isoformat()), ("to", end.isoformat())]
    params += [("category", c) for c in category_filter(codes)]
    params += [("status", s) for s in LAPOR_STATUSES.get(status or "", ())]
    chosen = await o.listing(params)
    chosen.sort(
        key=lambda r: (datetime.fromisoformat(r["received_at"]), r["tracking_id"]), reverse=True
    )
    data = [as_request(r, o.services, o.notice) for r in chosen[:MAX_RESULTS]]
    return render(fmt, data, "service_requests", "request")


@router.get("/requests/{service_request_id}.{fmt}", summary="One service request")
async def get_request(service_request_id: str, fmt: str, request: Request) -> Response:
    fmt = format_of(fmt)
    o = state(request)
    one = await o.public(tracking_id(service_request_id))
    if one is None:
        raise Open311Error(404, f"no service request {service_request_id!r}")
    data = [as_request(one, o.services, o.notice)]
    return render(fmt, data, "service_requests", "request")


@router.get("/tokens/{token}.{fmt}", summary="The service request a token stands for")
async def get_token(token: str, fmt: str, request: Request) -> Response:
    """Requests are answered with their ID at once (intake acknowledges only what the log
    holds), so a token is the request's ID itself."""
    fmt = format_of(fmt)
    request_id = tracking_id(token)
    if not await state(request).exists(request_id):
        raise Open311Error(404, f"no token {token!r}")
    data = [{"token": token, "service_request_id": request_id}]
    return render(fmt, data, "service_requests", "request")


@router.post("/requests.{fmt}", summary="Submit a service request (needs an api_key)")
async def post_request(fmt: str, request: Request) -> Response:
    fmt = format_of(fmt)
    o = state(request)
    fields = {**dict(request.query_params), **await _body(request)}
    if not o.keys.check(fields.get("api_key")):
        raise Open311Error(403, "a valid api_key is required to submit service requests")
    complaint = complaint_of(fields, o.services)
    request_id = await o.submit(complaint)
    data = [{"service_request_id": request_id, "service_notice": o.notice, "account_id": None}]
    return render(fmt, data, "service_requests", "request", 201)


async def _body(request: Request) -> dict[str, str]:
    raw = await request.body()
    if not raw:
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
        if kind == "application/json":
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            return {str(k): "" if v is None else str(v) for k, v in data.items()}
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=False))
    except ValueError:
        raise Open311Error(400, "the body is not a form (or a JSON object) in UTF-8") from None


def complaint_of(fields: Mapping[str, str], services: Mapping[str, ServiceType]) -> dict[str, Any]:
    """An Open311 POST as intake's complaint: an integrated channel's report, anonymous
    unless the reporter gave a name; never confidential (the request is public)."""
    code = (fields.get("service_code") or "").strip()
    if not code:
        raise Open311Error(400, "service_code is required")
    service = services.get(code)
    if service is None:
        raise Open311Error(400, f"unknown service_code {code!r}")
    location: dict[str, Any] = {}
    lat, lon = fields.get("lat"), fields.get("long")
    if lat or lon:
        try:
            location["lat"], location["lon"] = float(lat or ""), float(lon or "")
        except ValueError:
            raise Open311Error(400, "lat and long must both be numbers (WGS84)") from None
        if not (-90 <= location["lat"] <= 90 and -180 <= location["lon"] <= 180):
            raise Open311Error(400, "lat or long is out of range")
    address = (fields.get("address_string") or "").strip()
    if address:
        location["address"] = address
    if not location:
        raise Open311Error(400, "a location is required: lat and long, or address_string")
    description = " ".join((fields.get("description") or "").split())
    if len(description) > 4000:
        raise Open311Error(400, "description is longer than 4000 characters")
    title = short(description, 80) if len(description) >= 5 else f"Laporan: {service.name}"
    body = description
    if len(body) < 10:
        body = " ".join(p for p in (f"{service.name}.", description, address) if p)
    if len(body) < 10:
        body = f"Laporan {service.name} melalui Open311."
    name = " ".join(
        p.strip() for p in (fields.get("first_name"), fields.get("last_name")) if p and p.strip()
    )
    reporter = {
        k: v
        for k, v in {
            "name": name,
            "email": (fields.get("email") or "").strip(),
            "phone": (fields.get("phone") or "").strip(),
        }.items()
        if v
    }
    complaint: dict[str, Any] = {
        "title": title,
        "body": body,
        "report_type": "pengaduan",
        "channel": "integrated",
        "location": location,
        "anonymous": not name,
        "confidential": False,
    }
    if code != GENERAL:
        complaint["category"] = code
    if reporter:
        complaint["reporter"] = reporter
    return complaint
