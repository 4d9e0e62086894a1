"""``lapor migrate``: declare the streams and migrate PostgreSQL (the deploy Job).

Idempotent; the only place streams are declared (``lapor.services.bootstrap``).
"""

from __future__ import annotations

import argparse
import asyncio

from lapor.ops.reach import deployment
from lapor.services.bootstrap import bootstrap
from lapor.services.cli import Command
from lapor.services.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    with deployment(settings) as reached:
        applied = asyncio.run(bootstrap(reached))
        print(f"streams declared; {len(applied)} SQL migration(s) applied")
    return 0


COMMAND = Command(
    help="declare streams and migrate PostgreSQL",
    arguments=lambda parser: None,
    run=run,
    local_secret=False,
)
