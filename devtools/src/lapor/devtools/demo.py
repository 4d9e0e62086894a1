"""``lapor demo``: drive a running system end to end over HTTP.

Submits the complaints in ``demo_complaints.json`` to intake, waits until the tracker shows
each one routed to an OPD, lets that OPD post a follow-up (tindak lanjut) and resolve most of
them, then prints the completion report (persentase penyelesaian) per OPD from analytics.

Only the public HTTP APIs are used, so the demo exercises the same paths a citizen and an
agency officer would.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from typing import Any, TypeVar

import httpx

from lapor.services.auth import issue_token

DATA_FILE = "demo_complaints.json"
RESOLVE_SKIP_EVERY = 7
"""Every 7th complaint stays unresolved, so the completion rate is realistic, not 100%."""
POLL_INTERVAL = 0.5
ROUTE_TIMEOUT = 30.0
METRICS_TIMEOUT = 30.0
RETRY_ATTEMPTS = 10
CONCURRENCY = 8
"""Enough parallel requests to be quick without looking like a flood to the services."""
HTTP_TIMEOUT = httpx.Timeout(10.0)

# Answers that mean "not now" rather than "no": a service briefly unable to append to the
# log (503, with Retry-After) ...
UNAVAILABLE = frozenset({429, 502, 503, 504})
# ... and, at an agency endpoint, "not yet": the tracker has not seen the routing (404) or
# the previous step (409) yet.
NOT_YET = UNAVAILABLE | {404, 409, 425}

OFFICERS = (
    "Rina Marlina",
    "Budi Santoso",
    "Hendra Gunawan",
    "Siti Rahmawati",
    "Yusuf Alkadrie",
    "Maria Goretti",
    "Fajar Nugroho",
)

FOLLOW_UPS: dict[str, tuple[str, ...]] = {
    "pengaduan": (
        "Laporan sudah kami terima dan diteruskan ke bidang teknis. Tim sudah meninjau lokasi "
        "dan penanganan dijadwalkan minggu ini.",
        "Terima kasih atas laporannya. Petugas kami sudah turun ke lapangan untuk memastikan "
        "kondisi dan sedang menyiapkan langkah penanganan.",
        "Laporan sedang kami proses. Kami sudah berkoordinasi dengan kelurahan setempat dan "
        "akan menyampaikan perkembangannya melalui kanal ini.",
    ),
    "aspirasi": (
        "Terima kasih atas aspirasi Bapak/Ibu. Usulan ini sudah kami catat dan akan dibahas "
        "dalam rapat perencanaan program.",
    ),
    "permintaan_informasi": (
        "Permintaan informasi sudah kami terima dan sedang disiapkan oleh PPID Pelaksana. "
        "Jawaban akan kami sampaikan melalui kanal ini.",
    ),
}

RESOLUTIONS_BY_CATEGORY: dict[str, str] = {
    "jalan": "Lubang dan kerusakan aspal sudah ditambal oleh tim pemeliharaan jalan. Ruas "
    "tersebut juga masuk daftar pengaspalan ulang tahun anggaran berikutnya.",
    "drainase": "Parit sudah dikeruk dan sampah penyumbat diangkut; aliran air kembali lancar. "
    "Kami akan memantau lokasi saat hujan berikutnya.",
    "sampah": "Sampah sudah diangkut seluruhnya dan jadwal pengangkutan di lokasi ditambah "
    "menjadi setiap hari.",
    "penerangan_jalan_umum": "Lampu penerangan jalan sudah diganti dan menyala kembali sejak "
    "tadi malam.",
    "penerangan_lingkungan": "Lampu penerangan lingkungan sudah diperbaiki dan seluruh titik "
    "menyala kembali.",
    "air_minum": "Gangguan disebabkan kebocoran pipa distribusi; pipa sudah diperbaiki dan "
    "aliran air kembali normal. Mohon maaf atas ketidaknyamanannya.",
    "lalu_lintas": "Petugas sudah ditempatkan di lokasi pada jam sibuk dan perangkat lampu lalu "
    "lintas sudah diperbaiki.",
    "parkir": "Juru parkir liar sudah ditertibkan; di lokasi kini hanya juru parkir resmi "
    "berompi yang wajib memberikan karcis.",
    "pedagang_kaki_lima": "Satpol PP bersama kelurahan sudah menata pedagang; lapak dipindahkan "
    "dari trotoar dan akses gang kembali terbuka.",
    "ketertiban_umum": "Patroli gabungan dijadwalkan setiap malam minggu di lokasi dan beberapa "
    "kendaraan berknalpot tidak standar sudah ditindak.",
    "bencana": "Tim reaksi cepat sudah mengevakuasi warga rentan dan menyalurkan bantuan "
    "logistik. Air sudah surut dan pembersihan lingkungan dilakukan bersama warga.",
    "ktp": "KTP elektronik sudah dicetak dan dapat diambil di loket pelayanan dengan "
    "membawa surat keterangan.",
}

RESOLUTIONS_BY_TYPE: dict[str, str] = {
    "pengaduan": "Tindak lanjut sudah selesai dilaksanakan sesuai laporan. Terima kasih atas "
    "partisipasi Bapak/Ibu dalam mengawasi pelayanan publik.",
    "aspirasi": "Aspirasi sudah kami catat dan teruskan kepada pihak yang berwenang sebagai "
    "bahan pertimbangan kebijakan. Terima kasih atas masukannya.",
    "permintaan_informasi": "Informasi yang diminta sudah kami kirimkan melalui kanal ini "
    "beserta tautan dokumen di laman PPID. Silakan hubungi kami bila masih ada yang kurang "
    "jelas.",
}

T = TypeVar("T")


class DemoError(Exception):
    """A step of the demo could not be completed; the message says which and why."""


class ServiceUnreachable(DemoError):
    """A service did not answer at all (not running, wrong URL, network down)."""


@dataclass(frozen=True)
class Submitted:
    """A complaint intake accepted, with its position in the demo data."""

    index: int
    tracking_id: str
    item: dict[str, Any]
    reporter_secret: str | None = None


@dataclass(frozen=True)
class Routed:
    """A submitted complaint as the tracker shows it after disposition."""

    submitted: Submitted
    opd: str
    opd_name: str | None


@dataclass(frozen=True)
class Urls:
    """Base URLs of the three services the demo talks to, and the deployment's signing
    secret, with which the demo acts as the coordinating admin and the officers."""

    intake: str
    tracker: str
    analytics: str
    secret: str = ""

    def as_admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.secret, 'admin', name='Demo')}"}

    def as_officer(self, opd: str, name: str) -> dict[str, str]:
        token = issue_token(self.secret, "agency", opd, name=name)
        return {"Authorization": f"Bearer {token}"}


# --- data -------------------------------------------------------------------------------


def load_complaints() -> list[dict[str, Any]]:
    """The demo complaints, shipped inside the package so ``lapor demo`` works anywhere."""
    text = files("lapor.devtools").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def request_body(item: dict[str, Any]) -> dict[str, Any]:
    """The intake request for one demo item; the demo never guesses the OPD for the citizen."""
    return {**item, "suggested_opd": None}


def should_resolve(index: int) -> bool:
    """Deterministic choice, so every run gives the same completion rate."""
    return (index + 1) % RESOLVE_SKIP_EVERY != 0


def officer_for(index: int) -> str:
    return f"{OFFICERS[index % len(OFFICERS)]} (Admin Penghubung)"


def follow_up_text(index: int, item: dict[str, Any]) -> str:
    variants = FOLLOW_UPS.get(item.get("report_type") or "pengaduan", FOLLOW_UPS["pengaduan"])
    return variants[index % len(variants)]


def resolution_text(item: dict[str, Any]) -> str:
    report_type = item.get("report_type") or "pengaduan"
    category = item.get("category")
    # Category-specific texts describe physical work, which only fits a complaint.
    if report_type == "pengaduan" and category in RESOLUTIONS_BY_CATEGORY:
        return RESOLUTIONS_BY_CATEGORY[category]
    return RESOLUTIONS_BY_TYPE.get(report_type, RESOLUTIONS_BY_TYPE["pengaduan"])


# --- HTTP -------------------------------------------------------------------------------


async def call(
    client: httpx.AsyncClient, service: str, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """One request; a transport failure becomes a message that names the service."""
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise ServiceUnreachable(
            f"{service} cannot be reached at {url} ({type(exc).__name__}: {str(exc) or '-'}); "
            "is it running?"
        ) from None


async def call_with_retry(
    client: httpx.AsyncClient,
    service: str,
    method: str,
    url: str,
    retry_on: frozenset[int],
    **kwargs: Any,
) -> httpx.Response:
    """Retry the answers in ``retry_on`` a few times (eventual consistency, a log briefly
    away); safe because intake writes are keyed and the demo only retries refused writes."""
    response = await call(client, service, method, url, **kwargs)
    for _ in range(RETRY_ATTEMPTS - 1):
        if response.status_code not in retry_on:
            break
        await asyncio.sleep(retry_delay(response))
        response = await call(client, service, method, url, **kwargs)
    return response


def retry_delay(response: httpx.Response) -> float:
    """Honour a short Retry-After, but never let a service stall the demo for long."""
    try:
        return min(float(response.headers.get("Retry-After", POLL_INTERVAL)), 5.0)
    except ValueError:
        return POLL_INTERVAL


def expect(response: httpx.Response, service: str, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        raise DemoError(
            f"{service} answered {response.status_code} to {response.request.method} "
            f"{response.request.url}: {response.text[:500]}"
        )
    return response


async def bounded(
    items: Iterable[T], work: Callable[[T], Awaitable[Any]], limit: int = CONCURRENCY
) -> list[Any]:
    """Run ``work`` over ``items`` concurrently, at most ``limit`` at a time, keeping order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(item: T) -> Any:
        async with semaphore:
            return await work(item)

    return await asyncio.gather(*(one(item) for item in items))


async def ensure_reachable(client: httpx.AsyncClient, service: str, url: str) -> None:
    """Fail before submitting anything if a service is down: any HTTP answer will do."""
    await call(client, service, "GET", url)


async def resolved_so_far(client: httpx.AsyncClient, urls: Urls) -> int:
    """Analytics' resolved count before this run, so a second run waits for its own work."""
    response = await call(client, "analytics", "GET", f"{urls.analytics}/metrics/completion")
    if response.status_code != 200:
        return 0
    return int(response.json().get("overall", {}).get("resolved") or 0)


# --- steps ------------------------------------------------------------------------------


async def submit_all(
    client: httpx.AsyncClient, urls: Urls, items: list[dict[str, Any]], run_id: str
) -> list[Submitted]:
    """Submit every item; a stable Idempotency-Key makes a retried POST land on the same ID."""

    async def submit(indexed: tuple[int, dict[str, Any]]) -> Submitted:
        index, item = indexed
        response = await call_with_retry(
            client,
            "intake",
            "POST",
            f"{urls.intake}/complaints",
            UNAVAILABLE,
            json=request_body(item),
            headers={"Idempotency-Key": f"demo-{index:03d}-{run_id}"},
        )
        expect(response, "intake", 202, 200)
        body = response.json()
        return Submitted(index, body["tracking_id"], item, body.get("reporter_secret"))

    submitted = await bounded(list(enumerate(items)), submit)
    progress(f"submitted {len(submitted)}/{len(items)}")
    return submitted


async def routing_of(client: httpx.AsyncClient, urls: Urls, submitted: Submitted) -> Routed | None:
    """The complaint's routing if the tracker already shows it, else None (not yet)."""
    response = await call(
        client, "tracker", "GET", f"{urls.tracker}/complaints/{submitted.tracking_id}"
    )
    if response.status_code != 200:
        return None  # 404 until the tracker's projection has caught up
    view = response.json()
    if view.get("status") != "disposed" or not view.get("opd"):
        return None
    return Routed(submitted=submitted, opd=view["opd"], opd_name=view.get("opd_name"))


async def wait_routed(
    client: httpx.AsyncClient, urls: Urls, submitted: list[Submitted]
) -> list[Routed]:
    """Poll the tracker until every complaint is routed or the batch deadline passes."""
    pending = {s.tracking_id: s for s in submitted}
    routed: dict[str, Routed] = {}
    deadline = time.monotonic() + ROUTE_TIMEOUT
    while pending and time.monotonic() < deadline:
        await dispose_proposals(client, urls)
        results = await bounded(pending.values(), lambda s: routing_of(client, urls, s))
        newly = [r for r in results if r is not None]
        for r in newly:
            routed[r.submitted.tracking_id] = r
            del pending[r.submitted.tracking_id]
        if newly:
            progress(f"routed {len(routed)}/{len(submitted)}")
        if pending:
            await asyncio.sleep(POLL_INTERVAL)
    return sorted(routed.values(), key=lambda r: r.submitted.index)


async def dispose_proposals(client: httpx.AsyncClient, urls: Urls) -> None:
    """Act as the coordinating admin: verify what the router was not sure enough to
    dispose by itself, accepting its proposal (or keeping it, when it has none)."""
    response = await call(
        client, "tracker", "GET", f"{urls.tracker}/admin/complaints", headers=urls.as_admin()
    )
    if response.status_code != 200:
        return
    for item in response.json()["items"]:
        if item.get("proposed_opd"):
            await call(
                client,
                "tracker",
                "POST",
                f"{urls.tracker}/complaints/{item['tracking_id']}/disposition",
                json={"opd": item["proposed_opd"]},
                headers=urls.as_admin(),
            )


async def handle(client: httpx.AsyncClient, urls: Urls, routed: Routed) -> bool:
    """Act as the OPD's liaison officer: post a follow-up, then resolve unless this is one
    the demo leaves open. Returns whether the complaint was resolved."""
    s = routed.submitted
    base = f"{urls.tracker}/agencies/{routed.opd}/complaints/{s.tracking_id}"
    officer = urls.as_officer(routed.opd, officer_for(s.index))
    response = await call_with_retry(
        client,
        "tracker",
        "POST",
        f"{base}/follow-ups",
        NOT_YET,
        json={"message": follow_up_text(s.index, s.item)},
        headers=officer,
    )
    expect(response, "tracker", 202, 200)
    if not should_resolve(s.index):
        return False
    response = await call_with_retry(
        client,
        "tracker",
        "POST",
        f"{base}/resolution",
        NOT_YET,
        json={"resolution": resolution_text(s.item)},
        headers=officer,
    )
    expect(response, "tracker", 202, 200)
    return await confirm_as_reporter(client, urls, s)


async def confirm_as_reporter(client: httpx.AsyncClient, urls: Urls, s: Submitted) -> bool:
    """The reporter rates the answer and confirms: the complaint is finished (Selesai)."""
    if s.reporter_secret is None:
        return False
    me = {"X-Reporter-Secret": s.reporter_secret}
    base = f"{urls.tracker}/complaints/{s.tracking_id}"
    stars = 5 - s.index % 3
    for path, body in ((f"{base}/rating", {"stars": stars}), (f"{base}/confirmation", None)):
        response = await call_with_retry(
            client, "tracker", "POST", path, NOT_YET, json=body, headers=me
        )
        expect(response, "tracker", 202, 200)
    return True


async def follow_up_all(client: httpx.AsyncClient, urls: Urls, routed: list[Routed]) -> int:
    """Follow up every routed complaint; returns how many were resolved."""
    outcomes = await bounded(routed, lambda r: handle(client, urls, r))
    resolved = sum(outcomes)
    progress(f"followed up {len(routed)}, resolved {resolved}/{len(routed)}")
    return resolved


async def wait_metrics(
    client: httpx.AsyncClient, urls: Urls, target_resolved: int
) -> tuple[dict[str, Any], bool]:
    """Poll analytics until it counts at least ``target_resolved``; the projection is
    eventually consistent. Returns the last metrics and whether the target was reached."""
    url = f"{urls.analytics}/metrics/completion"
    deadline = time.monotonic() + METRICS_TIMEOUT
    metrics: dict[str, Any] = {}
    while True:
        response = await call(client, "analytics", "GET", url)
        if response.status_code == 200:
            metrics = response.json()
            if int(metrics.get("overall", {}).get("resolved") or 0) >= target_resolved:
                return metrics, True
        if time.monotonic() >= deadline:
            if not metrics:
                expect(response, "analytics", 200)
            return metrics, False
        await asyncio.sleep(POLL_INTERVAL)


# --- output -----------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"  {message}", flush=True)


def percent(value: Any) -> str:
    """Analytics sends the rate as a decimal string ("95.96"); show it with two places."""
    if value is None:
        return "-"
    try:
        return f"{Decimal(str(value)):.2f}%"
    except InvalidOperation:
        return str(value)


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def routing_lines(routed: list[Routed]) -> list[str]:
    """One line per complaint, showing where it went and whether by category or by text."""
    lines = []
    for r in routed:
        item = r.submitted.item
        basis = item.get("category") or "(teks)"
        lines.append(
            f"    {r.submitted.tracking_id}  {shorten(item['title'], 44):<44}  "
            f"{basis:<22} -> {r.opd}"
        )
    return lines


def format_report(metrics: dict[str, Any]) -> str:
    """An aligned table: one row per OPD (busiest first) and the overall line."""
    header = ("OPD", "Name", "Received", "Resolved", "Completion")
    rows = [
        (
            str(row.get("opd", "")),
            str(row.get("opd_name") or "-"),
            str(row.get("received", 0)),
            str(row.get("resolved", 0)),
            percent(row.get("completion_rate")),
        )
        for row in sorted(
            metrics.get("per_opd", []), key=lambda r: (-int(r.get("received", 0)), r.get("opd"))
        )
    ]
    overall = metrics.get("overall", {})
    total = (
        "Overall",
        "",
        str(overall.get("received", 0)),
        str(overall.get("resolved", 0)),
        percent(overall.get("completion_rate")),
    )
    widths = [max(len(r[i]) for r in [header, *rows, total]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        left = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
        right = [cell.rjust(width) for cell, width in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *(line(r) for r in rows), rule, line(total)])


# --- orchestration ----------------------------------------------------------------------


async def run(urls: Urls, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """The whole demo; returns the exit code. Raises DemoError when a step cannot proceed.
    ``transport`` lets a test run it against an in-process fake of the services."""
    items = load_complaints()
    run_id = secrets.token_hex(4)
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, transport=transport) as client:
        await asyncio.gather(
            ensure_reachable(client, "intake", urls.intake),
            ensure_reachable(client, "tracker", urls.tracker),
            ensure_reachable(client, "analytics", urls.analytics),
        )
        baseline = await resolved_so_far(client, urls)

        print(f"Submitting {len(items)} complaints to {urls.intake} (run {run_id})", flush=True)
        submitted = await submit_all(client, urls, items, run_id)

        print("Waiting for routing (disposisi)", flush=True)
        routed = await wait_routed(client, urls, submitted)
        if not routed:
            raise DemoError(
                f"no complaint was routed within {ROUTE_TIMEOUT:.0f} s; "
                "are the router and the tracker running?"
            )
        print("\n".join(routing_lines(routed)), flush=True)
        seen = {r.submitted.tracking_id for r in routed}
        unrouted = [s.tracking_id for s in submitted if s.tracking_id not in seen]
        if unrouted:
            print(f"  not routed in time: {', '.join(unrouted)}", flush=True)

        print("Agencies following up (tindak lanjut)", flush=True)
        resolved = await follow_up_all(client, urls, routed)

        print("Waiting for the completion metrics", flush=True)
        metrics, complete = await wait_metrics(client, urls, baseline + resolved)

    print()
    print("Persentase penyelesaian tindak lanjut per OPD")
    print(format_report(metrics))
    return conclude(len(unrouted), complete)


def conclude(unrouted: int, metrics_complete: bool) -> int:
    """Exit code: 0 only when every step finished; otherwise say what fell short."""
    problems = []
    if unrouted:
        problems.append(f"{unrouted} complaint(s) were not routed within {ROUTE_TIMEOUT:.0f} s")
    if not metrics_complete:
        problems.append(
            f"analytics had not counted all resolutions within {METRICS_TIMEOUT:.0f} s "
            "(the report above may be behind)"
        )
    for problem in problems:
        print(f"demo incomplete: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(intake_url: str, tracker_url: str, analytics_url: str, secret: str) -> int:
    """Entry point for ``lapor demo``: run the demo against the given service URLs."""
    urls = Urls(
        intake=intake_url.rstrip("/"),
        tracker=tracker_url.rstrip("/"),
        analytics=analytics_url.rstrip("/"),
        secret=secret,
    )
    try:
        return asyncio.run(run(urls))
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
