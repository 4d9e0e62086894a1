"""``lapor demo``: a realistic batch of complaints submitted to a running system, most of
them resolved by their agencies, and the completion report per OPD (``lapor.devtools.demo``).
"""

from __future__ import annotations

import argparse

from lapor.services.cli import Command
from lapor.services.discovery import installed_services
from lapor.services.settings import Settings


def default_url(name: str) -> str | None:
    """Where a service installed here listens when ``lapor run`` runs it on its own port."""
    service = installed_services().get(name)
    return None if service is None else f"http://127.0.0.1:{service.port}"


def arguments(parser: argparse.ArgumentParser) -> None:
    for name in ("intake", "tracker", "analytics"):
        url = default_url(name)
        parser.add_argument(f"--{name}", default=url, required=url is None)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from lapor.devtools.demo import main as demo_main

    assert settings.auth_secret is not None
    secret = settings.auth_secret.get_secret_value()
    return demo_main(args.intake, args.tracker, args.analytics, secret)


COMMAND = Command(help="submit a demo batch to a running system", arguments=arguments, run=run)
