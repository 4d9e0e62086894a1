"""Running the services as production runs them (``lapor serve NAME`` under uvicorn, one
process each) and accounting for the CPU every process of the system spends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import psutil

from lapor.devtools.infra import free_port
from lapor.services.settings import Settings

LAPOR = Path(sys.executable).with_name("lapor")


@dataclass
class Service:
    name: str
    port: int
    proc: asyncio.subprocess.Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid


def service_env(settings: Settings, log_level: str) -> dict[str, str]:
    assert settings.nats_url and settings.database_url and settings.auth_secret
    return {
        **os.environ,
        "NATS_URL": settings.nats_url,
        "DATABASE_URL": settings.database_url,
        "LAPOR_SUBJECT_ROOT": settings.subject_root,
        "LAPOR_AUTH_SECRET": settings.auth_secret.get_secret_value(),
        "LAPOR_LOG_FORMAT": "json",
        "LAPOR_LOG_LEVEL": log_level,
    }


def _log_file(path: Path) -> IO[bytes]:
    return path.open("ab")


@contextlib.asynccontextmanager
async def services(
    settings: Settings,
    names: list[str],
    log_dir: Path,
    log_level: str,
    workers: dict[str, int] | None = None,
) -> AsyncIterator[dict[str, Service]]:
    """Start ``lapor serve NAME`` for each name (with ``workers[NAME]`` processes); yield
    {name: Service} once all are ready. Each service's output goes to
    ``<log_dir>/<root>-<name>.log``."""
    env = service_env(settings, log_level)
    running: dict[str, Service] = {}
    try:
        for name in names:
            port = free_port()
            with _log_file(log_dir / f"{settings.subject_root}-{name}.log") as log:
                proc = await asyncio.create_subprocess_exec(
                    str(LAPOR),
                    *("serve", name, "--host", "127.0.0.1", "--port", str(port)),
                    *("--workers", str((workers or {}).get(name, 1))),
                    env=env,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                )
            running[name] = Service(name, port, proc)
        await _wait_ready(running)
        yield running
    finally:
        for s in running.values():
            if s.proc.returncode is None:
                s.proc.terminate()  # uvicorn shuts down gracefully on TERM
        for s in running.values():
            try:
                await asyncio.wait_for(s.proc.wait(), 10)
            except TimeoutError:
                s.proc.kill()
                await s.proc.wait()


async def _wait_ready(running: dict[str, Service], within: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pending = set(running)
    async with httpx.AsyncClient(timeout=1) as client:
        while pending:
            for name in list(pending):
                if running[name].proc.returncode is not None:
                    raise RuntimeError(f"{name} exited during start-up (see its log)")
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(f"{running[name].url}/health/ready")
                    if r.status_code == 200:
                        pending.discard(name)
            if loop.time() > deadline:
                raise TimeoutError(f"not ready after {within}s: {sorted(pending)}")
            await asyncio.sleep(0.2)


# --- CPU accounting ------------------------------------------------------------------


def _cpu(p: psutil.Process, reaped: bool = False) -> float:
    """User + system seconds of ``p`` (with ``reaped``, also of its children that ended)."""
    try:
        t = p.cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system + (t.children_user + t.children_system if reaped else 0.0)


def _tree(p: psutil.Process) -> float:
    """CPU seconds of a process and all its descendants, living or ended."""
    try:
        children = p.children(recursive=True)
    except psutil.Error:
        children = []
    return _cpu(p, reaped=True) + sum(_cpu(c) for c in children)


class CpuMeter:
    """CPU seconds spent by each part of the system between two snapshots: this driver,
    nats-server, PostgreSQL (postmaster and every backend), and named processes."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.named: dict[str, int] = {}

    def watch(self, name: str, pid: int) -> None:
        self.named[name] = pid

    def forget(self, name: str) -> None:
        self.named.pop(name, None)

    def _nats(self) -> Iterator[psutil.Process]:
        for p in psutil.process_iter(["name", "cmdline"]):
            cmd = p.info["cmdline"] or []
            if p.info["name"] == "nats-server" and any(str(self.data_dir) in c for c in cmd):
                yield p

    def _postgres(self) -> float:
        pidfile = self.data_dir / "pg" / "postmaster.pid"
        try:
            return _tree(psutil.Process(int(pidfile.read_text().split()[0])))
        except (OSError, ValueError, psutil.Error):
            return 0.0

    def snapshot(self) -> dict[str, float]:
        me = resource.getrusage(resource.RUSAGE_SELF)
        machine = psutil.cpu_times()
        snap = {
            "machine": machine.user
            + machine.nice
            + machine.system
            + getattr(machine, "irq", 0)
            + getattr(machine, "softirq", 0)
            + getattr(machine, "steal", 0),
            "bench driver": me.ru_utime + me.ru_stime,
            "nats-server": sum(_cpu(p) for p in self._nats()),
            "postgresql": self._postgres(),
        }
        for name, pid in self.named.items():
            try:
                snap[name] = _tree(psutil.Process(pid))
            except psutil.Error:
                snap[name] = 0.0
        return snap

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """CPU seconds per part between two snapshots; ``other processes`` is what the rest
        of the machine (not this benchmark's system) used meanwhile."""
        spent = {k: after[k] - before.get(k, 0.0) for k in after}
        machine = spent.pop("machine")
        spent["other processes"] = max(0.0, machine - sum(spent.values()))
        return {k: round(v, 2) for k, v in spent.items()}
