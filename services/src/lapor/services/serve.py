"""``lapor serve SERVICE``: one service under uvicorn, what a container runs.

It needs ``NATS_URL`` and ``DATABASE_URL`` (``lapor run`` sets them for its children).
"""

from __future__ import annotations

import argparse
import os

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
        help="processes sharing the port (intake only: the others follow the log in order)",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    return serve_one(settings, args.service, args.host, args.port, args.workers)


def serve_one(settings: Settings, name: str, host: str, port: int, workers: int = 1) -> int:
    import uvicorn

    services = installed_services()
    if name not in services:
        print(f"unknown service {name!r}; installed: {', '.join(sorted(services))}")
        return 2
    service = services[name]
    options = {"host": host, "port": port, "log_level": "warning", "access_log": False}
    if workers > 1:
        if not service.stateless:
            print(f"{name} follows the log in order: run one process (--workers 1)")
            return 2
        # Each worker builds its app from the environment, as a container would.
        if settings.auth_secret is not None:
            os.environ["LAPOR_AUTH_SECRET"] = settings.auth_secret.get_secret_value()
        uvicorn.run(service.app, factory=True, workers=workers, **options)
        return 0
    uvicorn.run(service.create_app(settings), **options)
    return 0


COMMAND = Command(help="run one service", arguments=arguments, run=run)
