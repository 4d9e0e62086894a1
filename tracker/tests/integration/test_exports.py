"""Streaming complaint exports on real PostgreSQL: every row of a large read model goes out
while the query is still running, confidential content and other units stay out, the
filters and the period select what they say.

Why a transport of our own: ``httpx.ASGITransport`` collects the whole body before it
returns the response, so through it every export would look fully buffered. The transport
below hands each body message to the reader as the app sends it, through a one-slot queue:
like a socket, the app cannot run ahead of a reader that does not read (backpressure).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI

from lapor.devtools.testing import bearer, eventually, serving
from lapor.services.settings import Settings
from lapor.tracker.app import create_app
from lapor.tracker.exports import CHUNK_ROWS, COLUMNS, MAX_RUNNING

N = 200_000

# --- a transport that streams ---------------------------------------------------------


class _Body(httpx.AsyncByteStream):
    def __init__(self, chunks: asyncio.Queue, task: asyncio.Task, disconnected: asyncio.Event):
        self.chunks, self.task, self.disconnected = chunks, task, disconnected

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self.chunks.get()) is not None:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk

    async def aclose(self) -> None:
        """The client goes away: the app sees a disconnect, and is stopped if it goes on."""
        self.disconnected.set()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        chunks: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=1)
        started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        disconnected = asyncio.Event()
        request_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    await chunks.put(message["body"])
                if not message.get("more_body", False):
                    await chunks.put(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as e:
                if not started.done():
                    started.set_exception(e)
                else:
                    await chunks.put(e)

        task = asyncio.create_task(run())
        start = await asyncio.wait_for(started, 30)
        return httpx.Response(
            start["status"],
            headers=start.get("headers", []),
            stream=_Body(chunks, task, disconnected),
        )


@contextlib.asynccontextmanager
async def streaming(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The tracker running, and a client whose responses arrive as they are sent."""
    app = create_app(settings)
    async with (
        serving(app),
        httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://test") as client,
    ):
        yield client


# --- data -----------------------------------------------------------------------------


async def insert_generated(settings: Settings, n: int) -> None:
    """``n`` complaints straight into the read model, in one statement. Every 10th is
    confidential with a title that must never be exported; every 4th is unrouted yet."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            """INSERT INTO tracker.complaints (tracking_id, status, opd, opd_name,
                   report_type, channel, category, title, anonymous, confidential,
                   received_at, updated_at, last_seq, due_at, rating)
               SELECT 'G' || lpad(i::text, 9, '0'),
                      (ARRAY['received', 'disposed', 'in_progress', 'closed'])[i % 4 + 1],
                      CASE WHEN i % 4 > 0 THEN (ARRAY['dpupr', 'dinkes', 'disdik'])[i % 3 + 1]
                      END,
                      CASE WHEN i % 4 > 0 THEN 'Dinas ' || (i % 3) END,
                      'complaint', 'web', 'infrastruktur',
                      CASE WHEN i % 10 = 0 THEN 'RAHASIA ' || i ELSE 'Jalan rusak ' || i END,
                      i % 7 = 0, i % 10 = 0,
                      t, t, i, t + interval '3 days', CASE WHEN i % 4 = 3 THEN i % 5 + 1 END
                 FROM generate_series(1, $1) AS i,
                      LATERAL (SELECT timestamptz '2026-01-01 00:00+07'
                                      + i * interval '30 seconds' AS t) AS at""",
            n,
        )
    finally:
        await conn.close()


async def insert(settings: Settings, *rows: dict[str, Any]) -> None:
    """Complaints with the given fields (the rest defaulted) into the read model."""
    defaults = {
        "status": "disposed",
        "opd": "dpupr",
        "opd_name": "Dinas PUPR",
        "report_type": "complaint",
        "channel": "web",
        "category": None,
        "title": "Jalan rusak",
        "anonymous": False,
        "confidential": False,
        "received_at": "2026-02-10 09:00+07",
        "due_at": None,
    }
    conn = await asyncpg.connect(settings.database_url)
    try:
        for i, given in enumerate(rows):
            row = {**defaults, **given}
            await conn.execute(
                """INSERT INTO tracker.complaints (tracking_id, status, opd, opd_name,
                       report_type, channel, category, title, anonymous, confidential,
                       received_at, updated_at, last_seq, due_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text::timestamptz,
                       $11::text::timestamptz, $12, $13::text::timestamptz)""",
                row["tracking_id"],
                row["status"],
                row["opd"],
                row["opd_name"],
                row["report_type"],
                row["channel"],
                row["category"],
                row["title"],
                row["anonymous"],
                row["confidential"],
                row["received_at"],
                i + 1,
                row["due_at"],
            )
    finally:
        await conn.close()


async def open_exports(settings: Settings) -> list[str]:
    """The states of the database sessions inside an export's transaction right now."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            """SELECT state FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND xact_start IS NOT NULL AND query LIKE '/* tracker export */%'"""
        )
    finally:
        await conn.close()
    return [r["state"] for r in rows]


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(r["tracking_id"] for r in rows)


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def csv_rows(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> list:
    response = await client.get("/exports/complaints.csv", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return parse_csv(response.text)


# --- tests ----------------------------------------------------------------------------


async def stream(
    client: httpx.AsyncClient, settings: Settings, path: str, **params: str
) -> dict[str, Any]:
    """Export as the admin, noting when the first rows arrive and which export
    transactions PostgreSQL holds open at that moment."""
    began = time.perf_counter()
    headers = bearer(settings, "admin")
    async with client.stream("GET", path, headers=headers, params=params) as response:
        assert response.status_code == 200
        parts = response.aiter_bytes()
        header = await anext(parts) if path.endswith(".csv") else b""  # before the query
        first_rows = await anext(parts)
        first_rows_at = time.perf_counter() - began
        during = await open_exports(settings)
        body = bytearray(header + first_rows)
        async for part in parts:
            body += part
    return {
        "response": response,
        "header": header,
        "first_rows": first_rows,
        "first_rows_at": first_rows_at,
        "during": during,
        "body": bytes(body),
        "total": time.perf_counter() - began,
    }


def as_csv(value: Any) -> str:
    """A JSON value as the CSV writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def test_exports_stream_every_row_while_the_query_still_runs(settings):
    """200,000 complaints. What is measured, for the CSV of all of them and the NDJSON of
    one unit's (~50,000):

    * deterministic: when the first rows reach the client, PostgreSQL still holds the
      export's transaction open, its cursor part-way. The transport lets the app run at
      most a few chunks of 500 rows ahead of this client, so the rows cannot all have been
      produced: the response streams, it was not built first. Afterwards no export
      transaction is left open.
    * coarse timing: the first rows arrive within a fifth of the whole CSV export's time
      (typically 2-4%); a generous bound, so a loaded machine does not make it flaky.
    """
    await insert_generated(settings, N)
    async with streaming(settings) as client:
        csv_export = await stream(client, settings, "/exports/complaints.csv")
        assert await open_exports(settings) == []  # transaction over, connection returned
        ndjson_export = await stream(client, settings, "/exports/complaints.ndjson", opd="dinkes")
        assert await open_exports(settings) == []

    for export in (csv_export, ndjson_export):
        assert export["during"] in (["idle in transaction"], ["active"]), export["during"]
        assert export["first_rows"].count(b"\n") == CHUNK_ROWS
        print(
            f"\n{export['response'].headers['content-type']}: first rows after "
            f"{export['first_rows_at']:.3f}s, all after {export['total']:.3f}s"
        )
    assert csv_export["first_rows_at"] < 0.2 * csv_export["total"]

    response, body = csv_export["response"], csv_export["body"]
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="complaints_all.csv"'
    assert csv_export["header"] == (",".join(COLUMNS) + "\r\n").encode()
    assert body.count(b"\r\n") == N + 1  # no title holds a line break: one line a row
    assert body.count(b"tracking_id") == 1  # the header, once
    assert b"RAHASIA" not in body
    header, *rows = csv.reader(io.StringIO(body.decode()))  # lists: a DictReader is slow
    assert header == list(COLUMNS)
    ids, title, opd, confidential = map(
        COLUMNS.index, ("tracking_id", "title", "opd", "confidential")
    )
    assert len({r[ids] for r in rows}) == len(rows) == N
    assert sum(r[confidential] == "true" for r in rows) == N // 10
    for r in rows:
        assert r[title] == "" if r[confidential] == "true" else r[title].startswith("Jalan")

    response, body = ndjson_export["response"], ndjson_export["body"]
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-disposition"] == (
        'attachment; filename="complaints_dinkes.ndjson"'
    )
    assert b"RAHASIA" not in body
    items = [json.loads(line) for line in body.splitlines()]
    # Every line an object with the CSV's fields and, for the same complaint, its values.
    dinkes = {r[ids]: r for r in rows if r[opd] == "dinkes"}
    assert len(items) == len(dinkes) == N // 4
    for item in items:
        assert tuple(item) == COLUMNS
        assert [as_csv(v) for v in item.values()] == dinkes[item["tracking_id"]]
        assert item["title"] == "" if item["confidential"] else item["title"].startswith("J")


async def test_filters_by_unit_status_and_local_period(settings):
    # The period is [from, to) of local dates (WIB, UTC+7) of reception.
    await insert(
        settings,
        {"tracking_id": "JAN31", "received_at": "2026-01-31 23:59:59+07"},
        {"tracking_id": "FEB01", "received_at": "2026-01-31 17:30:00+00"},  # Feb 1, 00:30 WIB
        {"tracking_id": "FEB28", "received_at": "2026-02-28 23:59:59+07", "status": "closed"},
        {"tracking_id": "MAR01", "received_at": "2026-03-01 00:00:00+07"},
        {"tracking_id": "DINKES", "opd": "dinkes", "opd_name": "Dinas Kesehatan"},
        {"tracking_id": "UNROUTED", "opd": None, "opd_name": None, "status": "received"},
    )
    admin = bearer(settings, "admin")
    async with streaming(settings) as client:
        everything = await csv_rows(client, admin)
        assert ids(everything) == ["DINKES", "FEB01", "FEB28", "JAN31", "MAR01", "UNROUTED"]
        assert ids(await csv_rows(client, admin, opd="dinkes")) == ["DINKES"]
        assert ids(await csv_rows(client, admin, status="received")) == ["UNROUTED"]
        february = {"received_from": "2026-02-01", "received_to": "2026-03-01"}
        assert ids(await csv_rows(client, admin, opd="dpupr", **february)) == [
            "FEB01",
            "FEB28",
        ]
        assert ids(await csv_rows(client, admin, received_to="2026-02-01")) == ["JAN31"]
        assert ids(await csv_rows(client, admin, received_from="2026-03-01")) == ["MAR01"]
        assert await csv_rows(client, admin, opd="dishub") == []

        response = await client.get(
            "/exports/complaints.ndjson",
            headers=admin,
            params={"opd": "dpupr", "status": "closed", **february},
        )
        assert [json.loads(line)["tracking_id"] for line in response.text.splitlines()] == ["FEB28"]
        assert response.headers["content-disposition"] == (
            'attachment; filename="complaints_dpupr_closed_2026-02-01_2026-03-01.ndjson"'
        )

        row = next(r for r in everything if r["tracking_id"] == "UNROUTED")
        assert row["opd"] == "" and row["due_at"] == "" and row["rating"] == ""
        assert row["received_at"] == "2026-02-10T09:00:00+07:00"
        assert row["overdue"] == "false"

        for bad in (
            {"opd": "DPUPR!"},
            {"status": "lost"},
            {"received_from": "yesterday"},
            {"received_from": "2026-03-01", "received_to": "2026-03-01"},
        ):
            response = await client.get("/exports/complaints.csv", headers=admin, params=bad)
            assert response.status_code == 422, bad


async def test_agency_exports_its_own_unit_only_and_strangers_nothing(settings):
    await insert(
        settings,
        {"tracking_id": "OWN1"},
        {"tracking_id": "OWN2", "confidential": True, "title": "Pungli di loket"},
        {"tracking_id": "OTHER", "opd": "dinkes", "opd_name": "Dinas Kesehatan"},
    )
    officer = bearer(settings, "agency", "dpupr")
    async with streaming(settings) as client:
        for path in ("/exports/complaints.csv", "/exports/complaints.ndjson"):
            assert (await client.get(path)).status_code == 401
            bad = {"Authorization": "Bearer not-a-token"}
            assert (await client.get(path, headers=bad)).status_code == 401
            other = await client.get(path, headers=officer, params={"opd": "dinkes"})
            assert other.status_code == 403

        own = await csv_rows(client, officer)
        assert sorted(r["tracking_id"] for r in own) == ["OWN1", "OWN2"]
        assert sorted(r["tracking_id"] for r in await csv_rows(client, officer, opd="dpupr")) == [
            "OWN1",
            "OWN2",
        ]
        secret = next(r for r in own if r["tracking_id"] == "OWN2")
        assert secret["title"] == "" and secret["confidential"] == "true"

        response = await client.get("/exports/complaints.csv", headers=officer)
        assert "Pungli" not in response.text
        assert response.headers["content-disposition"] == (
            'attachment; filename="complaints_dpupr.csv"'
        )


async def test_titles_are_quoted_and_formulas_defused(settings):
    title = 'Lampu "mati", gelap\ndi gang 3'
    await insert(
        settings,
        {"tracking_id": "QUOTED", "title": title},
        {"tracking_id": "FORMULA", "title": '=HYPERLINK("http://x.example","klik")'},
    )
    admin = bearer(settings, "admin")
    async with streaming(settings) as client:
        rows = {r["tracking_id"]: r for r in await csv_rows(client, admin)}
        assert rows["QUOTED"]["title"] == title
        # A spreadsheet must not run a citizen's title: it stays text.
        assert rows["FORMULA"]["title"] == '\'=HYPERLINK("http://x.example","klik")'
        response = await client.get("/exports/complaints.ndjson", headers=admin)
        items = {i["tracking_id"]: i for i in map(json.loads, response.text.splitlines())}
        assert items["QUOTED"]["title"] == title
        assert items["FORMULA"]["title"].startswith("=HYPERLINK")


async def test_exports_are_capped_and_a_client_walking_away_frees_its_connection(settings):
    await insert_generated(settings, 20_000)
    admin = bearer(settings, "admin")
    async with streaming(settings) as client:
        async with contextlib.AsyncExitStack() as stack:
            held = []
            for _ in range(MAX_RUNNING):
                response = await stack.enter_async_context(
                    client.stream("GET", "/exports/complaints.ndjson", headers=admin)
                )
                await anext(response.aiter_bytes())  # running, and held by backpressure
                held.append(response)
            assert len(await open_exports(settings)) == MAX_RUNNING

            busy = await client.get("/exports/complaints.csv", headers=admin)
            assert busy.status_code == 429
            assert busy.headers["retry-after"] == "30"

            await held[0].aclose()  # a client goes away mid-export: its slot is free again

            async def freed() -> bool:
                return len(await open_exports(settings)) == MAX_RUNNING - 1

            await eventually(freed, within=5)
            response = await client.get("/exports/complaints.csv", headers=admin)
            assert response.status_code == 200
            assert response.text.count("\r\n") == 20_001

        async def none_open() -> bool:
            return await open_exports(settings) == []

        # Every client gone: every transaction ended, every connection back in the pool.
        await eventually(none_open, within=5)
        assert (await client.get("/exports/complaints.csv", headers=admin)).status_code == 200
