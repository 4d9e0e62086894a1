"""The ``lapor`` command.

lapor run [SERVICE ...]   local infrastructure + migrate + the services, until Ctrl-C
lapor serve SERVICE       one service (what a container runs); needs NATS_URL, DATABASE_URL
lapor migrate             declare streams and migrate PostgreSQL
lapor demo                submit a realistic batch to a running system, print completion
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points

import httpx

from lapor.services.bootstrap import bootstrap
from lapor.services.infra import infrastructure
from lapor.services.logging import configure_logging
from lapor.services.settings import Settings

EXAMPLE = (
    ' -H \'content-type: application/json\' -d \'{"title": "Jalan berlubang",'
    ' "body": "Jalan di depan Pasar Flamboyan berlubang besar", "category": "jalan"}\''
)

# Local ports, in the order the services are listed by `lapor run`.
PORTS = {"intake": 8080, "tracker": 8081, "analytics": 8082, "router": 8083}


def service_factories() -> dict[str, object]:
    """Installed services, from the ``lapor.services`` entry point group."""
    return {ep.name: ep for ep in entry_points(group="lapor.services")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lapor", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the system locally")
    run.add_argument("services", nargs="*", help="default: all installed services")
    run.add_argument("--host", default="127.0.0.1")
    serve = sub.add_parser("serve", help="run one service")
    serve.add_argument("service")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8080)
    sub.add_parser("migrate", help="declare streams and migrate PostgreSQL")
    demo = sub.add_parser("demo", help="submit a demo batch to a running system")
    demo.add_argument("--intake", default=f"http://127.0.0.1:{PORTS['intake']}")
    demo.add_argument("--tracker", default=f"http://127.0.0.1:{PORTS['tracker']}")
    demo.add_argument("--analytics", default=f"http://127.0.0.1:{PORTS['analytics']}")
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    match args.command:
        case "run":
            return run_local(settings, args.services, args.host)
        case "serve":
            return serve_one(settings, args.service, args.host, args.port)
        case "migrate":
            with infrastructure(settings) as infra:
                applied = asyncio.run(bootstrap(_with_urls(settings, infra)))
                print(f"streams declared; {len(applied)} SQL migration(s) applied")
            return 0
        case "demo":
            from lapor.services.demo import main as demo_main

            return demo_main(args.intake, args.tracker, args.analytics)
    return 2


def _with_urls(settings: Settings, infra) -> Settings:
    return settings.model_copy(
        update={"nats_url": infra.nats_url, "database_url": infra.database_url}
    )


def serve_one(settings: Settings, name: str, host: str, port: int) -> int:
    import uvicorn

    factories = service_factories()
    if name not in factories:
        print(f"unknown service {name!r}; installed: {', '.join(sorted(factories))}")
        return 2
    app = factories[name].load()(settings)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0


def run_local(settings: Settings, names: list[str], host: str) -> int:
    """Start (or use) NATS and PostgreSQL, migrate, and run each service in its own process,
    as they would run in production. Ctrl-C stops everything."""
    names = names or [n for n in PORTS if n in service_factories()]
    # Ctrl-C or a TERM from a process manager: both stop everything in order. (A shell that
    # starts us in the background may have set SIGINT to "ignore"; take it back.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with infrastructure(settings) as infra:
        settings = _with_urls(settings, infra)
        asyncio.run(bootstrap(settings))
        env = {**os.environ, "NATS_URL": infra.nats_url, "DATABASE_URL": infra.database_url}
        procs = {
            name: subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lapor.services.cli",
                    "serve",
                    name,
                    "--host",
                    host,
                    "--port",
                    str(PORTS[name]),
                ],
                env=env,
            )
            for name in names
        }
        try:
            _wait_ready(host, names, procs)
            print(f"\nlapor is running ({infra.kind} infrastructure: {infra.nats_url})")
            for name in names:
                print(f"  {name:<10} http://{host}:{PORTS[name]}  (docs: /docs)")
            print(f"Try:     curl -X POST http://{host}:{PORTS['intake']}/complaints" + EXAMPLE)
            print("Ctrl-C stops everything.\n", flush=True)
            while all(p.poll() is None for p in procs.values()):
                time.sleep(0.5)
            failed = [n for n, p in procs.items() if p.poll() is not None]
            print(f"service(s) stopped unexpectedly: {', '.join(failed)}")
            return 1
        except KeyboardInterrupt:
            print("\nstopping ...")
            return 0
        finally:
            _stop(procs.values())


def _wait_ready(host: str, names: list[str], procs: dict, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        for name in list(pending):
            if procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited during start-up")
            try:
                r = httpx.get(f"http://{host}:{PORTS[name]}/health/ready", timeout=1)
                if r.status_code == 200:
                    pending.discard(name)
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready after {timeout}s: {', '.join(sorted(pending))}")
        time.sleep(0.2)


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()  # uvicorn shuts down gracefully on TERM
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def run() -> None:
    """Console entry point: errors a user can act on are one line, not a traceback."""
    try:
        sys.exit(main())
    except (RuntimeError, TimeoutError, ValueError) as e:
        sys.exit(f"lapor: {e}")


if __name__ == "__main__":
    run()
