"""Each service signs in to NATS as its own user, and only intake touches reporters.

On a real nats-server started from the ``users.conf`` that ``lapor nats-users`` and
``lapor agency add`` generate: the ops user ``lapor`` bootstraps the streams and creates
the agencies' consumers; intake, router, tracker and analytics run in-process, each with
``NATS_URL`` carrying its own user and password, and carry a complaint (with a named
reporter) from intake to the router's disposition, the tracker's read model, an
officer's follow-up and the analytics count. The router's, tracker's and analytics'
users are refused the reporters' stream (subscribing to ``<root>.reporter.>``, reading a
message with ``STREAM.MSG.GET``, making a consumer on it), which the ops user reads and
intake's user wrote; the unit the complaint went to reads its copy from its own consumer,
and not another unit's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import nats
import nats.errors
import nats.js.errors
import pytest

from lapor.analytics.app import create_app as analytics_app
from lapor.devtools.infra import Infrastructure, free_port, nats_server_binary, wait_for_port
from lapor.devtools.testing import bearer, eventually, serving
from lapor.intake.app import create_app as intake_app
from lapor.ops import natsauth
from lapor.router.app import create_app as router_app
from lapor.services.bootstrap import bootstrap
from lapor.services.cli import main
from lapor.services.database import with_database
from lapor.services.settings import Settings
from lapor.shared.subjects import Subjects
from lapor.tracker.app import create_app as tracker_app

pytestmark = pytest.mark.connected

A, B = "dpupr", "dlh"  # the road complaint goes to A
ROAD = {
    "title": "Jalan berlubang di Jl. Tanjungpura",
    "body": "Lubang besar di depan pasar sudah dua minggu, membahayakan pengendara motor.",
    "category": "jalan",
    "reporter": {"name": "Siti Rahmawati", "phone": "+6281234567890"},
}


@dataclass
class Deployment:
    root: str
    nats_url: str
    workdir: Path
    passwords: dict[str, str]
    ops: Settings

    @property
    def subjects(self) -> Subjects:
        return Subjects(self.root)

    def url(self, role: str) -> str:
        user = natsauth.user_of(role)
        return self.nats_url.replace("nats://", f"nats://{user}:{self.passwords[role]}@")

    def settings(self, role: str) -> Settings:
        return self.ops.model_copy(update={"nats_url": self.url(role)})


def lapor(workdir: Path, *argv: str) -> None:
    code = main(list(argv))
    assert code == 0, argv


@pytest.fixture
def deployment_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, dict[str, str]]]:
    """users.conf with the ops user, the four services' users and agencies A and B."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("lapor.services.cli.configure_logging", lambda *args: None)
    for name in list(os.environ):
        if name.startswith(("NATS_", "DATABASE_", "LAPOR_")):
            monkeypatch.delenv(name)
    root = f"su{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("LAPOR_SUBJECT_ROOT", root)
    monkeypatch.setenv("LAPOR_DATA_DIR", str(tmp_path / ".lapor"))
    monkeypatch.setenv("LAPOR_INFRA", "none")
    lapor(tmp_path, "nats-users", "users.conf", "--no-consumers")
    lapor(tmp_path, "agency", "add", A)
    lapor(tmp_path, "agency", "add", B)
    passwords = {
        role: (tmp_path / "nats-passwords" / role).read_text().strip()
        for role in natsauth.SERVICE_ROLES
    }
    passwords[natsauth.OPS] = (tmp_path / "nats-service-password").read_text().strip()
    yield root, passwords


@pytest.fixture
def nats_url(tmp_path: Path, deployment_files: tuple[str, dict[str, str]]) -> Iterator[str]:
    """A nats-server whose configuration includes the generated users.conf."""
    port = free_port()
    conf = tmp_path / "nats-server.conf"
    conf.write_text(
        f"listen: 127.0.0.1:{port}\n"
        f"jetstream {{ store_dir: {json.dumps(str(tmp_path / 'js'))} }}\n"
        'include "users.conf"\n'
    )
    log = tmp_path / "nats-server.log"
    proc = subprocess.Popen(
        [nats_server_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=log.open("ab")
    )
    try:
        wait_for_port(port)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
async def deployment(
    tmp_path: Path,
    infra: Infrastructure,
    nats_url: str,
    deployment_files: tuple[str, dict[str, str]],
) -> AsyncIterator[Deployment]:
    root, passwords = deployment_files
    db = f"t{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infra.database_url)
    await admin.execute(f'CREATE DATABASE "{db}"')
    await admin.close()
    try:
        url = nats_url
        ops = Settings(
            nats_url=url.replace("nats://", f"nats://lapor:{passwords['ops']}@"),
            database_url=with_database(infra.database_url, db),
            subject_root=root,
            retry_base_delay_seconds=0.1,
            auth_secret=f"test-{uuid.uuid4().hex}",
            log_format="console",
        )
        await bootstrap(ops)  # the migrate Job, as the ops user
        os.environ["NATS_URL"] = ops.nats_url or ""
        try:
            await asyncio.to_thread(lapor, tmp_path, "agency", "consumers", A, B)
        finally:
            del os.environ["NATS_URL"]
        yield Deployment(root, url, tmp_path, passwords, ops)
    finally:
        admin = await asyncpg.connect(infra.database_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


class Client:
    """A connection that keeps the errors the server sent it (permission violations)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: nats.NATS

    @classmethod
    async def connect(cls, url: str, **options) -> Client:
        client = cls()

        async def on_error(e: Exception) -> None:
            client.errors.append(str(e).lower())

        client.nc = await nats.connect(
            url, allow_reconnect=False, connect_timeout=3, error_cb=on_error, **options
        )
        return client

    async def violated(self, kind: str, subject: str, prefix: bool = False) -> bool:
        """Whether the server refused ``subject`` (or a subject starting with it)."""
        wanted = f'permissions violation for {kind} to "{subject}{"" if prefix else chr(34)}'
        return any(wanted.lower() in e for e in self.errors)


async def refused_the_reporters(url: str, subjects: Subjects) -> Client:
    """Try to read the reporters' stream every way; each must be refused by the server."""
    client = await Client.connect(url)
    stream = subjects.reporters_stream
    await client.nc.subscribe(subjects.all_reporters)
    with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        await client.nc.request(f"$JS.API.STREAM.MSG.GET.{stream}", b'{"seq": 1}', timeout=1)
    js = client.nc.jetstream(timeout=1)
    with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        await js.pull_subscribe(subjects.all_reporters, durable="peek", stream=stream)
    with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        await js.add_consumer(stream, durable_name="peek")

    async def all_refused() -> bool:
        return (
            await client.violated("subscription", subjects.all_reporters)
            and await client.violated("publish", f"$JS.API.STREAM.MSG.GET.{stream}")
            and await client.violated("publish", f"$JS.API.CONSUMER.INFO.{stream}.peek")
            and (  # nats-py names a durable in one form or the other, by server version
                await client.violated("publish", f"$JS.API.CONSUMER.CREATE.{stream}", True)
                or await client.violated(
                    "publish", f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.", True
                )
            )
        )

    try:
        await eventually(all_refused, within=5)
    except AssertionError as e:
        raise AssertionError(f"{e}; the server said: {client.errors}") from None
    await client.nc.close()
    return client


async def test_each_service_runs_as_its_own_user_and_only_intake_touches_reporters(
    deployment: Deployment,
) -> None:
    s = deployment.subjects
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(deployment.settings("intake"))))
        await stack.enter_async_context(serving(router_app(deployment.settings("router"))))
        tracker = await stack.enter_async_context(
            serving(tracker_app(deployment.settings("tracker")))
        )
        analytics = await stack.enter_async_context(
            serving(analytics_app(deployment.settings("analytics")))
        )

        r = await intake.post("/complaints", json=ROAD)
        assert r.status_code == 202, r.text
        road = r.json()["tracking_id"]

        async def disposed():
            r = await tracker.get(f"/complaints/{road}")
            return r.json() if r.status_code == 200 and r.json()["status"] == "disposed" else None

        status = await eventually(disposed, within=20)
        assert status["opd"] == A
        officer = bearer(deployment.ops, "agency", A)
        r = await tracker.post(
            f"/agencies/{A}/complaints/{road}/follow-ups",
            json={"message": "Tim sudah meninjau lokasi."},
            headers=officer,
        )
        assert r.status_code == 202, r.text

        async def followed_up():
            r = await tracker.get(f"/complaints/{road}")
            events = [h["event"] for h in r.json()["history"]]
            return events if "complaint.followed_up" in events else None

        await eventually(followed_up)

        async def counted():
            body = (await analytics.get("/metrics/completion")).json()
            return body if body["overall"]["received"] == 1 else None

        await eventually(counted, within=20)

    # Intake's user wrote the reporter's record; the ops user (backups) reads it.
    ops = await nats.connect(deployment.url("ops"))
    record = await ops.jetstream().get_msg(s.reporters_stream, subject=s.reporter(road))
    assert b"Siti Rahmawati" in record.data
    await ops.close()

    # Intake may write the reporters' stream, and nothing else may read it.
    writer = await Client.connect(deployment.url("intake"))
    ack = await writer.nc.jetstream().publish(
        s.reporter("T-WRITE"), b"{}", stream=s.reporters_stream
    )
    assert ack.stream == s.reporters_stream
    await writer.nc.close()
    for role in ("router", "tracker", "analytics", "intake"):
        await refused_the_reporters(deployment.url(role), s)

    # Another service's publish is refused: analytics appends nothing, tracker forges no
    # received complaint.
    for role, subject in (
        ("analytics", s.complaint(road, "complaint.closed")),
        ("tracker", s.complaint("T-FORGED", "complaint.received")),
        ("router", s.complaint(road, "complaint.closed")),
    ):
        client = await Client.connect(deployment.url(role))
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await client.nc.request(subject, b"{}", timeout=1)
        await eventually(lambda c=client, x=subject: c.violated("publish", x), within=5)
        await client.nc.close()

    # The unit the complaint went to reads its copy from its own consumer, not B's.
    seed_a = deployment.workdir / "agency-credentials" / f"{A}.nk"
    agency = await Client.connect(
        deployment.nats_url, nkeys_seed=str(seed_a), inbox_prefix=natsauth.inbox_prefix(A)
    )
    js = agency.nc.jetstream()
    mine = await js.pull_subscribe_bind(natsauth.consumer_name(A), stream=s.agency_stream)
    msgs = await mine.fetch(10, timeout=5)
    assert msgs and all(m.subject.startswith(f"{s.root}.agency.{A}.") for m in msgs)
    assert any(road in m.data.decode() for m in msgs)
    assert not any(b"Siti Rahmawati" in m.data for m in msgs)
    for m in msgs:
        await m.ack()
    theirs = await js.pull_subscribe_bind(natsauth.consumer_name(B), stream=s.agency_stream)
    with pytest.raises(nats.errors.TimeoutError):
        await theirs.fetch(1, timeout=1)
    next_b = f"$JS.API.CONSUMER.MSG.NEXT.{s.agency_stream}.{natsauth.consumer_name(B)}"
    await eventually(lambda: agency.violated("publish", next_b), within=5)
    await agency.nc.close()


async def test_only_intake_writes_attachments_and_only_the_tracker_reads_them(
    deployment: Deployment,
) -> None:
    """A photo goes in through intake's user and out through the tracker's; every other
    user is refused the attachments' object store, and the tracker cannot write it."""
    from lapor.devtools import sample_files

    s = deployment.subjects
    parts = [
        ("complaint", (None, json.dumps(ROAD).encode(), "application/json")),
        ("attachments", ("jalan.jpg", sample_files.phone_photo(), "image/jpeg")),
    ]
    admin = bearer(deployment.ops, "admin")
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(deployment.settings("intake"))))
        tracker = await stack.enter_async_context(
            serving(tracker_app(deployment.settings("tracker")))
        )
        r = await intake.post("/complaints", files=parts)
        assert r.status_code == 202, r.text
        cid = r.json()["tracking_id"]

        async def listed():
            r = await tracker.get(f"/admin/complaints/{cid}", headers=admin)
            return r.json()["attachments"] if r.status_code == 200 else None

        [photo] = await eventually(listed, within=20)
        r = await tracker.get(f"/admin/complaints/{cid}/attachments/{photo['id']}", headers=admin)
        assert r.status_code == 200, r.text
        assert hashlib.sha256(r.content).hexdigest() == photo["sha256"]

    stream = f"OBJ_{s.attachments_bucket}"
    read = f"$JS.API.STREAM.MSG.GET.{stream}"
    for role in ("router", "analytics", *natsauth.HTTP_ROLES):
        client = await Client.connect(deployment.url(role))
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await client.nc.request(read, b'{"seq": 1}', timeout=1)
        await eventually(lambda c=client: c.violated("publish", read), within=5)
        await client.nc.close()
    forged = f"$O.{s.attachments_bucket}.C.forged"
    client = await Client.connect(deployment.url("tracker"))
    with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        await client.nc.request(forged, b"not a photo", timeout=1)
    await eventually(lambda: client.violated("publish", forged), within=5)
    await client.nc.close()


async def test_the_portal_user_keeps_staff_accounts_sessions_and_sign_ins_and_nothing_more(
    deployment: Deployment,
):
    """The portal signs staff in with its own NATS user: it reads and counts on accounts
    the ops user made, keeps sessions and records sign-ins; it may not append to the log."""
    from datetime import UTC, datetime

    from lapor.portal.staff import accounts as acc
    from lapor.portal.staff.signin import sign_in
    from lapor.portal.staff.stores import Accounts, Sessions, SignIns, Throttle

    s, now, password = deployment.subjects, datetime.now(UTC), "kata-sandi-yang-panjang"
    ops = await nats.connect(deployment.ops.nats_url)
    try:
        made = acc.new_account("budi", "officer", password, opd=A, units={A})
        await (await Accounts.open(ops.jetstream(), s)).add(made)
        client = await Client.connect(deployment.url("portal"))
        js = client.nc.jetstream(timeout=2)
        accounts, record = await Accounts.open(js, s), SignIns(js, s)
        throttle = await Throttle.open(js, s)
        where = {"address": "10.0.0.7"}
        wrong = await sign_in(accounts, record, "budi", "bukan-kata-sandi", now, throttle, **where)
        right = await sign_in(accounts, record, "budi", password, now, throttle, **where)
        assert (wrong.outcome, right.outcome) == ("wrong_password", "ok")
        assert (await throttle.kv.get(throttle._key("10.0.0.7"))).value == b"1"
        sessions = await Sessions.open(js, s)
        token, _ = await sessions.start("budi", now)
        assert (await sessions.get(token)).username == "budi"
        await sessions.end(token)
        assert await sessions.get(token) is None
        recorded = await SignIns(ops.jetstream(), s).recent()
        assert [r["outcome"] for r in recorded] == ["wrong_password", "ok"]

        forged = s.complaint("7K3MQ9X2AB", "complaint.received")
        await client.nc.publish(forged, b"{}")
        await eventually(lambda: client.violated("publish", forged), within=5)
        await client.nc.close()
    finally:
        await ops.close()
