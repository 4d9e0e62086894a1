"""The reporter on the tracking page (in process, real NATS and PostgreSQL), with the secret
code they got when they sent the report: the forms the status allows, each with the secret
in a password field; a wrong secret or a post without the CSRF token is refused and changes
nothing; a reply, a rating, a confirmation (finished) and a reopening (back to the unit)
reach the tracker; the tracker's refusals beside the fields or above the forms."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from lapor.devtools.testing import disposed_and_answered, eventually
from lapor.services.settings import Settings

from .test_portal import check_page, submit, system


@pytest.fixture
def manual(settings: Settings) -> Settings:
    """Nothing is disposed by the router alone: the test disposes it."""
    return settings.model_copy(update={"auto_dispose_confidence": 1.01})


async def status_of(tracker: httpx.AsyncClient, tracking_id: str) -> dict[str, Any] | None:
    r = await tracker.get(f"/complaints/{tracking_id}")
    return r.json() if r.status_code == 200 else None


async def answered(
    settings: Settings, tracker: httpx.AsyncClient, portal: httpx.AsyncClient
) -> tuple[str, str]:
    """A report sent through the portal, disposed to public works and answered: its
    tracking ID and the reporter's secret as the confirmation page showed them."""
    sent = check_page((await submit(portal)).text)
    tracking_id, secret = sent.text("tracking-id"), sent.text("reporter-secret")
    await eventually(lambda: status_of(tracker, tracking_id))

    resolution = "Lubang sudah ditambal oleh tim pemeliharaan jalan."
    await disposed_and_answered(settings, tracker, tracking_id, resolution)
    return tracking_id, secret


def forms_of(html: str) -> list[str]:
    return re.findall(r'<form method="post" action="/lacak/[^/"]+/([a-z-]+)"', html)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def events(tracker: httpx.AsyncClient, tracking_id: str) -> list[str]:
    now = await status_of(tracker, tracking_id)
    assert now
    return [entry["event"] for entry in now["history"]]


async def test_a_wrong_secret_or_no_csrf_token_changes_nothing_the_right_one_finishes_it(
    manual: Settings,
):
    async with system(manual) as (_, tracker, portal):
        tracking_id, secret = await answered(manual, tracker, portal)
        page_url = f"/lacak/{tracking_id}"
        answer = await portal.get(page_url)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
        page = check_page(answer.text)
        assert forms_of(answer.text) == ["balas", "nilai", "selesai", "buka-kembali"]
        assert page.text("respond-title") == "Tanggapi jawaban unit"
        for slug in ("balas", "nilai", "selesai", "buka-kembali"):
            field = next(i for i in page.inputs if i.get("id") == f"{slug}-secret")
            assert field["type"] == "password" and field["autocomplete"] == "off"
            assert field["name"] == "secret" and "value" not in field
        assert page.ids["nilai-stars"] == "fieldset"
        assert secret not in answer.text
        assert "Kode rahasia" in answer.text
        token = csrf_of(answer.text)
        before = await events(tracker, tracking_id)

        # A wrong secret: 403, the error beside the secret field, nothing changed.
        wrong = await portal.post(
            f"{page_url}/selesai", data={"csrf_token": token, "secret": "SALAH-SALAH-SALAH"}
        )
        assert wrong.status_code == 403
        page = check_page(wrong.text)
        assert "Kode rahasia salah" in page.text("selesai-secret-error")
        field = next(i for i in page.inputs if i.get("id") == "selesai-secret")
        assert "selesai-secret-error" in (field.get("aria-describedby") or "")
        assert field.get("aria-invalid") == "true"
        assert "SALAH-SALAH-SALAH" not in wrong.text
        # No secret at all: asked for, the tracker not called.
        empty = await portal.post(f"{page_url}/balas", data={"csrf_token": token, "message": "Hi"})
        assert empty.status_code == 422
        assert "Masukkan kode rahasia" in check_page(empty.text).text("balas-secret-error")
        assert ">Hi</textarea>" in empty.text  # what was typed is kept, the secret never
        opened = await portal.get(f"{page_url}/balas")  # the form's address, opened
        assert opened.status_code == 303 and opened.headers["location"] == page_url

        # Without the CSRF token (or with its field but not its cookie): 403, nothing changed.
        missing = await portal.post(f"{page_url}/selesai", data={"secret": secret})
        assert missing.status_code == 403
        check_page(missing.text)
        assert f'href="{page_url}"' in missing.text
        cookies = dict(portal.cookies)
        portal.cookies.clear()
        foreign = await portal.post(
            f"{page_url}/selesai", data={"csrf_token": token, "secret": secret}
        )
        assert foreign.status_code == 403
        portal.cookies.update(cookies)
        assert await events(tracker, tracking_id) == before
        assert (await status_of(tracker, tracking_id) or {})["status"] == "answered"

        # The right secret (as typed: lower case, spaces around): finished.
        done = await portal.post(
            f"{page_url}/selesai", data={"csrf_token": token, "secret": f" {secret.lower()} "}
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"{page_url}?done=selesai"

        async def closed() -> bool:
            now = await status_of(tracker, tracking_id)
            return bool(now) and now["status"] == "closed"

        await eventually(closed)
        after = await portal.get(done.headers["location"])
        page = check_page(after.text)
        assert "Terima kasih: laporan sudah selesai." in after.text
        assert forms_of(after.text) == ["nilai", "buka-kembali"]  # no reply, no confirm now

        # A form the status no longer allows (an old page): 409, said above the forms.
        late = await portal.post(
            f"{page_url}/balas", data={"csrf_token": token, "secret": secret, "message": "Oh"}
        )
        assert late.status_code == 409
        assert "tidak dapat dilakukan sekarang" in check_page(late.text).text("problem-title")

        # Rated: no star chosen is an error beside the stars; then 4 stars and a comment.
        no_star = await portal.post(
            f"{page_url}/nilai", data={"csrf_token": token, "secret": secret, "comment": "Cepat"}
        )
        assert no_star.status_code == 422
        page = check_page(no_star.text)
        assert "Pilih 1 sampai 5 bintang" in page.text("nilai-stars-error")
        assert ">Cepat</textarea>" in no_star.text
        rated = await portal.post(
            f"{page_url}/nilai",
            data={"csrf_token": token, "secret": secret, "stars": "4", "comment": "Cepat"},
        )
        assert rated.status_code == 303
        assert rated.headers["location"] == f"{page_url}?done=nilai"

        async def has_rating() -> bool:
            return "complaint.rated" in await events(tracker, tracking_id)

        await eventually(has_rating)
        shown = await portal.get(rated.headers["location"])
        assert "penilaian Anda sudah dicatat" in check_page(shown.text).text("isi")


async def test_the_reporter_replies_and_reopens_back_to_the_unit(manual: Settings):
    async with system(manual) as (_, tracker, portal):
        tracking_id, secret = await answered(manual, tracker, portal)
        page_url = f"/lacak/{tracking_id}"
        answer = await portal.get(page_url, params={"lang": "en"})
        page = check_page(answer.text)
        assert page.lang == "en"
        assert "Secret code" in answer.text and "Respond to the unit's answer" in answer.text
        token = csrf_of(answer.text)

        replied = await portal.post(
            f"{page_url}/balas",
            data={"csrf_token": token, "secret": secret, "message": "Masih ada satu lubang."},
        )
        assert replied.status_code == 303
        assert replied.headers["location"] == f"{page_url}?done=balas"

        async def has_reply() -> bool:
            return "complaint.reporter_replied" in await events(tracker, tracking_id)

        await eventually(has_reply)
        shown = await portal.get(replied.headers["location"])
        assert "Your reply was sent to the unit." in shown.text

        # Reopening needs a reason: the error beside it (in English, the chosen language).
        no_reason = await portal.post(
            f"{page_url}/buka-kembali", data={"csrf_token": token, "secret": secret, "reason": ""}
        )
        assert no_reason.status_code == 422
        page = check_page(no_reason.text)
        assert page.text("buka-kembali-reason-error") == "Error: Write something here."
        field = next(i for i in page.inputs if i.get("id") == "buka-kembali-reason")
        assert "buka-kembali-reason-error" in (field.get("aria-describedby") or "")
        assert 'href="#buka-kembali-reason"' in no_reason.text  # the summary links to it
        assert "complaint.reopened" not in await events(tracker, tracking_id)

        reopened = await portal.post(
            f"{page_url}/buka-kembali",
            data={"csrf_token": token, "secret": secret, "reason": "Lubang belum ditambal."},
        )
        assert reopened.status_code == 303

        async def back_to_the_unit() -> dict | None:
            now = await status_of(tracker, tracking_id)
            return now if now and now["status"] == "in_progress" else None

        now = await back_to_the_unit() or await eventually(back_to_the_unit)
        assert now["opd"] == "dpupr"
        assert now["history"][-1]["event"] == "complaint.reopened"
        after = await portal.get(reopened.headers["location"])
        check_page(after.text)
        assert forms_of(after.text) == []  # in the unit's hands again: nothing to answer
        assert "reopened and sent back to the unit" in after.text
