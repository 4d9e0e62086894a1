"""The reporter's forms on the tracking page in a real browser (headless Chromium, as in
test_citizen.py): once the unit has answered, the page offers reply, rating, confirmation
and reopening, each asking for the secret code in a password field; a wrong code is shown
beside the field; the right one finishes the report, with JavaScript and without it.
axe-core checks every page with JavaScript on; screenshots ``lacak-pelapor-*.png``."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from lapor.devtools.testing import disposed_and_answered, eventually
from lapor.services.settings import Settings

from . import test_citizen as citizen
from .test_citizen import Site, context, fill_report, look

site = citizen.site  # the same fixtures: the services in process, one Chromium
browser = citizen.browser


async def report_and_answer(page: Page, site: Site, settings: Settings) -> tuple[str, str]:
    await page.goto("/lapor")
    await fill_report(page, "Jalan berlubang di Jalan Gajah Mada")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Kirim laporan").click()
    tracking_id = (await page.locator("#tracking-id").inner_text()).strip()
    secret = (await page.locator("#reporter-secret").inner_text()).strip()

    await disposed_and_answered(settings, site.tracker, tracking_id, "Lubang sudah ditambal.")
    return tracking_id, secret


async def confirm(site: Site, settings: Settings, browser: Browser, *, javascript: bool) -> None:
    prefix = "js" if javascript else "nojs"
    async with context(browser, site, javascript=javascript) as ctx:
        page = await ctx.new_page()
        tracking_id, secret = await report_and_answer(page, site, settings)
        await page.goto(f"/lacak/{tracking_id}")
        await expect(page.locator("#respond-title")).to_have_text("Tanggapi jawaban unit")
        field = page.locator("#selesai-secret")
        await expect(field).to_have_attribute("type", "password")
        await look(page, f"{prefix}-lacak-pelapor", axe=javascript)

        await field.fill("SALAH-SALAH-SALAH")
        async with page.expect_navigation() as navigation:
            await page.get_by_role("button", name="Konfirmasi: selesai").click()
        answer = await navigation.value
        assert answer and answer.status == 403
        await expect(page.locator("#selesai-secret-error")).to_contain_text("Kode rahasia salah")
        await expect(page.locator("#selesai-secret")).to_have_attribute("aria-invalid", "true")
        await look(page, f"{prefix}-lacak-pelapor-salah", axe=javascript)

        await page.locator("#selesai-secret").fill(secret)
        async with page.expect_navigation():
            await page.get_by_role("button", name="Konfirmasi: selesai").click()
        assert page.url.endswith(f"/lacak/{tracking_id}?done=selesai")
        assert secret not in page.url
        await expect(page.locator("p.done")).to_have_text("Terima kasih: laporan sudah selesai.")

        async def closed() -> bool:
            r = await site.tracker.get(f"/complaints/{tracking_id}")
            return r.json()["status"] == "closed"

        await eventually(closed)
        await page.goto(f"/lacak/{tracking_id}")
        await expect(page.locator("#selesai-secret")).to_have_count(0)
        await expect(page.locator("#nilai-stars")).to_be_visible()
        await look(page, f"{prefix}-lacak-pelapor-selesai", axe=javascript)


async def test_the_reporter_confirms_in_the_browser(
    site: Site, settings: Settings, browser: Browser
):
    await confirm(site, settings, browser, javascript=True)


async def test_the_reporter_confirms_without_javascript(
    site: Site, settings: Settings, browser: Browser
):
    await confirm(site, settings, browser, javascript=False)
