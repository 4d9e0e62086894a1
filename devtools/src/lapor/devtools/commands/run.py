"""``lapor run [SERVICE ...] [--base-port N]``: the local system, for development.

Local infrastructure (``lapor.devtools.infra``), the streams and migrations, and every
installed service (``lapor.services.discovery``) in its own process on its own port, and in
front of them one address (``lapor.devtools.gateway``, on 8000: the portal at ``/``, the
APIs under ``/api/<service>``, as the Ingress routes them), all supervised
(``lapor.devtools.supervisor``) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import httpx

from lapor.devtools.files import write_whole
from lapor.devtools.infra import RUN_FILE, Infrastructure, supervised_infrastructure
from lapor.devtools.supervisor import Supervised
from lapor.services.bootstrap import bootstrap
from lapor.services.cli import Command
from lapor.services.discovery import Service, installed_services, local_ports
from lapor.services.settings import Settings

GATEWAY_PORT = 8000
"""The one address's port, shifted with ``--base-port`` like the services' (8080 and up)."""
GATEWAY_PORT_VARIABLE = "LAPOR_GATEWAY_PORT"
"""Sets it exactly (tests, or when the shifted port is taken)."""

EXAMPLE = (
    ' -H \'content-type: application/json\' -d \'{"title": "Jalan berlubang",'
    ' "body": "Jalan di depan Pasar Flamboyan berlubang besar", "category": "jalan"}\''
)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("services", nargs="*", help="default: all installed services")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--base-port",
        type=int,
        help="intake listens on it, tracker, analytics and router on the next three "
        "(default: each service's own port, 8080 and up); the one address moves with them",
    )
    parser.add_argument(
        "--gateway-port",
        type=int,
        help=f"the one address (default: {GATEWAY_PORT}, shifted with --base-port; "
        f"{GATEWAY_PORT_VARIABLE})",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    return run_local(settings, args.services, args.host, args.base_port, args.gateway_port)


def gateway_port(
    services: dict[str, Service], base_port: int | None, given: int | None = None
) -> int:
    """``given``, else ``LAPOR_GATEWAY_PORT``, else 8000 moved as far as ``--base-port``
    moves the services."""
    if given is None and os.environ.get(GATEWAY_PORT_VARIABLE):
        given = int(os.environ[GATEWAY_PORT_VARIABLE])
    if given is not None:
        return given
    if base_port is None or not services:
        return GATEWAY_PORT
    return GATEWAY_PORT + base_port - min(s.port for s in services.values())


def run_local(
    settings: Settings,
    names: list[str],
    host: str,
    base_port: int | None = None,
    front_port: int | None = None,
) -> int:
    """Start (or use) NATS and PostgreSQL, migrate, and run each service in its own process,
    as they would run in production, all under a supervisor: whichever dies is started
    again (the embedded servers on the same port and data). Ctrl-C or TERM stops
    everything, the services first."""
    installed = installed_services()
    every = local_ports(installed, base_port)
    front = gateway_port(installed, base_port, front_port)
    ports = {name: port for name, port in every.items() if not names or name in names}
    # Ctrl-C or a TERM from a process manager: both stop everything in order. (A shell that
    # starts us in the background may have set SIGINT to "ignore"; take it back.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with supervised_infrastructure(settings) as (infra, supervisor):
            try:
                settings = settings.model_copy(
                    update={"nats_url": infra.nats_url, "database_url": infra.database_url}
                )
                asyncio.run(bootstrap(settings))
                env = _service_env(settings, every)
                for name, port in ports.items():
                    supervisor.start(service_child(name, host, port, env))
                supervisor.start(gateway_child(host, front, ports, env))
                _announce(settings.data_dir, infra, host, ports, front)
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                # A second Ctrl-C must not cut the orderly stop short.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                print("\nstopping ...", flush=True)
            finally:
                (settings.data_dir / RUN_FILE).unlink(missing_ok=True)
    except KeyboardInterrupt:  # during the start of NATS or PostgreSQL
        print("\nstopped", flush=True)
    return 0


def _service_env(settings: Settings, ports: dict[str, int]) -> dict[str, str]:
    """The services' environment: the servers, the secret, and where each service is (a
    service that calls another's HTTP API, such as open311, finds it at
    ``LAPOR_<NAME>_URL``, shifted with ``--base-port`` like the ports)."""
    assert settings.nats_url and settings.database_url and settings.auth_secret
    return {
        **os.environ,
        "NATS_URL": settings.nats_url,
        "DATABASE_URL": settings.database_url,
        "LAPOR_AUTH_SECRET": settings.auth_secret.get_secret_value(),
        **{f"LAPOR_{name.upper()}_URL": f"http://127.0.0.1:{port}" for name, port in ports.items()},
    }


def service_child(name: str, host: str, port: int, env: dict[str, str]) -> Supervised:
    """``lapor serve NAME`` as a supervised child, ready when its /health/ready says so."""
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    ready_url = f"http://{probe_host}:{port}/health/ready"
    serve = ["serve", name, "--host", host, "--port", str(port)]
    return Supervised(
        name,
        [sys.executable, "-m", "lapor.services.cli", *serve],
        ready=lambda: httpx.get(ready_url, timeout=1).status_code == 200,
        env=env,
    )


def gateway_child(host: str, port: int, ports: dict[str, int], env: dict[str, str]) -> Supervised:
    """The one address (``lapor.devtools.gateway``) in front of the services on ``ports``,
    ready when it accepts connections."""
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    serve = ["--host", host, "--port", str(port)]
    serve += [f"--upstream={name}=http://{probe_host}:{p}" for name, p in ports.items()]

    def ready() -> bool:
        with socket.create_connection((probe_host, port), timeout=1):
            return True

    return Supervised(
        "gateway",
        [sys.executable, "-m", "lapor.devtools.gateway", *serve],
        ready=ready,
        env=env,
    )


def _announce(
    data_dir: Path, infra: Infrastructure, host: str, ports: dict[str, int], front: int
) -> None:
    urls = {name: f"http://{host}:{port}" for name, port in ports.items()}
    one = f"http://{host}:{front}"
    described = {
        "nats_url": infra.nats_url,
        "database_url": infra.database_url,
        "gateway": one,
        "services": urls,
    }
    # The chaos harness polls for this file while it is written: never a half of it.
    write_whole(data_dir / RUN_FILE, json.dumps(described, indent=2))
    print(f"\nOpen {one}/")
    print("  the portal at /, the APIs at /api/<service>/ (docs: /api/<service>/docs),")
    print("  Open311 at /open311/v2/")
    print(f"\nlapor is running ({infra.kind} infrastructure)")
    print(f"  NATS       {infra.nats_url}\n  PostgreSQL {infra.database_url}")
    print("  (lapor replay, audit and projections find this system by its data folder)")
    for name, url in urls.items():
        print(f"  {name:<10} {url}  (docs: /docs)")
    if "intake" in urls:
        print(f"Try:     curl -X POST {one}/api/intake/complaints" + EXAMPLE)
    print(
        "Staff sign in at /masuk: make an account first, e.g.\n"
        "  lapor accounts add rina --role coordinator\n"
        "  lapor accounts add budi --role officer --opd dpupr"
    )
    print("A process that dies is started again. Ctrl-C stops everything.\n", flush=True)


COMMAND = Command(help="run the system locally", arguments=arguments, run=run)
