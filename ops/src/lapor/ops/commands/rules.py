"""``lapor rules``: an operator changes the routing rules of a running system.

    lapor rules publish routing_table.toml --author "Admin Diskominfo"
    lapor rules history

The table is validated before it is stored; every router watching the bucket switches to
it at once, and each later routing decision names its version. The router's
``rules_store`` reads and writes the bucket; this is only the operator's side of it.
``lapor-rules`` is the same command under its earlier name.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from lapor.ops.reach import Unreachable, deployment
from lapor.services.cli import Command
from lapor.services.settings import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rules_command", required=True)
    publish = sub.add_parser("publish", help="validate and publish a routing table")
    publish.add_argument("table", type=Path)
    publish.add_argument("--author", required=True, help="who makes the change (recorded)")
    sub.add_parser("history", help="every published table: revision, time, version, author")
    # Messages name the command as it was called: ``lapor rules`` or ``lapor-rules``.
    parser.set_defaults(rules_prog=parser.prog)


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        with deployment(settings, database=False) as reached:
            return asyncio.run(_run(args, reached))
    except Unreachable as e:
        print(f"{args.rules_prog}: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"{args.rules_prog}: the table was refused: {e}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    import nats

    from lapor.router.rules_store import RulesStore

    nc = await nats.connect(settings.nats_servers)
    js, bucket = nc.jetstream(), settings.subjects.routing_rules_bucket
    try:
        if args.rules_command == "publish":
            text = args.table.read_text(encoding="utf-8")
            revision = await RulesStore.publish(
                js, text, bucket=bucket, author=args.author, deployment=settings.deployment
            )
            print(f"published as revision {revision}")
        else:
            for change in await RulesStore.changes(js, bucket):
                print(f"{change.revision:>4}  {change.at}  {change.version:<24}  {change.author}")
    finally:
        await nc.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``lapor-rules``: the console script of the same command."""
    parser = argparse.ArgumentParser(prog="lapor-rules", description=__doc__.split("\n\n")[0])
    arguments(parser)
    return run(Settings(), parser.parse_args(argv))


COMMAND = Command(
    help="publish the routing rules of a running system; their history",
    arguments=arguments,
    run=run,
    local_secret=False,
)

if __name__ == "__main__":
    sys.exit(main())
