"""Onboarding agencies, end to end on a real nats-server run from the generated users file.

The commands run as an operator runs them (``lapor nats-users``, ``lapor agency add |
consumers | rotate | remove | list``, each a process of its own, output captured), and the
agency side is the documented example client ``examples/agency_client.py`` (its function,
and once as the script). Agency A reads exactly its own assigned complaints and cannot
read B's consumer; after ``rotate A`` and a reload A's old seed is refused and the new one
reads; after ``remove B`` B is refused, and its open connection is cut; B's key is the
same through all of A's changes; and no secret appears in any command's output.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import signal
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import nats
import nats.errors
import pytest

from lapor.devtools.infra import free_port, nats_server_binary, wait_for_port
from lapor.devtools.testing import eventually
from lapor.ops import natsauth
from lapor.services.cli import main
from lapor.services.settings import Settings
from lapor.services.topology import stream_configs
from lapor.shared.envelope import envelope
from lapor.shared.events import ComplaintAssigned, FollowUpPosted
from lapor.shared.registry import load_registry
from lapor.shared.subjects import Subjects
from lapor.shared.tracking import new_tracking_id

pytestmark = pytest.mark.connected

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "agency_client.py"
UNITS = load_registry().units
A, B = UNITS[0].code, UNITS[1].code


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agency_client", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


client = load_example()


@dataclass
class Operator:
    """Runs ``lapor`` commands as an operator does (``lapor.services.cli.main``, the
    environment of the process), in ``workdir``, and keeps everything they wrote to the
    process's stdout and stderr (file descriptors 1 and 2)."""

    workdir: Path
    root: str
    capfd: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    outputs: list[str] = field(default_factory=list)

    def environment(self, nats_url: str | None = None) -> None:
        for name in list(os.environ):
            if name.startswith(("NATS_", "DATABASE_", "LAPOR_")):
                self.monkeypatch.delenv(name)
        self.monkeypatch.setenv("LAPOR_SUBJECT_ROOT", self.root)
        self.monkeypatch.setenv("LAPOR_DATA_DIR", str(self.workdir / ".lapor"))
        self.monkeypatch.setenv("LAPOR_INFRA", "none")
        if nats_url:
            self.monkeypatch.setenv("NATS_URL", nats_url)

    async def __call__(self, *argv: str, ok: bool = True) -> str:
        self.capfd.readouterr()
        code = await asyncio.to_thread(main, list(argv))
        out, err = self.capfd.readouterr()
        self.outputs.append(out + err)
        assert (code == 0) == ok, out + err
        return out


class NatsServer:
    """A nats-server whose configuration includes the generated users file, reloaded
    (SIGHUP, what ``nats-server --signal reload`` sends) after the file changes."""

    def __init__(self, workdir: Path, users: Path) -> None:
        self.port, ws_port = free_port(), free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.websocket_url = f"ws://127.0.0.1:{ws_port}"  # how agencies come in (ingress)
        conf = workdir / "nats-server.conf"
        conf.write_text(
            f"listen: 127.0.0.1:{self.port}\n"
            f'websocket {{ listen: "127.0.0.1:{ws_port}", no_tls: true }}\n'
            f"jetstream {{ store_dir: {json.dumps(str(workdir / 'js'))} }}\n"
            f"include {json.dumps(users.name)}\n"
        )
        self.log = workdir / "nats-server.log"
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )
        wait_for_port(self.port)
        wait_for_port(ws_port)

    def reload(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def operator(
    workdir: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Operator:
    monkeypatch.chdir(workdir)
    # The command would point the process's logging at this test's captured stderr, which
    # is closed once the test ends; what the commands print is what is checked.
    monkeypatch.setattr("lapor.services.cli.configure_logging", lambda *args: None)
    operator = Operator(workdir, f"onb{uuid.uuid4().hex[:8]}", capfd, monkeypatch)
    operator.environment()
    return operator


@pytest.fixture
async def server(workdir: Path, operator: Operator) -> AsyncIterator[NatsServer]:
    # First the service user (no agency yet), then the server that reads its file.
    await operator("nats-users", "users.conf", "--no-consumers")
    srv = NatsServer(workdir, workdir / "users.conf")
    yield srv
    srv.stop()


async def service_connection(url: str):
    return await nats.connect(url, allow_reconnect=False)


async def signs_in(url: str, seed: Path) -> bool | None:
    """Whether the server accepts a connection signed with ``seed`` (True), refuses it
    (False), or neither could be told (the connection dropped: a reload under way)."""

    async def quiet(e: Exception) -> None:
        pass

    try:
        nc = await nats.connect(
            url, nkeys_seed=str(seed), allow_reconnect=False, connect_timeout=2, error_cb=quiet
        )
    except nats.errors.Error as e:
        return False if "authorization violation" in str(e).lower() else None
    except OSError:
        return None
    await nc.close()
    return True


async def accepted(url: str, seed: Path) -> bool:
    return await signs_in(url, seed) is True


async def refused(url: str, seed: Path) -> bool:
    return await signs_in(url, seed) is False


def assigned(opd: str, title: str) -> tuple[str, bytes]:
    """(subject, data) of an agency's copy of a complaint disposed to it, as the router's
    fan-out publishes it."""
    event = ComplaintAssigned(
        opd=opd,
        report_type="pengaduan",
        channel="web",
        title=title,
        body=f"{title}: keterangan lengkap dari pelapor",
        category="jalan",
        location=None,
        incident_date=None,
        confidential=False,
        reason=f"Disposed to {opd}",
    )
    env = envelope(event, complaint_id=new_tracking_id(), correlation_id=uuid.uuid4())
    return env.complaint_id, env.to_json()


async def test_onboard_read_rotate_remove_without_a_secret_in_any_output(
    workdir: Path, operator: Operator, server: NatsServer
) -> None:
    subjects = Subjects(operator.root)
    seeds = workdir / "agency-credentials"
    service_password = (workdir / "nats-service-password").read_text().strip()
    service_url = f"nats://{natsauth.SERVICE_USER}:{service_password}@127.0.0.1:{server.port}"

    # --- onboard A and B: files only, then the reload ------------------------------------
    printed = await operator("agency", "add", A, "--name", "Rina (integrasi)")
    assert f"consumer      agency_{A}" in printed
    assert f"subject       {subjects.agency_all(A)}" in printed
    assert f"{seeds / (A + '.nk')}" in printed
    assert f"python examples/agency_client.py --server wss://NATS_PUBLIC_HOST --opd {A}" in printed
    await operator("agency", "add", B)
    await operator("agency", "add", B, ok=False)  # once only: rotate is for a new key
    await operator("agency", "add", "no_such_unit", ok=False)
    for opd in (A, B):
        path = seeds / f"{opd}.nk"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text().startswith("SU")
    seed_a_old = (seeds / f"{A}.nk").read_text().strip()
    seed_b = (seeds / f"{B}.nk").read_text().strip()
    state = json.loads((workdir / "agencies.json").read_text())
    key_b = next(a["public_key"] for a in state["agencies"] if a["opd"] == B)
    server.reload()
    # Reloaded once the new users are in force: until then a connection may also drop.
    await eventually(lambda: accepted(server.url, seeds / f"{B}.nk"))

    # The service user (NATS_URL with its password) declares the streams, as `lapor
    # migrate` does, and the agencies' consumers through the command.
    nc = await nats.connect(service_url, allow_reconnect=False)
    try:
        js = nc.jetstream()
        for config in stream_configs(Settings(subject_root=operator.root, stream_replicas=1)):
            await js.add_stream(config)
        operator.environment(nats_url=service_url)
        assert "2 agency consumers ready" in await operator("agency", "consumers", A, B)
        operator.environment()

        published = {}
        for opd, title in ((A, "Jalan berlubang di Jl. Gajah Mada"), (B, "Sampah menumpuk")):
            complaint_id, data = assigned(opd, title)
            published[opd] = complaint_id
            await js.publish(subjects.agency(opd, ComplaintAssigned.TYPE), data)
        follow_up = envelope(
            FollowUpPosted(opd=A, message="Tim sudah meninjau lokasi"),
            complaint_id=published[A],
            correlation_id=uuid.uuid4(),
        )
        await js.publish(subjects.agency(A, FollowUpPosted.TYPE), follow_up.to_json())

        # --- A reads its own, through the example client ---------------------------------
        seen: list[dict] = []
        handled = await client.follow(
            server.url,
            A,
            str(seeds / f"{A}.nk"),
            root=operator.root,
            handle=seen.append,
            wait=1,
            stop_when_idle=True,
        )
        assert handled == 2
        assert [(e["type"], e["complaint_id"]) for e in seen] == [
            (ComplaintAssigned.TYPE, published[A]),
            (FollowUpPosted.TYPE, published[A]),
        ]
        assert seen[0]["payload"]["title"] == "Jalan berlubang di Jl. Gajah Mada"
        info = await js.consumer_info(subjects.agency_stream, f"agency_{A}")
        assert (info.num_pending, info.num_ack_pending) == (0, 0)  # all acknowledged

        # ... and not B's: binding B's consumer with A's seed is refused.
        with pytest.raises(client.AccessRefused, match="permissions violation"):
            await client.follow(
                server.url, B, str(seeds / f"{A}.nk"), root=operator.root, wait=1,
                stop_when_idle=True,
            )  # fmt: skip
        info = await js.consumer_info(subjects.agency_stream, f"agency_{B}")
        assert (info.num_pending, info.delivered.stream_seq) == (1, 0)  # B's, untouched

        # The example as a script, over WebSocket as agencies come in: a new complaint for
        # A, printed, then it stops when idle.
        complaint_id, data = assigned(A, "Lampu jalan padam")
        await js.publish(subjects.agency(A, ComplaintAssigned.TYPE), data)
        script = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable, str(EXAMPLE), "--server", server.websocket_url, "--opd", A,
                "--seed", str(seeds / f"{A}.nk"), "--root", operator.root,
                "--exit-when-idle", "1",
            ],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert script.returncode == 0, script.stderr
        assert f"{complaint_id} {ComplaintAssigned.TYPE}: 'Lampu jalan padam'" in script.stdout
        assert "1 events handled" in script.stderr
        operator.outputs.append(script.stdout + script.stderr)

        # --- rotate A: the old seed is refused, the new one reads; B unchanged ------------
        # No reconnecting: once the server cuts B's connection it stays cut, and closing
        # it does not race nats-py's reconnect loop (a CancelledError in close).
        b_conn = await nats.connect(
            server.url, nkeys_seed=str(seeds / f"{B}.nk"), allow_reconnect=False
        )
        await operator("agency", "rotate", A)
        seed_a_new = (seeds / f"{A}.nk").read_text().strip()
        assert seed_a_new != seed_a_old
        old_a = workdir / "old-a.nk"
        old_a.write_text(seed_a_old + "\n")
        server.reload()
        await eventually(lambda: refused(server.url, old_a))
        complaint_id, data = assigned(A, "Drainase tersumbat")
        await js.publish(subjects.agency(A, ComplaintAssigned.TYPE), data)
        got: list[dict] = []
        assert (
            await client.follow(
                server.url, A, str(seeds / f"{A}.nk"), root=operator.root,
                handle=got.append, wait=1, stop_when_idle=True,
            )
            == 1
        )  # fmt: skip
        assert got[0]["complaint_id"] == complaint_id
        assert await accepted(server.url, seeds / f"{B}.nk")
        assert b_conn.is_connected
        state = json.loads((workdir / "agencies.json").read_text())
        assert next(a["public_key"] for a in state["agencies"] if a["opd"] == B) == key_b

        # --- remove B: refused, its open connection cut ----------------------------------
        b_seed_copy = workdir / "b-kept-by-the-agency.nk"
        b_seed_copy.write_text(seed_b + "\n")
        await operator("agency", "remove", B)
        assert not (seeds / f"{B}.nk").exists()
        server.reload()
        await eventually(lambda: refused(server.url, b_seed_copy))

        async def cut() -> bool:
            return not b_conn.is_connected

        await eventually(cut)
        await b_conn.close()
        assert await accepted(server.url, seeds / f"{A}.nk")

        listed = await operator("agency", "list")
        assert f"{A}: {UNITS[0].name}; issued to Rina (integrasi)" in listed
        assert f"\n{B}:" not in listed
        assert "revoked keys: 2" in listed
    finally:
        await nc.close()

    # --- no secret in anything printed -------------------------------------------------
    secrets_ = [seed_a_old, seed_a_new, seed_b, service_password]
    for output in operator.outputs:
        for secret in secrets_:
            assert secret not in output
        assert not re.search(r"SU[A-Z2-7]{50}", output), output  # nothing shaped like a seed
    # Nor in the files the deployment keeps (the users file, the agencies file).
    for kept in ("users.conf", "agencies.json"):
        text = (workdir / kept).read_text()
        for secret in secrets_:
            assert secret not in text
        assert stat.S_IMODE((workdir / kept).stat().st_mode) == 0o600
