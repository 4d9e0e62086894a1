"""The harness of the fault tests: a whole local system (the real ``lapor run``, in a
subprocess with its own data folder and ports), faults injected into it (kill -9 of any of
its processes, found through the supervisor's ``pids.json``), and how long it takes until
every service is ready again.

Used by ``tests/test_supervised_run.py`` and the chaos suite (``tests/chaos``, ``make
chaos``); nothing here is a fake: the processes, servers and signals are real.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from pydantic import SecretStr

from lapor.devtools.infra import RUN_FILE
from lapor.devtools.supervisor import stop_process
from lapor.services.discovery import installed_services
from lapor.services.settings import Settings

LAPOR = [sys.executable, "-m", "lapor.services.cli"]


def service_port_span() -> int:
    """How many consecutive ports the installed services take from ``--base-port`` up."""
    ports = [service.port for service in installed_services().values()]
    return max(ports) - min(ports) + 1


def free_port_block(count: int | None = None, tries: int = 50) -> int:
    """A base port with ``count`` free ports from it up (``lapor run --base-port``; by
    default as many as the services take): their own ports, 8080 and up, may be taken by
    another run on the same machine."""
    count = count or service_port_span()
    for _ in range(tries):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count < 65536 and all(_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports found")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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
        """How often each warning or error was logged (the services log JSON lines), by
        who logged it and what: the evidence when something did not heal."""
        found: Counter[str] = Counter()
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("level") in ("warning", "error"):
                    who = entry.get("projection") or entry.get("service") or entry.get("durable")
                    what = f"{entry['level']}: {who or '-'}: {entry.get('event')}"
                    found[f"{what} {entry.get('error', '')}"[:240].rstrip()] += 1
        return dict(found.most_common())

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
        for url in self.services.values():
            try:
                if (await client.get(f"{url}/health/ready", timeout=1)).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
        return True

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
                    raise TimeoutError(f"not recovered from killing {name} within {within}s")
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
