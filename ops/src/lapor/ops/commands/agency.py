"""``lapor agency``: agency onboarding (being written)."""

from __future__ import annotations

import argparse

from lapor.services.cli import Command
from lapor.services.settings import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(settings: Settings, args: argparse.Namespace) -> int:
    return 2


COMMAND = Command(
    help="onboard agencies: NATS credentials", arguments=arguments, run=run, local_secret=False
)
