"""Streaming exports of the complaints read model: CSV, and NDJSON for programs.

``GET /exports/complaints.csv`` and ``GET /exports/complaints.ndjson`` take the same filters:
``opd``, ``status`` and a period of reception ``received_from`` / ``received_to`` (local
calendar dates of the deployment, half-open: ``[from, to)``, so consecutive months tile).

JSON is offered as NDJSON (newline-delimited JSON, ``application/x-ndjson``): one complete
JSON object a line. Unlike one big JSON array it can be written and read a row at a time,
so it streams like the CSV, and a cut-off download is visibly cut off at a line.

Both stream from a server-side cursor inside a read-only transaction (one snapshot):
PostgreSQL hands over ``PREFETCH`` rows at a time and the response sends ``CHUNK_ROWS``
rows a chunk, so memory stays flat and the first rows go out at once however many follow.
PostgreSQL also formats the values (text for the CSV, ``row_to_json`` for NDJSON), which
leaves Python little more than joining lines. Rows come in storage order, unsorted: a sort
would have to read every matching row before the first could be sent (no index orders
``received_at``); sort the file if you need to. Instants are ISO 8601 in the deployment's
zone, with its offset (``+07:00`` for WIB).

Who sees what: the coordinating admin exports every unit's complaints; an agency officer
exports only its own unit's (``opd`` defaults to it; asking for another unit is 403).
What is never exported: the content of a confidential (Rahasia) complaint, whose title is
blanked in the query itself, and the reporter's identity, which the tracker does not hold.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import anyio
import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.types import Send

from lapor.services.auth import AuthenticatedActor
from lapor.services.errors import invalid
from lapor.services.runtime import Runtime, runtime_of
from lapor.services.settings import DeadlineSettings
from lapor.shared.events import OPD_CODE, Actor
from lapor.tracker.domain import Status
from lapor.tracker.read_model import OVERDUE

exports_router = APIRouter(prefix="/exports", tags=["exports"])

COLUMNS = (
    "tracking_id",
    "received_at",
    "status",
    "opd",
    "opd_name",
    "report_type",
    "channel",
    "category",
    "title",
    "anonymous",
    "confidential",
    "due_at",
    "overdue",
    "rating",
)
"""The exported fields, in order. Nothing identifying the reporter is among them."""

PREFETCH = 1000
"""Rows PostgreSQL hands over per round trip of the cursor."""
CHUNK_ROWS = 500
"""Rows written per response chunk: few enough to go out at once, enough to keep the
per-chunk overhead (a send through the ASGI stack) small."""
MAX_RUNNING = 3
"""Exports streaming at once per process (a soft cap: checked when a request comes in,
counted while a body streams). Each holds a pooled connection for its whole run; more
would starve the projections and the API of the shared pool."""


@cache
def _zone() -> str:
    """The deployment's zone (``LAPOR_DEADLINE_TIMEZONE``): the dates of the period are
    its local calendar dates, as the deadlines are, and instants are written in it."""
    return DeadlineSettings().timezone


# --- the query ------------------------------------------------------------------------


def export_query(
    opd: str | None, status_: Status | None, since: datetime | None, until: datetime | None
) -> tuple[str, list[Any]]:
    """The rows to export, with native types, and the query's arguments. Only the filters
    given become conditions, so the planner sees each export's own shape (an ``opd``
    filter can use its index). A confidential complaint's title never leaves the database.
    """
    where, args = [], []
    for condition, value in (
        ("opd = ${}", opd),
        ("status = ${}", status_.value if status_ else None),
        ("received_at >= ${}", since),
        ("received_at < ${}", until),
    ):
        if value is not None:
            args.append(value)
            where.append(condition.format(len(args)))
    sql = f"""SELECT tracking_id, received_at, status, opd, opd_name, report_type, channel,
           category, CASE WHEN confidential THEN '' ELSE title END AS title,
           anonymous, confidential, due_at, {OVERDUE}, rating
      FROM tracker.complaints"""
    return sql + (" WHERE " + " AND ".join(where) if where else ""), args


# --- the formats ----------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    extension: str
    media_type: str
    header: bytes
    """Sent before the query runs."""
    select: str
    """The SELECT that formats each row of the export query (in place of ``{rows}``)."""
    encode: Callable[[list[asyncpg.Record]], bytes]
    """One chunk of formatted rows -> its bytes."""


def _csv_lines(rows: Sequence[Sequence[str | None]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)  # None -> empty
    return buffer.getvalue().encode()


def _ndjson_lines(rows: list[asyncpg.Record]) -> bytes:
    return "".join(row[0] + "\n" for row in rows).encode()


# Citizens write the titles; a spreadsheet would run one that starts with = + - @ (or a
# tab or carriage return) as a formula: CSV injection. A leading apostrophe keeps it text.
CSV = Format(
    "csv",
    "text/csv; charset=utf-8",
    _csv_lines([COLUMNS]),
    r"""SELECT tracking_id, to_json(received_at) #>> '{}', status, opd, opd_name,
           report_type, channel, category,
           CASE WHEN title ~ '^[-=+@\t\r]' THEN '''' || title ELSE title END,
           anonymous::text, confidential::text, to_json(due_at) #>> '{}', overdue::text,
           rating::text
      FROM ({rows}) AS c""",
    _csv_lines,
)

NDJSON = Format(
    "ndjson",
    "application/x-ndjson",
    b"",
    "SELECT row_to_json(c)::text FROM ({rows}) AS c",
    _ndjson_lines,
)


# --- the endpoints --------------------------------------------------------------------


class ExportFilter:
    """The filters of an export, checked against who asks before anything is streamed."""

    def __init__(
        self,
        actor: AuthenticatedActor,
        opd: Annotated[
            str | None, Query(pattern=OPD_CODE, description="Unit code; an agency's own")
        ] = None,
        status_: Annotated[Status | None, Query(alias="status")] = None,
        received_from: Annotated[
            date | None, Query(description="First local date of reception (inclusive)")
        ] = None,
        received_to: Annotated[
            date | None, Query(description="Local date of reception to stop before (exclusive)")
        ] = None,
    ) -> None:
        self.opd = _unit_for(actor, opd)
        self.status = status_
        for name, day in (("received_from", received_from), ("received_to", received_to)):
            if day is not None and day < EARLIEST:
                raise invalid(name, f"must not be before {EARLIEST}")
        if received_from and received_to and received_to <= received_from:
            raise invalid("received_to", "must be after received_from (the period is [from, to))")
        self.received_from = received_from
        self.received_to = received_to
        # The instants the query takes, made now: a value PostgreSQL cannot take must be
        # refused before the 200 goes out, not found by the driver halfway through.
        self.since = _start_of(received_from)
        self.until = _start_of(received_to)

    def query(self, fmt: Format) -> tuple[str, list[Any]]:
        rows, args = export_query(self.opd, self.status, self.since, self.until)
        # Tagged, so that an export is easy to tell apart in pg_stat_activity.
        return "/* tracker export */ " + fmt.select.replace("{rows}", rows), args

    def filename(self, extension: str) -> str:
        """e.g. ``complaints_dpupr_closed_2026-01-01_2026-02-01.csv``; only characters of
        OPD codes, statuses and dates, so it needs no escaping."""
        parts = ["complaints", self.opd or "all"]
        if self.status:
            parts.append(self.status.value)
        if self.received_from or self.received_to:
            parts.append(self.received_from.isoformat() if self.received_from else "start")
            parts.append(self.received_to.isoformat() if self.received_to else "now")
        return "_".join(parts) + "." + extension


def _unit_for(actor: Actor, opd: str | None) -> str | None:
    if actor.role == "admin":
        return opd
    if actor.role == "agency" and actor.opd is not None:
        if opd is not None and opd != actor.opd:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this token is not for that unit")
        return actor.opd
    raise HTTPException(status.HTTP_403_FORBIDDEN, "only for the admin and agency roles")


EARLIEST = date(1970, 1, 1)
"""No period starts before the Unix epoch: nothing was received then, and the far end of
the calendar does not survive the trip to UTC (local midnight of 0001-01-01 in WIB is in
year 0, which neither Python nor the driver can write)."""


def _start_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(_zone())) if day else None


class ExportResponse(StreamingResponse):
    """A StreamingResponse that closes its body however the response ends, a client gone
    away included: the export's transaction and pooled connection are released then, not
    whenever the garbage collector finds the suspended generator.

    A failure after the 200 has gone out (PostgreSQL lost mid-stream) is not swallowed: it
    propagates, the app never sends the last, closing body message, and the server drops
    the connection without the terminating chunk. The client sees a transfer cut short,
    never a shorter file that looks complete."""

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with anyio.move_on_after(10, shield=True):
                    await aclose()


Filter = Annotated[ExportFilter, Depends()]
Rt = Annotated[Runtime, Depends(runtime_of)]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or an invalid bearer token"},
    403: {"description": "An agency token asking for another unit"},
    429: {"description": f"{MAX_RUNNING} exports already running; retry later"},
}


def _running(request: Request) -> int:
    return getattr(request.app.state, "exports_running", 0)


def _set_running(request: Request, n: int) -> None:
    request.app.state.exports_running = n


def _stream(request: Request, rt: Runtime, filters: ExportFilter, fmt: Format) -> ExportResponse:
    """Everything that can fail with a status (token, unit, filters, load) is checked
    before the 200 goes out; after it, a failure can only cut the stream short."""
    if _running(request) >= MAX_RUNNING:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many exports running; retry later",
            headers={"Retry-After": "30"},
        )
    sql, args = filters.query(fmt)
    pool = rt.db

    async def body() -> AsyncIterator[bytes]:
        # Counted while the body runs: a response that never starts holds no connection.
        _set_running(request, _running(request) + 1)
        try:
            if fmt.header:
                yield fmt.header
            async with pool.acquire() as conn, conn.transaction(readonly=True):
                # Instants are written in the deployment's zone (for this transaction).
                await conn.execute("SELECT set_config('TimeZone', $1, true)", _zone())
                chunk: list[asyncpg.Record] = []
                async for row in conn.cursor(sql, *args, prefetch=PREFETCH):
                    chunk.append(row)
                    if len(chunk) == CHUNK_ROWS:
                        yield fmt.encode(chunk)
                        chunk = []
                if chunk:
                    yield fmt.encode(chunk)
        finally:
            _set_running(request, _running(request) - 1)

    return ExportResponse(
        body(),
        media_type=fmt.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filters.filename(fmt.extension)}"',
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # a proxy must pass the chunks on, not collect them
        },
    )


@exports_router.get(
    "/complaints.csv",
    response_class=ExportResponse,
    responses={200: {"content": {"text/csv": {}}}, **_RESPONSES},
)
async def export_complaints_csv(request: Request, rt: Rt, filters: Filter) -> ExportResponse:
    """Complaints as CSV (UTF-8, header row first), streamed as they are read.

    Confidential (Rahasia) complaints are listed with an empty title; no reporter identity
    is exported. Booleans are ``true``/``false``, instants ISO 8601 with the deployment's
    offset, missing values empty; a title a spreadsheet would take for a formula starts
    with ``'``."""
    return _stream(request, rt, filters, CSV)


@exports_router.get(
    "/complaints.ndjson",
    response_class=ExportResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}, **_RESPONSES},
)
async def export_complaints_ndjson(request: Request, rt: Rt, filters: Filter) -> ExportResponse:
    """Complaints as newline-delimited JSON (NDJSON): one object a line with the CSV's
    fields (native booleans, numbers and nulls), streamed as they are read. NDJSON is the
    streaming form of JSON: each line is written and parsed alone, where a single JSON
    array would have to be complete before it is valid. Confidential (Rahasia) complaints
    have an empty title; no reporter identity is exported."""
    return _stream(request, rt, filters, NDJSON)
