"""``lapor serve SERVICE [--role ROLE]``: one service under uvicorn, what a container runs.

It needs ``NATS_URL`` and ``DATABASE_URL`` (``lapor run`` sets them for its children).
``--role`` (or ``LAPOR_ROLE``) runs one of the service's roles rather than all of its parts
(``lapor.services.runtime.Part``): the tracker's and analytics' ``api`` and
``projector``, the router's ``routing`` and ``fanout``; intake has only ``all``.
"""

from __future__ import annotations

import argparse
import os
import sys

from lapor.services.cli import Command
from lapor.services.discovery import installed_services
from lapor.services.settings import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the port (intake, and a role that follows no log in order: "
        "the api roles, the router's routing)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log a line per request (uvicorn's access log; JSON like every line)",
    )
    parser.add_argument(
        "--role",
        default=None,
        help="which of its parts the service runs (default LAPOR_ROLE, else all): tracker and "
        "analytics api|projector, router routing|fanout, intake all",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.role is not None:
        settings = settings.model_copy(update={"role": args.role})
    return serve_one(settings, args.service, args.host, args.port, args.workers, args.access_log)


def serve_one(
    settings: Settings,
    name: str,
    host: str,
    port: int,
    workers: int = 1,
    access_log: bool = False,
) -> int:
    import uvicorn

    from lapor.services.runtime import UnknownRole

    services = installed_services()
    if name not in services:
        print(f"unknown service {name!r}; installed: {', '.join(sorted(services))}")
        return 2
    service = services[name]
    try:
        # Builds the app only (nothing connects before uvicorn starts it): a role the
        # service does not have is one line here, not a traceback in every worker.
        app = service.create_app(settings)
    except UnknownRole as e:
        print(f"lapor serve: {e}", file=sys.stderr)
        return 2
    # No log_config: uvicorn's loggers are left to the root handler create_app set up
    # (lapor.services.logging), so every line is rendered alike, JSON in json mode.
    options = {
        "host": host,
        "port": port,
        "log_level": None,  # the levels are configure_logging's
        "access_log": access_log,
        "log_config": None,
    }
    if workers > 1:
        if not (service.stateless or app.state.part.scales_out):
            role = "" if settings.role == "all" else f" (role {settings.role})"
            print(f"{name}{role} follows the log in order: run one process (--workers 1)")
            return 2
        # Each worker builds its app from the environment, as a container would.
        share_metrics()
        if settings.auth_secret is not None:
            os.environ["LAPOR_AUTH_SECRET"] = settings.auth_secret.get_secret_value()
        os.environ["LAPOR_ROLE"] = settings.role
        uvicorn.run(service.app, factory=True, workers=workers, **options)
        return 0
    uvicorn.run(app, **options)
    return 0


def share_metrics() -> None:
    """Worker processes behind one port share their Prometheus counters through files
    (prometheus_client's multiprocess mode), so a scrape of any of them counts all.

    The files start empty for each group of workers: a fresh folder, inside the one
    ``PROMETHEUS_MULTIPROC_DIR`` names if it is set (an inherited folder may hold another
    process's counts, which would be counted again)."""
    import tempfile

    parent = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lapor-metrics-", dir=parent)


COMMAND = Command(help="run one service (or one of its roles)", arguments=arguments, run=run)
