"""The citizen pages in a real browser: Debian's headless Chromium driven by Playwright,
against intake, router, tracker, analytics and the portal served in process on the suite's
real NATS and PostgreSQL (the portal over real TCP, the others over ASGI as in
portal/tests/integration).

A citizen submits the form and gets the tracking ID and secret, then tracks the report and
sees its timeline, with JavaScript and without it; the dashboard shows the completion
figure; ``?lang=en`` switches the language; a tampered CSRF token is refused. Every page
the browser opens with JavaScript on is checked by axe-core (vendored in ``vendor/``, see
``vendor/README.md``): no ``serious`` or ``critical`` violation. Every page is also
photographed into ``build/screenshots/``.

Chromium is ``/usr/bin/chromium`` (``LAPOR_CHROMIUM`` overrides it); ``make test`` installs
it when it is missing. Playwright never downloads a browser here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from lapor.devtools import sample_files
from lapor.devtools.testing import bearer, eventually, faces
from lapor.services.settings import Settings

HERE = Path(__file__).parent
AXE = (HERE / "vendor" / "axe.min.js").read_text(encoding="utf-8")
AXE_VERSION = "4.14.1"  # vendor/README.md
SCREENSHOTS = HERE.parents[1] / "build" / "screenshots"
CHROMIUM = os.environ.get("LAPOR_CHROMIUM", "/usr/bin/chromium")
# As the machine's probe starts it: no GPU, no QUIC, and none of Chromium's own traffic
# (the network is closed; its background connections would only be refused). Playwright
# adds --headless and --no-sandbox itself and gives each launch a fresh, empty
# --user-data-dir of its own (it refuses one in ``args``).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BLOCKING = {"serious", "critical"}
TRACKING_ID = re.compile(r"[0-9A-Z]{5}-[0-9A-Z]{5}")


@dataclass
class Site:
    url: str
    tracker: httpx.AsyncClient


class _Quiet(uvicorn.Server):
    """uvicorn inside the test's event loop, leaving pytest's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def listening(app) -> AsyncIterator[str]:
    """Serve ``app`` (its lifespan already running) on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Quiet(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[Site]:
    async with faces(settings) as running, listening(running.portal_app) as url:
        yield Site(url, running.tracker)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: `make test` installs chromium"
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield launched
        await launched.close()


@contextlib.asynccontextmanager
async def context(browser: Browser, site: Site, *, javascript: bool = True):
    made: BrowserContext = await browser.new_context(
        base_url=site.url, java_script_enabled=javascript, locale="id-ID"
    )
    made.set_default_timeout(15_000)
    try:
        yield made
    finally:
        await made.close()


async def look(page: Page, name: str, *, axe: bool = True) -> None:
    """Photograph the page; with JavaScript on, run axe-core on it: nothing serious."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    if not axe:
        return
    await page.evaluate(AXE)
    result = await page.evaluate("async () => await axe.run(document)")
    assert result["testEngine"]["version"] == AXE_VERSION
    assert len(result["passes"]) > 10, "axe-core checked next to nothing"
    bad = [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]
    assert not bad, f"{name} ({page.url}): {bad}"


async def fill_report(page: Page, title: str) -> None:
    await page.get_by_label("Judul").fill(title)
    await page.get_by_label("Isi laporan").fill(
        "Jalan di depan Pasar Flamboyan berlubang besar dan membahayakan pengendara."
    )
    await page.locator("#category").select_option("jalan")
    await page.locator("#kecamatan").select_option("Pontianak Kota")
    await page.locator("#kelurahan").fill("Mariana")
    await page.locator("#anonymous").check()


async def submit_and_track(page: Page, site: Site, prefix: str, *, axe: bool) -> str:
    answer = await page.goto("/lapor")
    assert answer and answer.status == 200
    await expect(page.locator("h1")).to_have_text("Tulis laporan")
    await look(page, f"{prefix}-lapor", axe=axe)
    title = f"Jalan berlubang ({prefix})"
    await fill_report(page, title)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Kirim laporan").click()
    await expect(page.locator("h1")).to_have_text("Laporan Anda sudah diterima")
    tracking_id = (await page.locator("#tracking-id").inner_text()).strip()
    secret = (await page.locator("#reporter-secret").inner_text()).strip()
    assert TRACKING_ID.fullmatch(tracking_id), tracking_id
    assert len(secret) >= 16
    await look(page, f"{prefix}-terkirim", axe=axe)

    async def routed() -> bool:
        r = await site.tracker.get(f"/complaints/{tracking_id}")
        return r.status_code == 200 and len(r.json()["history"]) >= 2

    await eventually(routed)
    # The citizen follows the receipt's link to the tracking form's answer.
    await page.goto("/lacak")
    await look(page, f"{prefix}-lacak", axe=axe)
    await page.get_by_label("Nomor pelacakan").fill(tracking_id.lower())
    async with page.expect_navigation():
        await page.get_by_role("button", name="Lacak", exact=True).click()
    assert page.url == f"{site.url}/lacak/{tracking_id}"
    await expect(page.locator("h1")).to_contain_text(tracking_id)
    timeline = page.locator("ol.timeline li")
    await expect(page.locator("#timeline-title")).to_have_text("Riwayat laporan")
    assert await timeline.count() >= 2
    await expect(timeline.first).to_contain_text("Laporan diterima")
    await expect(page.locator("dl.facts")).to_contain_text("Dinas Pekerjaan Umum")
    await look(page, f"{prefix}-lacak-laporan", axe=axe)
    return tracking_id


async def test_a_citizen_reports_and_tracks_in_the_browser(site: Site, browser: Browser):
    async with context(browser, site) as ctx:
        page = await ctx.new_page()
        tracking_id = await submit_and_track(page, site, "js", axe=True)
        await page.goto("/")
        await look(page, "js-beranda")
        await page.goto("/laporan")
        await expect(page.locator("table.reports")).to_contain_text(tracking_id)
        await look(page, "js-laporan")
        await page.goto("/lacak/7K3MQ-9X2AB")  # no such report: the form with its error
        await look(page, "js-lacak-tidak-ada")


async def test_the_same_without_javascript(site: Site, browser: Browser):
    async with context(browser, site, javascript=False) as ctx:
        page = await ctx.new_page()
        tracking_id = await submit_and_track(page, site, "nojs", axe=False)
        complaint = (await site.tracker.get(f"/complaints/{tracking_id}")).json()
        assert complaint["title"] == "Jalan berlubang (nojs)"


async def test_the_form_shows_errors_beside_their_fields(site: Site, browser: Browser):
    async with context(browser, site) as ctx:
        page = await ctx.new_page()
        await page.goto("/lapor")
        await page.get_by_label("Judul").fill("abc")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Kirim laporan").click()
        await expect(page.locator("#title-error")).to_contain_text("paling sedikit 5 karakter")
        await expect(page.locator("#title")).to_have_attribute("aria-invalid", "true")
        await look(page, "js-lapor-galat")


async def test_the_dashboard_shows_the_completion_figure(site: Site, browser: Browser):
    async with context(browser, site) as ctx:
        page = await ctx.new_page()
        answer = await page.goto("/statistik")
        assert answer and answer.status == 200
        await expect(page.locator("#completion")).to_have_text("0 dari 0 laporan selesai, –")
        await page.goto("/lapor")
        await fill_report(page, "Jalan berlubang di depan sekolah")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Kirim laporan").click()
        await expect(page.locator("#tracking-id")).to_have_text(TRACKING_ID)

        async def counted() -> bool:
            await page.goto("/statistik")
            # received first, then per unit once the router has disposed it
            return "Dinas Pekerjaan Umum" in await page.locator("#per-opd").inner_text()

        await eventually(counted, interval=0.25)
        await expect(page.locator("h1")).to_have_text("Tindak lanjut laporan")
        await expect(page.locator("#completion")).to_have_text("0 dari 1 laporan selesai, 0,00%")
        await expect(page.locator("#per-opd")).to_contain_text("Dinas Pekerjaan Umum")
        await look(page, "js-statistik")
        await page.goto("/statistik?lang=en")
        await expect(page.locator("#completion")).to_have_text("0 of 1 reports finished, 0.00%")
        await look(page, "js-statistik-en")


async def test_lang_en_switches_the_language(site: Site, browser: Browser):
    async with context(browser, site) as ctx:
        page = await ctx.new_page()
        await page.goto("/lapor")
        assert await page.locator("html").get_attribute("lang") == "id"
        # The header's link to the other language, as a citizen would click it.
        async with page.expect_navigation():
            await page.get_by_role("link", name="English").click()
        assert page.url.endswith("/lapor?lang=en")
        assert await page.locator("html").get_attribute("lang") == "en"
        await expect(page.locator("h1")).to_have_text("Write a report")
        await look(page, "js-lapor-en")
        # Remembered: the next page without ?lang= is English too.
        await page.goto("/lacak")
        await expect(page.locator("h1")).to_have_text("Track a report")
        await look(page, "js-lacak-en")
        for path, name in (("/", "beranda"), ("/laporan", "laporan")):
            await page.goto(path)
            assert await page.locator("html").get_attribute("lang") == "en"
            await look(page, f"js-{name}-en")
        await page.goto("/?lang=id")
        assert await page.locator("html").get_attribute("lang") == "id"


async def test_a_wrong_csrf_token_is_refused(site: Site, browser: Browser):
    async with context(browser, site) as ctx:
        page = await ctx.new_page()
        await page.goto("/lapor")
        await fill_report(page, "Lampu jalan padam di Jalan Ahmad Yani")
        token = page.locator('input[name="csrf_token"]')
        await token.evaluate("(e) => { e.value = e.value.split('').reverse().join(''); }")
        async with page.expect_navigation() as navigation:
            await page.get_by_role("button", name="Kirim laporan").click()
        answer = await navigation.value
        assert answer and answer.status == 403
        await expect(page.locator("h1")).to_have_text("Formulir tidak dapat diterima")
        await look(page, "js-csrf-ditolak")
        await asyncio.sleep(0.5)
        listed = (await site.tracker.get("/complaints", params={"limit": 200})).json()
        assert listed["items"] == []


async def test_a_photo_attached_without_javascript_reaches_the_complaint(
    site: Site, browser: Browser, settings: Settings, tmp_path: Path
):
    """The file input of a form posted by the browser itself (multipart, no script): the
    coordinator reads the photo on the complaint, without the metadata the phone wrote."""
    photo = tmp_path / "jalan-berlubang.jpg"
    photo.write_bytes(sample_files.phone_photo())
    async with context(browser, site, javascript=False) as ctx:
        page = await ctx.new_page()
        await page.goto("/lapor")
        await fill_report(page, "Jalan berlubang (foto)")
        await page.get_by_label("Foto atau dokumen").set_input_files(str(photo))
        async with page.expect_navigation():
            await page.get_by_role("button", name="Kirim laporan").click()
        await expect(page.locator("h1")).to_have_text("Laporan Anda sudah diterima")
        tracking_id = (await page.locator("#tracking-id").inner_text()).strip()
    admin = bearer(settings, "admin")

    async def attached() -> list | None:
        r = await site.tracker.get(f"/admin/complaints/{tracking_id}", headers=admin)
        return r.json()["attachments"] if r.status_code == 200 else None

    [ref] = await eventually(attached)
    assert (ref["filename"], ref["media_type"]) == ("jalan-berlubang.jpg", "image/jpeg")
    r = await site.tracker.get(
        f"/admin/complaints/{tracking_id}/attachments/{ref['id']}", headers=admin
    )
    assert r.status_code == 200 and b"AcmeCam" not in r.content and b"Exif" not in r.content
