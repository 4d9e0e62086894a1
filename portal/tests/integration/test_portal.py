"""The portal over intake, router, tracker and analytics (in process, real NATS and
PostgreSQL): a report sent without JavaScript is created and confirmed with its ID and
secret; no CSRF token, no complaint; intake's errors beside their fields; the tracking
page's timeline; the language switch; the dashboard's figures; a confidential complaint
never in the public list; every page's language, single h1 and labelled inputs."""

from __future__ import annotations

import contextlib
import re
from html.parser import HTMLParser
from typing import Any

import httpx

from lapor.devtools.testing import bearer, eventually, faces
from lapor.services.settings import Settings

LABELLED = {"input", "select", "textarea"}
NOT_LABELLED = {"hidden", "submit", "button"}
VOID = {"input", "meta", "link", "br", "img", "hr", "col", "source", "wbr"}


class Page(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.h1: list[str] = []
        self.inputs: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.ids: dict[str, str] = {}
        self.landmarks: set[str] = set()
        self.skip_link = False
        self._in_h1 = False
        self._text: dict[str, list[str]] = {}
        self._open: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "h1":
            self._in_h1 = True
            self.h1.append("")
        if tag in LABELLED and a.get("type") not in NOT_LABELLED:
            self.inputs.append(a)
        if tag == "label" and a.get("for"):
            self.label_for.add(str(a["for"]))
        if tag in {"header", "main", "nav", "footer"}:
            self.landmarks.add(tag)
        if tag == "a" and a.get("href") == "#isi" and "skip" in (a.get("class") or ""):
            self.skip_link = True
        if a.get("id"):
            self.ids[str(a["id"])] = tag
        if tag in VOID:
            return
        self._open.append(str(a.get("id") or ""))
        if a.get("id"):
            self._text[str(a["id"])] = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1":
            self._in_h1 = False
        if self._open and tag not in VOID:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._in_h1:
            self.h1[-1] += data
        for element in self._open:
            if element:
                self._text[element].append(data)

    def text(self, element_id: str) -> str:
        return " ".join("".join(self._text.get(element_id, [])).split())

    def unlabelled(self) -> list[dict]:
        return [i for i in self.inputs if i.get("id") not in self.label_for]


def check_page(html: str) -> Page:
    page = Page(html)
    assert page.lang in {"id", "en"}, page.lang
    assert len(page.h1) == 1, page.h1
    assert not page.unlabelled(), page.unlabelled()
    assert {"header", "main", "nav", "footer"} <= page.landmarks
    assert page.skip_link and page.ids.get("isi") == "main"
    return page


@contextlib.asynccontextmanager
async def system(settings: Settings):
    async with faces(settings) as running:
        yield running.intake, running.tracker, running.portal


GOOD = {
    "report_type": "pengaduan",
    "title": "Jalan berlubang di Jalan Gajah Mada",
    "body": "Jalan di depan Pasar Flamboyan berlubang besar dan membahayakan pengendara.",
    "category": "jalan",
    "incident_date": "2026-03-02",
    "kecamatan": "Pontianak Kota",
    "kelurahan": "Mariana",
    "address": "",
    "anonymous": "on",
    "name": "",
    "phone": "",
    "email": "",
}


async def form_token(portal: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    page = await portal.get("/lapor")
    assert page.status_code == 200
    check_page(page.text)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    key = re.search(r'name="key" value="([^"]+)"', page.text)
    assert token and key
    return {"csrf_token": token.group(1), "key": key.group(1)}, page.text


async def submit(portal: httpx.AsyncClient, **fields: str) -> httpx.Response:
    hidden, _ = await form_token(portal)
    return await portal.post("/lapor", data={**GOOD, **hidden, **fields})


async def listed(tracker: httpx.AsyncClient) -> list[dict[str, Any]]:
    return (await tracker.get("/complaints", params={"limit": 200})).json()["items"]


async def test_a_report_sent_without_javascript_is_created_and_confirmed(settings):
    async with system(settings) as (_, tracker, portal):
        answer = await submit(portal)
        assert answer.status_code == 200, answer.text
        page = check_page(answer.text)
        tracking_id = page.text("tracking-id")
        secret = page.text("reporter-secret")
        assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", tracking_id)
        assert len(secret) >= 16
        assert "Simpan ini" in answer.text and "save this" in answer.text
        assert answer.headers["cache-control"] == "no-store"

        async def tracked() -> dict | None:
            r = await tracker.get(f"/complaints/{tracking_id}")
            return r.json() if r.status_code == 200 else None

        complaint = await eventually(tracked)
        assert complaint["title"] == GOOD["title"]

        # Sent again (a reload): the same complaint, not a second one.
        assert len([c for c in await listed(tracker) if c["title"] == GOOD["title"]]) == 1


async def test_a_post_without_the_csrf_token_is_refused_and_creates_nothing(settings):
    async with system(settings) as (_, tracker, portal):
        await portal.get("/lapor")  # the cookie is set, the field is missing
        answer = await portal.post("/lapor", data=GOOD)
        assert answer.status_code == 403
        check_page(answer.text)
        forged = await portal.post("/lapor", data={**GOOD, "csrf_token": "abc.def"})
        assert forged.status_code == 403
        portal.cookies.clear()
        hidden, _ = await form_token(portal)
        portal.cookies.clear()  # a token without its cookie (another site's post)
        answer = await portal.post("/lapor", data={**GOOD, **hidden})
        assert answer.status_code == 403
        assert await listed(tracker) == []


async def test_an_error_is_shown_next_to_its_field_in_indonesian(settings):
    async with system(settings) as (_, tracker, portal):
        answer = await submit(portal, title="abc", email="not-an-email")
        assert answer.status_code == 422
        page = check_page(answer.text)
        assert "paling sedikit 5 karakter" in page.text("title-error")
        assert "Alamat email tidak valid" in page.text("email-error")
        # beside its field: the error comes right before the input, which points to it
        title = next(i for i in page.inputs if i.get("id") == "title")
        assert "title-error" in (title.get("aria-describedby") or "")
        assert title.get("aria-invalid") == "true"
        assert answer.text.index('id="title-error"') < answer.text.index('id="title"')
        assert 'value="abc"' in answer.text  # what was typed is kept
        assert await listed(tracker) == []


async def test_the_tracking_page_shows_the_timeline(settings):
    async with system(settings) as (_, tracker, portal):
        page = check_page((await submit(portal)).text)
        tracking_id = page.text("tracking-id")

        async def routed() -> bool:
            r = await tracker.get(f"/complaints/{tracking_id}")
            return r.status_code == 200 and len(r.json()["history"]) >= 2

        await eventually(routed)
        found = await portal.get("/lacak", params={"id": tracking_id.lower()})
        assert found.status_code == 303
        assert found.headers["location"] == f"/lacak/{tracking_id}"
        answer = await portal.get(f"/lacak/{tracking_id}")
        assert answer.status_code == 200
        page = check_page(answer.text)
        assert tracking_id in page.h1[0]
        timeline = page.text("timeline-title")
        assert timeline == "Riwayat laporan"
        assert "Laporan diterima" in answer.text
        assert "Dinas Pekerjaan Umum" in answer.text  # the unit handling it
        assert "Batas waktu tahap berikutnya" in answer.text

        check_page((await portal.get("/lacak")).text)
        unknown = await portal.get("/lacak/7K3MQ-9X2AB")
        assert unknown.status_code == 404
        check_page(unknown.text)


async def test_lang_en_switches_the_language_and_is_remembered(settings):
    async with system(settings) as (_, _, portal):
        indonesian = check_page((await portal.get("/lapor")).text)
        assert indonesian.lang == "id" and indonesian.h1 == ["Tulis laporan"]
        english = await portal.get("/lapor", params={"lang": "en"})
        page = check_page(english.text)
        assert page.lang == "en" and page.h1 == ["Write a report"]
        assert english.cookies.get("lang") == "en"
        again = check_page((await portal.get("/")).text)
        assert again.lang == "en"
        back = check_page((await portal.get("/", params={"lang": "id"})).text)
        assert back.lang == "id"


async def test_the_dashboard_shows_the_completion_figures(settings):
    # The coordinator decides every disposition: were the router quicker with a confident
    # proposal of another unit, the figures per unit would depend on who came first.
    settings = settings.model_copy(update={"auto_dispose_confidence": 1.01})
    async with system(settings) as (_, tracker, portal):
        ids = []
        for n in range(2):
            sent = await submit(portal, title=f"Sampah menumpuk nomor {n}", category="sampah")
            ids.append(check_page(sent.text).text("tracking-id"))
        for tracking_id in ids:

            async def disposed(tracking_id: str = tracking_id) -> bool:
                r = await tracker.post(
                    f"/complaints/{tracking_id}/disposition",
                    json={"opd": "dlh"},
                    headers=bearer(settings, "admin"),
                )
                return r.status_code == 202

            await eventually(disposed)

        async def counted() -> bool:
            r = await portal.get("/statistik")
            return "Dinas Lingkungan Hidup200,00%" in Page(r.text).text("per-opd")

        await eventually(counted, within=45)  # analytics' projection, on a busy machine
        answer = await portal.get("/statistik")
        page = check_page(answer.text)
        assert page.text("completion") == "0 dari 2 laporan selesai, 0,00%"
        assert "<svg" in answer.text and 'role="img"' in answer.text
        assert "Dinas Lingkungan Hidup200,00%" in page.text("per-opd")  # cells joined
        # On time: no follow-up is due yet; both reports were disposed, the median shown.
        assert page.text("within-deadline") == "Belum ada batas waktu tindak lanjut yang tiba."
        assert re.search(
            r"Diterima sampai didisposisikan</th><td>2</td><td>\d+ hari kerja", answer.text
        )
        english = await portal.get("/statistik", params={"lang": "en"})
        assert "0 of 2 reports finished, 0.00%" in english.text


async def test_a_confidential_complaint_never_appears_in_the_public_list(settings):
    async with system(settings) as (_, tracker, portal):
        public = check_page((await submit(portal, title="Lampu jalan padam")).text)
        secret = check_page(
            (await submit(portal, title="Pungli di kantor kelurahan", confidential="on")).text
        )

        async def both_tracked() -> bool:
            ids = [public.text("tracking-id"), secret.text("tracking-id")]
            codes = [(await tracker.get(f"/complaints/{i}")).status_code for i in ids]
            return codes == [200, 200]

        await eventually(both_tracked)
        answer = await portal.get("/laporan")
        page = check_page(answer.text)
        assert public.text("tracking-id") in answer.text
        assert secret.text("tracking-id") not in answer.text
        assert "Pungli" not in answer.text
        filtered = await portal.get("/laporan", params={"status": "received"})
        check_page(filtered.text)
        assert secret.text("tracking-id") not in filtered.text
        assert page.h1 == ["Daftar laporan publik"]


async def test_every_page_has_its_language_one_h1_and_labelled_inputs(settings):
    async with system(settings) as (_, _, portal):
        for path in ("/", "/lapor", "/lacak", "/statistik", "/laporan"):
            for lang in ("id", "en"):
                answer = await portal.get(path, params={"lang": lang})
                assert answer.status_code == 200, path
                assert check_page(answer.text).lang == lang
        css = await portal.get("/static/portal.css")
        assert css.status_code == 200 and "@media print" in css.text


async def test_the_public_pages_show_a_reports_text_and_place_never_a_confidential_ones(
    settings,
):
    """LAPOR! publishes the text of a report that is not confidential: its tracking page
    shows the text, the category's name and the place, and the public list an excerpt;
    a confidential (Rahasia) report's page shows none of it, whoever submitted it."""
    async with system(settings) as (intake, tracker, portal):
        place = {"address": "Jl. Tanjungpura 17", "kelurahan": "Mariana"}
        public = check_page((await submit(portal, **place)).text).text("tracking-id")
        secret_body = "Petugas meminta uang pelicin untuk mempercepat surat pindah domisili."
        secret = check_page(
            (
                await submit(
                    portal,
                    title="Pungli surat pindah",
                    body=secret_body,
                    category="pindah_domisili",
                    confidential="on",
                    **place,
                )
            ).text
        ).text("tracking-id")
        pinned = {
            "title": "Lampu jalan padam",
            "body": "Lampu penerangan jalan umum padam sejak seminggu, gelap sekali.",
            "category": "penerangan_jalan_umum",
            "location": {"lat": -0.0263, "lon": 109.3425},
        }
        r = await intake.post("/complaints", json=pinned)
        assert r.status_code == 202, r.text
        point = r.json()["tracking_id"]

        async def tracked() -> bool:
            ids = (public, secret, point)
            codes = [(await tracker.get(f"/complaints/{i}")).status_code for i in ids]
            return codes == [200, 200, 200]

        await eventually(tracked)

        page = await portal.get(f"/lacak/{public}")
        check_page(page.text)
        assert GOOD["body"] in page.text
        assert "Jl. Tanjungpura 17, Kelurahan Mariana, Kecamatan Pontianak Kota" in page.text
        assert "Isi laporan" in page.text and ">Jalan<" in page.text  # the category's name
        english = await portal.get(f"/lacak/{public}", params={"lang": "en"})
        assert ">Roads<" in english.text and "What was reported" in english.text

        page = await portal.get(f"/lacak/{point}", params={"lang": "id"})  # the cookie says en
        assert "openstreetmap.org/?mlat=-0.0263&amp;mlon=109.3425" in page.text
        assert "-0.02630, 109.34250" in page.text
        assert "Penerangan jalan umum (PJU)" in page.text

        hidden = await portal.get(f"/lacak/{secret}")
        assert hidden.status_code == 200
        check_page(hidden.text)
        assert "Rahasia: isi laporan tidak ditampilkan kepada publik." in hidden.text
        for leak in (secret_body, "Pungli", "Tanjungpura", "Mariana", "Pindah domisili"):
            assert leak not in hidden.text, leak

        listing = await portal.get("/laporan")
        check_page(listing.text)
        assert secret not in listing.text and "Tanjungpura" not in listing.text
        assert GOOD["body"][:60] in listing.text and "Mariana, Pontianak Kota" in listing.text
        assert ">Jalan<" in listing.text and "Penerangan jalan umum (PJU)" in listing.text
        # Filtered by category (the tracker's filter), in English names with ?lang=en.
        roads = await portal.get("/laporan", params={"category": "jalan", "lang": "en"})
        check_page(roads.text)
        assert public in roads.text and point not in roads.text and secret not in roads.text
        assert ">Roads<" in roads.text and ">Street lighting<" in roads.text  # option
        form = await portal.get("/lapor", params={"lang": "en"})
        assert '<option value="jalan">Roads</option>' in form.text
        form = await portal.get("/lapor", params={"lang": "id"})
        assert '<option value="jalan">Jalan</option>' in form.text
