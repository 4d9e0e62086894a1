"""The staff pages in a real browser (Debian's headless Chromium through Playwright, as
``test_citizen``): the coordinator signs in, finds the citizen's report in the
verification queue with the router's proposal and disposes it; the unit's officer signs
in, finds it in the inbox, follows up and answers; the citizen rates the answer and
confirms, and the dashboard counts the report finished; a wrong password is refused;
signing out ends the session. axe-core checks every page (nothing serious or critical) and each is
photographed into ``build/screenshots/`` (``staf-*.png``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from lapor.devtools.testing import ROAD, eventually, faces
from lapor.portal.staff import accounts as acc
from lapor.portal.staff.stores import Accounts
from lapor.services.settings import Settings

from .test_citizen import Site, browser, context, listening, look  # noqa: F401 (fixture)

PASSWORD = "kata-sandi-yang-panjang"
REPORTER = "Siti Rahmawati"


@pytest.fixture
async def staff_site(settings: Settings) -> AsyncIterator[tuple[Site, httpx.AsyncClient]]:
    """The system with the coordinator deciding every disposition (nothing automatic),
    an account for the coordinator and one for public works' officer."""
    manual = settings.model_copy(update={"auto_dispose_confidence": 1.01})
    async with faces(manual) as running:
        accounts = await Accounts.open(running.portal_app.state.runtime.js, manual.subjects)
        units = {"dpupr", "dlh"}
        await accounts.add(acc.new_account("rina", "coordinator", PASSWORD, name="Rina"))
        await accounts.add(acc.new_account("budi", "officer", PASSWORD, opd="dpupr", units=units))
        async with listening(running.portal_app) as url:
            yield Site(url, running.tracker), running.intake


async def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    await page.goto("/masuk")
    await page.get_by_label("Nama pengguna").fill(username)
    await page.get_by_label("Kata sandi").fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Masuk", exact=True).click()


async def status_is(site: Site, tracking_id: str, status: str) -> bool:
    answer = await site.tracker.get(f"/complaints/{tracking_id}")
    return answer.status_code == 200 and answer.json()["status"] == status


async def test_the_coordinator_disposes_and_the_officer_follows_up_and_answers(
    browser: Browser,  # noqa: F811
    staff_site,
):
    site, intake = staff_site
    answer = await intake.post(
        "/complaints", json={**ROAD, "anonymous": False, "reporter": {"name": REPORTER}}
    )
    tracking_id, secret = answer.json()["tracking_id"], answer.json()["reporter_secret"]
    await eventually(lambda: _proposed(site, tracking_id))  # the router's proposal is in the queue

    async with context(browser, site) as made:
        page = await made.new_page()
        await sign_in(page, "rina", "salah-kata-sandinya")
        await expect(page.locator("[role=alert]")).to_contain_text(
            "Nama pengguna atau kata sandi salah"
        )
        await look(page, "staf-masuk-salah")
        await sign_in(page, "rina")
        await expect(page.locator("h1")).to_have_text("Antrean verifikasi")
        await look(page, "staf-antrean")
        await page.goto("/koordinator?lang=en")
        await expect(page.locator("h1")).to_have_text("Verification queue")
        await look(page, "staf-antrean-en")
        await page.goto("/koordinator?lang=id")
        await page.get_by_role("link", name=tracking_id).click()
        await expect(page.locator("h1")).to_contain_text(tracking_id)
        await expect(page.locator("#proposal-title")).to_have_text("Usulan sistem")
        await expect(page.locator("main")).to_contain_text(ROAD["body"])
        assert REPORTER not in await page.content()
        await look(page, "staf-koordinator-laporan")
        await page.locator("#opd").select_option("dpupr")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Verifikasi dan disposisi").click()
        await expect(page.locator("[role=status]")).to_be_visible()
        await eventually(lambda: status_is(site, tracking_id, "disposed"))
        await page.goto("/koordinator/tenggat")
        await expect(page.locator("h1")).to_have_text("Tenggat")
        await look(page, "staf-tenggat")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Keluar").click()
        await expect(page.locator("[role=status]")).to_have_text("Anda sudah keluar.")
        await page.goto("/koordinator")
        assert "/masuk" in page.url  # the session is over

    async with context(browser, site) as made:
        page = await made.new_page()
        await sign_in(page, "budi")
        await expect(page.locator("h1")).to_have_text("Kotak masuk")
        await expect(page.locator("table.reports")).to_contain_text(tracking_id)
        await look(page, "staf-kotak-masuk")
        await page.goto("/unit?lang=en")  # the English switch covers the staff's pages
        await expect(page.locator("h1")).to_have_text("Inbox")
        await expect(page.locator("table.reports")).to_contain_text("Disposed, not yet followed up")
        await look(page, "staf-kotak-masuk-en")
        await page.goto("/unit?lang=id")
        await page.get_by_role("link", name=tracking_id).click()
        await expect(page.locator("main")).to_contain_text(ROAD["body"])
        await look(page, "staf-unit-laporan")
        await page.locator("#message").fill("Tim sudah meninjau lokasi dan menjadwalkan perbaikan.")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Kirim tindak lanjut").click()
        await eventually(lambda: status_is(site, tracking_id, "in_progress"))
        await page.reload()
        await page.locator("#resolution").fill("Lubang sudah ditambal pada hari Senin.")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Kirim jawaban").click()
        await eventually(lambda: status_is(site, tracking_id, "answered"))
        await page.reload()
        await expect(page.locator("ol.timeline")).to_contain_text("Lubang sudah ditambal")
        await look(page, "staf-unit-dijawab")

    # The citizen rates the answer and confirms; the dashboard counts it finished.
    async with context(browser, site) as made:
        page = await made.new_page()
        await page.goto(f"/lacak/{tracking_id}")
        await page.locator("#nilai-stars-5").check()
        await page.locator("#nilai-secret").fill(secret)
        async with page.expect_navigation():
            await page.locator("form[action$='/nilai'] button[type=submit]").click()
        await eventually(lambda: _has(site, tracking_id, "complaint.rated"))
        await page.goto(f"/lacak/{tracking_id}")
        await page.locator("#selesai-secret").fill(secret)
        async with page.expect_navigation():
            await page.get_by_role("button", name="Konfirmasi: selesai").click()
        await eventually(lambda: status_is(site, tracking_id, "closed"))

        async def counted() -> bool:
            await page.goto("/statistik")
            return await page.locator("#completion").inner_text() == (
                "1 dari 1 laporan selesai, 100,00%"
            )

        await eventually(counted, within=45)
        await look(page, "staf-statistik-selesai")


async def _proposed(site: Site, tracking_id: str) -> bool:
    answer = await site.tracker.get(f"/complaints/{tracking_id}")
    return answer.status_code == 200 and len(answer.json()["history"]) >= 2


async def _has(site: Site, tracking_id: str, event: str) -> bool:
    answer = await site.tracker.get(f"/complaints/{tracking_id}")
    return any(h["event"] == event for h in answer.json()["history"])
