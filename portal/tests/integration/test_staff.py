"""The staff's pages over intake, router, tracker and analytics (in process, real NATS
and PostgreSQL): accounts made with ``lapor accounts``; the coordinator verifies and
disposes from the queue; the unit's officer finds it in the inbox, follows up and answers;
another unit sees nothing of it; wrong passwords lock an account and every attempt is
recorded; forms without the session's token change nothing; signing out ends the
session; the cookie's flags."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from lapor.devtools.testing import ROAD, bearer, eventually, faces
from lapor.portal.staff import accounts as acc
from lapor.portal.staff.stores import Accounts, SignIns
from lapor.services.cli import main
from lapor.services.settings import Settings

from .test_portal import check_page

PASSWORD = "kata-sandi-yang-panjang"
REPORTER = "Siti Rahmawati"


@pytest.fixture
def manual(settings: Settings) -> Settings:
    """Nothing is disposed by the router alone: the coordinator decides."""
    return settings.model_copy(update={"auto_dispose_confidence": 1.01})


@contextlib.asynccontextmanager
async def system(settings: Settings):
    async with faces(settings) as running:
        yield running.intake, running.tracker, running.portal_app


def browser(app) -> httpx.AsyncClient:
    """A client of the portal as a browser on this machine sees it (a loopback address:
    the cookies are not Secure-only there)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


async def accounts_command(settings: Settings, *words: str) -> int:
    """``lapor accounts ...`` against this test's NATS and subject root (in a thread: the
    command runs its own event loop)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NATS_URL", settings.nats_url or "")
        mp.setenv("LAPOR_SUBJECT_ROOT", settings.subject_root)
        return await asyncio.to_thread(main, ["accounts", *words])


async def add_account(settings: Settings, tmp_path: Path, username: str, *options: str) -> None:
    secret = tmp_path / f"{username}.password"
    secret.write_text(PASSWORD + "\n")
    words = ("add", username, *options, "--password-file", str(secret))
    assert await accounts_command(settings, *words) == 0


def token_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, username: str, password: str = PASSWORD):
    form = await client.get("/masuk")
    assert form.status_code == 200
    check_page(form.text)
    return await client.post(
        "/masuk",
        data={"username": username, "password": password, "csrf_token": token_in(form.text)},
    )


async def submit(intake: httpx.AsyncClient, **extra) -> str:
    body = {**ROAD, "anonymous": False, "reporter": {"name": REPORTER}, **extra}
    answer = await intake.post("/complaints", json=body)
    assert answer.status_code == 202, answer.text
    return answer.json()["tracking_id"]


async def status_of(tracker: httpx.AsyncClient, tracking_id: str) -> dict:
    return (await tracker.get(f"/complaints/{tracking_id}")).json()


async def test_the_coordinator_disposes_and_the_units_officer_follows_up_and_answers(
    manual, tmp_path
):
    await add_account(manual, tmp_path, "koordinator", "--role", "coordinator", "--name", "Rina")
    await add_account(manual, tmp_path, "budi", "--role", "officer", "--opd", "dpupr")
    await add_account(manual, tmp_path, "dewi", "--role", "officer", "--opd", "dlh")
    async with system(manual) as (intake, tracker, app):
        tracking_id = await submit(intake)

        async def proposed() -> bool:
            answer = await tracker.get("/admin/complaints", headers=bearer(manual, "admin"))
            return any(i["proposed_opd"] for i in answer.json()["items"])

        await eventually(proposed)
        async with browser(app) as coordinator:
            signed = await sign_in(coordinator, "koordinator")
            assert signed.status_code == 303 and signed.headers["location"] == "/koordinator"
            queue = await coordinator.get("/koordinator")
            assert queue.status_code == 200
            check_page(queue.text)
            assert tracking_id in queue.text and ROAD["title"] in queue.text
            page = await coordinator.get(f"/koordinator/laporan/{tracking_id}")
            assert page.status_code == 200
            check_page(page.text)
            assert ROAD["body"] in page.text  # the content, for the coordinator
            assert "Usulan sistem" in page.text or "proposal" in page.text.lower()
            assert REPORTER not in page.text
            done = await coordinator.post(
                f"/koordinator/laporan/{tracking_id}/disposisi",
                data={"opd": "dpupr", "csrf_token": token_in(page.text)},
            )
            assert done.status_code == 303, done.text
            assert done.headers["location"] == f"/koordinator/laporan/{tracking_id}?done=disposisi"
        disposed = await eventually(lambda: _in(tracker, tracking_id, "disposed"))
        assert disposed["opd"] == "dpupr"

        async with browser(app) as officer:
            assert (await sign_in(officer, "budi")).headers["location"] == "/unit"
            inbox = await officer.get("/unit")
            check_page(inbox.text)
            assert tracking_id in inbox.text
            page = await officer.get(f"/unit/laporan/{tracking_id}")
            check_page(page.text)
            assert ROAD["body"] in page.text and REPORTER not in page.text
            followed = await officer.post(
                f"/unit/laporan/{tracking_id}/tindak-lanjut",
                data={"message": "Tim sudah meninjau lokasi.", "csrf_token": token_in(page.text)},
            )
            assert followed.status_code == 303
            await eventually(lambda: _in(tracker, tracking_id, "in_progress"))
            page = await officer.get(followed.headers["location"])
            assert "Tim sudah meninjau lokasi." in page.text
            answered = await officer.post(
                f"/unit/laporan/{tracking_id}/jawaban",
                data={"resolution": "Lubang sudah ditambal.", "csrf_token": token_in(page.text)},
            )
            assert answered.status_code == 303
        after = await eventually(lambda: _in(tracker, tracking_id, "answered"))
        assert [h["event"] for h in after["history"]][-2:] == [
            "complaint.followed_up",
            "complaint.resolved",
        ]

        async with browser(app) as other:
            await sign_in(other, "dewi")
            assert tracking_id not in (await other.get("/unit")).text
            assert (await other.get(f"/unit/laporan/{tracking_id}")).status_code == 404
            # The other unit's officer may not act on it either: the tracker refuses.
            page = await other.get("/unit")
            refused = await other.post(
                f"/unit/laporan/{tracking_id}/tindak-lanjut",
                data={"message": "Bukan kami.", "csrf_token": token_in(page.text)},
            )
            assert refused.status_code == 404
            # and a coordinator's page sends an officer to the inbox
            elsewhere = await other.get("/koordinator")
            assert elsewhere.status_code == 303 and elsewhere.headers["location"] == "/unit"
        assert (await status_of(tracker, tracking_id))["history"] == after["history"]


async def test_wrong_passwords_lock_the_account_and_every_attempt_is_recorded(manual, tmp_path):
    await add_account(manual, tmp_path, "budi", "--role", "officer", "--opd", "dpupr")
    async with system(manual) as (_, _tracker, app), browser(app) as client:
        unknown = await sign_in(client, "tidakada", "apa-saja-yang-panjang")
        wrong = await sign_in(client, "budi", "salah-kata-sandinya")
        assert unknown.status_code == wrong.status_code == 401
        # the same words, so the page does not tell which names exist
        assert "Nama pengguna atau kata sandi salah" in unknown.text
        assert "Nama pengguna atau kata sandi salah" in wrong.text
        for _ in range(acc.MAX_FAILURES - 1):
            await sign_in(client, "budi", "salah-kata-sandinya")
        locked = await sign_in(client, "budi")  # the right password, too late
        assert locked.status_code == 401 and "terkunci" in locked.text
        assert "lapor_staff" not in client.cookies

        runtime = app.state.runtime
        record = await SignIns(runtime.js, manual.subjects).recent()
        outcomes = [r["outcome"] for r in record]
        assert outcomes == ["unknown_user", *["wrong_password"] * acc.MAX_FAILURES, "locked"]
        assert all(r["username"] in ("tidakada", "budi") and r["address"] for r in record)
        assert all(PASSWORD not in str(r) for r in record)

        assert await accounts_command(manual, "unlock", "budi") == 0
        assert (await sign_in(client, "budi")).status_code == 303
        accounts = await Accounts.open(runtime.js, manual.subjects)
        found = await accounts.get("budi")
        assert found is not None and found[0].failures == 0
        assert found[0].password_hash.startswith("$argon2id$")


async def test_a_form_without_the_sessions_token_changes_nothing_and_sign_out_ends_it(
    manual, tmp_path
):
    await add_account(manual, tmp_path, "koordinator", "--role", "coordinator")
    async with system(manual) as (intake, tracker, app), browser(app) as client:
        tracking_id = await submit(intake)
        await eventually(lambda: _seen(tracker, tracking_id))
        await sign_in(client, "koordinator")
        page = await client.get(f"/koordinator/laporan/{tracking_id}")
        before = await status_of(tracker, tracking_id)
        for token in (None, "0" * 64, token_in((await client.get("/masuk")).text)):
            data = {"opd": "dpupr", **({"csrf_token": token} if token else {})}
            refused = await client.post(f"/koordinator/laporan/{tracking_id}/disposisi", data=data)
            assert refused.status_code == 403
        assert await status_of(tracker, tracking_id) == before

        cookie = client.cookies["lapor_staff"]
        out = await client.post("/keluar", data={"csrf_token": token_in(page.text)})
        assert out.status_code == 303 and out.headers["location"].startswith("/masuk")
        client.cookies.set("lapor_staff", cookie)  # the old cookie, replayed
        again = await client.get("/koordinator")
        assert again.status_code == 303 and again.headers["location"].startswith("/masuk")


async def _in(tracker: httpx.AsyncClient, tracking_id: str, status: str) -> dict | None:
    found = await status_of(tracker, tracking_id)
    return found if found.get("status") == status else None


async def _seen(tracker: httpx.AsyncClient, tracking_id: str) -> bool:
    return (await tracker.get(f"/complaints/{tracking_id}")).status_code == 200


async def test_the_session_cookie_is_httponly_samesite_strict_and_secure_off_this_machine(
    manual, tmp_path
):
    await add_account(manual, tmp_path, "koordinator", "--role", "coordinator")
    async with system(manual) as (_, _tracker, app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="https://lapor.pontianak.go.id"
        ) as public:
            signed = await sign_in(public, "koordinator")
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith("lapor_staff=")
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "secure", "samesite=strict"} <= flags
        async with browser(app) as local:
            signed = await sign_in(local, "koordinator")
        assert "secure" not in signed.headers["set-cookie"].lower()


async def test_the_deadline_view_lists_what_is_due_soon_the_earliest_first(manual, tmp_path):
    await add_account(manual, tmp_path, "koordinator", "--role", "coordinator")
    async with system(manual) as (intake, tracker, app), browser(app) as client:
        ids = [await submit(intake, title=f"Jalan rusak nomor {n}") for n in range(3)]
        admin = bearer(manual, "admin")

        async def all_due() -> list[dict] | None:
            answer = await tracker.get(
                "/admin/complaints", params={"status": "all", "order": "due"}, headers=admin
            )
            items = answer.json()["items"]
            return items if len(items) == 3 and all(i["due_at"] for i in items) else None

        items = await eventually(all_due)
        dues = [i["due_at"] for i in items]
        assert dues == sorted(dues)  # the API's order: the earliest first
        await sign_in(client, "koordinator")
        page = await client.get("/koordinator/tenggat")
        check_page(page.text)
        soon = datetime.now(UTC) + timedelta(days=3)
        expected = [i["tracking_id"] for i in items if datetime.fromisoformat(i["due_at"]) <= soon]
        shown = re.findall(r'href="/koordinator/laporan/([0-9A-Z-]+)"', page.text)
        assert shown == expected
        assert set(ids) >= set(shown)


async def test_staff_download_the_reporters_photo_through_the_portal_and_no_one_else(
    manual, tmp_path
):
    import hashlib
    import json

    from lapor.devtools import sample_files

    await add_account(manual, tmp_path, "koordinator", "--role", "coordinator")
    await add_account(manual, tmp_path, "budi", "--role", "officer", "--opd", "dpupr")
    await add_account(manual, tmp_path, "dewi", "--role", "officer", "--opd", "dlh")
    admin = bearer(manual, "admin")
    async with system(manual) as (intake, tracker, app):
        parts = [
            ("complaint", (None, json.dumps(ROAD).encode(), "application/json")),
            ("attachments", ("jalan.jpg", sample_files.phone_photo(), "image/jpeg")),
        ]
        answer = await intake.post("/complaints", files=parts)
        assert answer.status_code == 202, answer.text
        tracking_id = answer.json()["tracking_id"]

        async def listed() -> list | None:
            r = await tracker.get(f"/admin/complaints/{tracking_id}", headers=admin)
            return r.json()["attachments"] if r.status_code == 200 else None

        [photo] = await eventually(listed)
        async with browser(app) as coordinator:
            await sign_in(coordinator, "koordinator")
            page = await coordinator.get(f"/koordinator/laporan/{tracking_id}")
            link = f"/koordinator/laporan/{tracking_id}/lampiran/{photo['id']}"
            assert f'href="{link}"' in page.text
            got = await coordinator.get(link)
            assert got.status_code == 200
            assert hashlib.sha256(got.content).hexdigest() == photo["sha256"]
            assert got.headers["content-type"] == "image/jpeg"
            assert got.headers["x-content-type-options"] == "nosniff"
            assert got.headers["content-disposition"].startswith("attachment")
            await coordinator.post(
                f"/koordinator/laporan/{tracking_id}/disposisi",
                data={"opd": "dpupr", "csrf_token": token_in(page.text)},
            )
        await eventually(lambda: _in(tracker, tracking_id, "disposed"))
        mine = f"/unit/laporan/{tracking_id}/lampiran/{photo['id']}"
        async with browser(app) as officer:
            await sign_in(officer, "budi")
            got = await officer.get(mine)
            assert got.status_code == 200 and got.content
        async with browser(app) as other:
            await sign_in(other, "dewi")
            assert (await other.get(mine)).status_code == 404
        async with browser(app) as nobody:
            refused = await nobody.get(mine)
            assert refused.status_code == 303 and "/masuk" in refused.headers["location"]


async def test_an_address_that_fails_too_often_must_wait_and_others_need_not(manual, tmp_path):
    """A few passwords tried on many accounts from one address: after ``Throttle.LIMIT``
    failures the address is refused before any password is checked (429, recorded as
    throttled), even with a right one; another address signs in as usual."""
    from lapor.portal.staff.stores import Throttle

    await add_account(manual, tmp_path, "budi", "--role", "officer", "--opd", "dpupr")
    async with system(manual) as (_, _tracker, app), browser(app) as client:
        sprayer = {"X-Forwarded-For": "203.0.113.9, 10.0.0.7"}  # the first is claimed
        form = await client.get("/masuk")
        token = token_in(form.text)
        for n in range(Throttle.LIMIT):
            answer = await client.post(
                "/masuk",
                data={
                    "username": f"user{n}",
                    "password": "tebakan-kata-sandi",
                    "csrf_token": token,
                },
                headers=sprayer,
            )
            assert answer.status_code == 401
        right = {"username": "budi", "password": PASSWORD, "csrf_token": token}
        refused = await client.post("/masuk", data=right, headers=sprayer)
        assert refused.status_code == 429
        assert "Terlalu banyak upaya masuk" in refused.text
        assert "lapor_staff" not in client.cookies
        # Another address behind the same claimed one is not this one.
        other = {"X-Forwarded-For": "203.0.113.9, 10.0.0.8"}
        assert (await client.post("/masuk", data=right, headers=other)).status_code == 303

        record = await SignIns(app.state.runtime.js, manual.subjects).recent()
        outcomes = [r["outcome"] for r in record]
        assert outcomes == ["unknown_user"] * Throttle.LIMIT + ["throttled", "ok"]
        assert {r["address"] for r in record} == {"10.0.0.7", "10.0.0.8"}
        accounts = await Accounts.open(app.state.runtime.js, manual.subjects)
        assert (await accounts.get("budi"))[0].failures == 0  # never checked while refused
