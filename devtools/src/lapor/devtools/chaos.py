"""The harness of the fault tests: a whole local system (the real ``lapor run``, in a
subprocess with its own data folder and ports), faults injected into it (kill -9 of any of
its processes, found through the supervisor's ``pids.json``), and how long it takes until
every service is ready again.

Also the load those tests put on a system (``Load``: clients that retry with their
Idempotency-Key until they get a 202) and what they check afterwards: that the log is
quiet, what it holds, what was dead-lettered.

Used by ``tests/test_supervised_run.py``, the chaos suite (``tests/chaos``, ``make
chaos``) and the cluster test (``tests/test_cluster.py``); nothing here is a fake: the
processes, servers and signals are real.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import asyncpg
import httpx
import nats
import nats.errors
import psutil
from nats.js.api import ConsumerInfo
from pydantic import SecretStr

from lapor.devtools.infra import RUN_FILE, free_port
from lapor.devtools.supervisor import stop_process
from lapor.services.discovery import installed_services
from lapor.services.settings import Settings
from lapor.shared.events import ComplaintReceived

LAPOR = [sys.executable, "-m", "lapor.services.cli"]


def service_port_span() -> int:
    """How many consecutive ports the installed services take from ``--base-port`` up."""
    ports = [service.port for service in installed_services().values()]
    return max(ports) - min(ports) + 1


def free_port_block(count: int | None = None) -> int:
    """A base port with ``count`` free ports from it up (``lapor run --base-port``; by
    default as many as the services take): their own ports, 8080 and up, may be taken by
    another run on the same machine. Outside the ephemeral range (``infra.free_port``), as
    the supervisor restarts each service on its port."""
    return free_port(count or service_port_span())


async def all_ready(client: httpx.AsyncClient, services: Iterable[str]) -> bool:
    """Whether the ``/health/ready`` of every service (by its base URL) answers 200."""
    for url in services:
        try:
            if (await client.get(f"{url}/health/ready", timeout=1)).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
    return True


def logged_warnings(*outputs: Path) -> dict[str, int]:
    """How often each warning or error was logged in ``outputs`` (the services log JSON
    lines), by who logged it and what: the evidence when something did not heal."""
    found: Counter[str] = Counter()
    for output in outputs:
        text = output.read_text(errors="replace") if output.exists() else ""
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("level") in ("warning", "error"):
                    who = entry.get("projection") or entry.get("service") or entry.get("durable")
                    what = f"{entry['level']}: {who or '-'}: {entry.get('event')}"
                    found[f"{what} {entry.get('error', '')}"[:240].rstrip()] += 1
    return dict(found.most_common())


@dataclass
class LocalSystem:
    """A running ``lapor run --base-port N`` with ``LAPOR_DATA_DIR`` set to ``data_dir``;
    its output (the supervisor's lines and the services' logs) goes to ``output``."""

    data_dir: Path
    base_port: int
    proc: subprocess.Popen
    output: Path

    @classmethod
    def start(cls, data_dir: Path, env: dict[str, str] | None = None) -> LocalSystem:
        data_dir.mkdir(parents=True, exist_ok=True)
        base_port = free_port_block()
        output = data_dir / "lapor-run.log"
        environment = {
            **os.environ,
            "LAPOR_DATA_DIR": str(data_dir),
            "LAPOR_INFRA": "embedded",
            "LAPOR_LOG_FORMAT": "json",
            # The one address in front of the services: a free port of its own too.
            "LAPOR_GATEWAY_PORT": str(free_port_block(1)),
            **(env or {}),
        }
        for given in ("NATS_URL", "DATABASE_URL"):  # ours, to restart: never given ones
            environment.pop(given, None)
        with output.open("ab") as out:
            proc = subprocess.Popen(
                [*LAPOR, "run", "--base-port", str(base_port)],
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return cls(data_dir, base_port, proc, output)

    # --- what it is ----------------------------------------------------------------

    def described(self) -> dict | None:
        """``run.json``: written once everything is up, removed when it stops."""
        path = self.data_dir / RUN_FILE
        return json.loads(path.read_text()) if path.exists() else None

    @property
    def services(self) -> dict[str, str]:
        described = self.described()
        assert described is not None, "lapor run is not up"
        return described["services"]

    def pids(self) -> dict[str, int]:
        path = self.data_dir / "pids.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def settings(self) -> Settings:
        """Settings reaching this system's servers, as its services have them."""
        described = self.described()
        assert described is not None, "lapor run is not up"
        secret = (self.data_dir / "auth_secret").read_text().strip()
        return Settings(
            nats_url=described["nats_url"],
            database_url=described["database_url"],
            data_dir=self.data_dir,
            auth_secret=SecretStr(secret),
        )

    def supervisor_lines(self) -> list[str]:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return [line for line in text.splitlines() if line.startswith("[supervisor]")]

    def warnings(self) -> dict[str, int]:
        """How often each warning or error was logged (``logged_warnings``)."""
        return logged_warnings(self.output)

    # --- waiting ---------------------------------------------------------------------

    async def up(self, within: float = 120) -> None:
        """Until ``lapor run`` says it is running (every child started and ready)."""
        deadline = time.monotonic() + within
        while self.described() is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lapor run exited ({self.proc.returncode}); see {self.output}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"lapor run not up after {within}s; see {self.output}")
            await asyncio.sleep(0.2)

    async def all_ready(self, client: httpx.AsyncClient) -> bool:
        """Whether every service's ``/health/ready`` answers 200."""
        return await all_ready(client, self.services.values())

    async def not_ready(self, client: httpx.AsyncClient) -> dict[str, str]:
        """The services whose ``/health/ready`` does not answer 200, with what they say."""
        found = {}
        for name, url in self.services.items():
            try:
                answer = await client.get(f"{url}/health/ready", timeout=1)
            except httpx.HTTPError as e:
                found[name] = repr(e)
                continue
            if answer.status_code != 200:
                found[name] = f"{answer.status_code} {answer.text[:200]}"
        return found

    # --- faults ----------------------------------------------------------------------

    def kill(self, name: str) -> int:
        """kill -9 the process the supervisor knows as ``name``; returns its pid."""
        pid = self.pids()[name]
        os.kill(pid, signal.SIGKILL)
        return pid

    async def recovery(self, name: str, within: float = 60) -> float:
        """kill -9 ``name`` and measure the seconds until it runs again (a new pid) and
        every service is ready."""
        started = time.monotonic()
        killed = self.kill(name)
        async with httpx.AsyncClient() as client:
            while True:
                elapsed = time.monotonic() - started
                if self.pids().get(name, killed) != killed and await self.all_ready(client):
                    return elapsed
                if elapsed > within:
                    lines = "\n".join(self.supervisor_lines()[-8:])
                    raise TimeoutError(
                        f"not recovered from killing {name} within {within}s; not ready: "
                        f"{await self.not_ready(client)}; the supervisor's last lines:\n{lines}"
                    )
                await asyncio.sleep(0.05)

    # --- the end -----------------------------------------------------------------------

    def stop(self, timeout: float = 60) -> int:
        """TERM ``lapor run`` (it stops its children in order); returns its exit code.
        Children it left running (it was killed, say, and then ``pids.json`` is still
        there) are killed, so that a failed test leaves no servers behind."""
        stop_process(self.proc, signal.SIGTERM, timeout)
        for pid in self.pids().values():
            if self.owns(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)  # each child leads its process group
        return self.proc.returncode

    def owns(self, pid: int) -> bool:
        """Whether ``pid`` is still one of this system's children (not a reused pid)."""
        try:
            return psutil.Process(pid).environ().get("LAPOR_DATA_DIR") == str(self.data_dir)
        except psutil.Error:
            return False


# --- load and what the log holds afterwards ----------------------------------------


def complaints() -> list[dict]:
    demo = files("lapor.devtools") / "demo_complaints.json"
    return json.loads(demo.read_text())


@dataclass
class Load:
    """Clients submitting ``rate`` complaints a second; each retries on any failure with
    its Idempotency-Key until intake answers 202, and records the tracking ID."""

    intake: str
    rate: float
    acknowledged: dict[str, str] = field(default_factory=dict)  # key -> tracking ID
    answers: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    longest_wait: float = 0.0

    async def run(self, stop: asyncio.Event, clients: int = 32) -> None:
        """Offer complaints until ``stop``; return once every one offered is acknowledged
        (or refused, which the test reports)."""
        queue: asyncio.Queue[tuple[str, dict] | None] = asyncio.Queue()
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(timeout=5, limits=limits) as client:
            workers = [asyncio.create_task(self._client(client, queue)) for _ in range(clients)]
            await self._offer(queue, stop)
            for _ in workers:
                queue.put_nowait(None)
            await asyncio.gather(*workers)

    async def _offer(self, queue: asyncio.Queue, stop: asyncio.Event) -> None:
        bodies = itertools.cycle(complaints())
        started = time.monotonic()
        for n in itertools.count():
            if stop.is_set():
                return
            queue.put_nowait((uuid.uuid4().hex, next(bodies)))
            await asyncio.sleep(max(0.0, started + (n + 1) / self.rate - time.monotonic()))

    async def _client(self, client: httpx.AsyncClient, queue: asyncio.Queue) -> None:
        while (item := await queue.get()) is not None:
            await self.submit(client, *item)

    async def submit(self, client: httpx.AsyncClient, key: str, body: dict) -> None:
        started, delay = time.monotonic(), 0.1
        while True:
            try:
                r = await client.post(
                    f"{self.intake}/complaints", json=body, headers={"Idempotency-Key": key}
                )
                self.answers[str(r.status_code)] += 1
                if r.status_code == 202:
                    self.acknowledged[key] = r.json()["tracking_id"]
                    self.longest_wait = max(self.longest_wait, time.monotonic() - started)
                    return
                if 400 <= r.status_code < 500 and r.status_code != 429:
                    self.refused.append(f"{r.status_code} {r.text[:200]}")
                    return
            except httpx.HTTPError as e:
                self.answers[type(e).__name__] += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def figures(self) -> dict[str, object]:
        return {
            "offered per second": self.rate,
            "acknowledged": len(self.acknowledged),
            "answers": dict(self.answers),
            "longest wait for an acknowledgement (s)": round(self.longest_wait, 2),
        }


async def quiet(settings: Settings, within: float = 90) -> int:
    """Wait until the log stops growing and every consumer of it and every read model
    has caught up with it; returns the log's last sequence."""
    subjects = settings.subjects
    nc = await nats.connect(settings.nats_servers)
    db = await asyncpg.connect(settings.database_url)
    try:
        js, deadline, last, state = nc.jetstream(), time.monotonic() + within, -1, {}
        while time.monotonic() < deadline:
            try:
                seq = (await js.stream_info(subjects.events_stream)).state.last_seq
                consumers = await js.consumers_info(subjects.events_stream)
            except nats.errors.TimeoutError:
                # A cluster just after a failover may answer its API late: ask again.
                await asyncio.sleep(1)
                continue
            checkpoints = await db.fetch("SELECT projection, last_seq FROM projection_checkpoints")
            state = {
                **{c.name: _consumer_state(c) for c in consumers},
                **{r["projection"]: r["last_seq"] for r in checkpoints},
            }
            settled = all(not c.num_pending and not c.num_ack_pending for c in consumers)
            if settled and seq == last and all(r["last_seq"] == seq for r in checkpoints):
                return seq
            last = seq
            await asyncio.sleep(1)
        raise AssertionError(f"not quiet within {within}s: log at {last}, {state}")
    finally:
        await db.close()
        await nc.close()


def _consumer_state(c: ConsumerInfo) -> dict[str, int]:
    return {
        "pending": c.num_pending,
        "ack pending": c.num_ack_pending,
        "redelivered": c.num_redelivered,
        "delivered": c.delivered.stream_seq if c.delivered else 0,
        "ack floor": c.ack_floor.stream_seq if c.ack_floor else 0,
    }


async def received_in_log(settings: Settings) -> Counter[str]:
    """How often each complaint's ComplaintReceived is in the log, by tracking ID."""
    return await events_in_log(settings, ComplaintReceived.TYPE)


async def events_in_log(settings: Settings, event_type: str) -> Counter[str]:
    """How often each complaint has an event of ``event_type`` in the log, by tracking
    ID (complaints without one are not counted)."""
    subjects = settings.subjects
    nc = await nats.connect(settings.nats_servers)
    try:
        info = await nc.jetstream().stream_info(
            subjects.events_stream, subjects_filter=subjects.of_type(event_type)
        )
    finally:
        await nc.close()
    # <root>.complaint.<tracking_id>.<event_type>
    return Counter({subject.split(".")[2]: n for subject, n in (info.state.subjects or {}).items()})


async def dead_letters(settings: Settings) -> int:
    nc = await nats.connect(settings.nats_servers)
    try:
        info = await nc.jetstream().stream_info(settings.subjects.dead_letter_stream)
        return info.state.messages
    finally:
        await nc.close()
