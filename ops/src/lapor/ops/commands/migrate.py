"""``lapor migrate``: declare the streams and migrate PostgreSQL (the deploy Job).

Idempotent; the only place streams are declared (``lapor.services.bootstrap``).
``lapor migrate --check`` changes nothing: it exits 0 when the streams, the rules bucket
and (with ``DATABASE_URL``) every migration are in place, else 1 naming what is missing;
each service's initContainer waits on it. It needs only ``NATS_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from lapor.ops.reach import deployment
from lapor.services.bootstrap import bootstrap, missing
from lapor.services.cli import Command
from lapor.services.settings import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 0 only if all is in place"
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.check:
        with deployment(settings, database=settings.database_url is not None) as reached:
            absent = asyncio.run(missing(reached))
        if absent:
            print(f"lapor migrate --check: missing {', '.join(absent)}", file=sys.stderr)
            return 1
        print("streams, bucket and migrations in place")
        return 0
    with deployment(settings) as reached:
        applied = asyncio.run(bootstrap(reached))
        print(f"streams declared; {len(applied)} SQL migration(s) applied")
    return 0


COMMAND = Command(
    help="declare streams and migrate PostgreSQL (--check: only tell whether it is done)",
    arguments=arguments,
    run=run,
    local_secret=False,
)
