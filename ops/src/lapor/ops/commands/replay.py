"""``lapor replay [PROJECTION ...] --verify | --swap [--from-seq N | --from-time T]
[--partitions N]``: rebuild read models from the log into fresh tables, then list every
difference or swap them in (``lapor.ops.replay``). The rebuild runs in ``N`` processes
split by complaint (``lapor.ops.partitions``; by default one per CPU, 1 for one process).

Needs ``NATS_URL`` and ``DATABASE_URL`` (the live read models); in production also
``LAPOR_REBUILD_DATABASE_URL``, the database provisioned for rebuilds, so that nothing is
created on the live server. Exit codes: 0 clean (verified without a difference, or
swapped), 1 differences or a rebuild that stopped, 2 could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

from lapor.ops.partitions import MAX_PARTITIONS
from lapor.ops.reach import deployment
from lapor.services.cli import Command
from lapor.services.settings import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("projections", nargs="*", help="default: all installed")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--verify", action="store_true", help="list every difference")
    how.add_argument("--swap", action="store_true", help="replace the live tables")
    parser.add_argument("--from-seq", type=int, default=1)
    parser.add_argument("--from-time", type=datetime.fromisoformat)
    parser.add_argument(
        "--partitions",
        type=_partitions,
        default=None,
        help="processes the rebuild runs in, split by complaint (default: one per CPU, "
        f"at most {MAX_PARTITIONS}; 1: one process)",
    )


def _partitions(text: str) -> int:
    n = int(text)
    if not 1 <= n <= MAX_PARTITIONS:
        raise argparse.ArgumentTypeError(f"between 1 and {MAX_PARTITIONS}")
    return n


def run(settings: Settings, args: argparse.Namespace) -> int:
    import asyncpg
    from nats.errors import NoServersError

    try:
        with deployment(settings) as reached:
            return asyncio.run(run_replay(reached, args))
    except (RuntimeError, ValueError, asyncpg.PostgresError, NoServersError, OSError) as e:
        # A URL not set (Unreachable), the rebuild database refused or in use, an unknown
        # read model, a server that refuses: one line, and 2, never the verdict's 1.
        print(f"lapor replay: {e or type(e).__name__}", file=sys.stderr)
        return 2


async def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    from lapor.ops.partitions import default_partitions
    from lapor.ops.replay import replay

    report = await replay(
        settings,
        args.projections,
        mode="verify" if args.verify else "swap",
        from_seq=args.from_seq,
        from_time=args.from_time,
        # A bar on a terminal; a Job's log gets the summary below, not a line per redraw.
        show_progress=sys.stderr.isatty(),
        partitions=args.partitions or default_partitions(),
    )
    for name, verdict in report.items():
        if verdict.stopped is not None:
            outcome = "not swapped: the rebuild stopped" if args.swap else "rebuild stopped"
        else:
            outcome = "swapped" if args.swap else f"{len(verdict.differences)} difference(s)"
        print(f"{name}: {outcome}", *verdict.describe(), sep="\n")
    return 0 if all(v.clean for v in report.values()) else 1


COMMAND = Command(
    help="rebuild read models from the log; verify or swap",
    arguments=arguments,
    run=run,
    local_secret=False,
)
