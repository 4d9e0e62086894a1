"""``lapor audit verify [--anchor N:digest]`` checks the hash chains of the whole log;
``lapor audit history TRACKING_ID`` tells who did what and when, each entry checked
(``lapor.ops.audit``)."""

from __future__ import annotations

import argparse
import asyncio

from lapor.ops.reach import deployment
from lapor.services.cli import Command
from lapor.services.settings import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", required=True)
    check = sub.add_parser("verify", help="report altered, missing, reordered events")
    check.add_argument("--anchor", action="append", default=[], help="N:digest of a past run")
    history = sub.add_parser("history", help="who did what and when, verified")
    history.add_argument("tracking_id")


def run(settings: Settings, args: argparse.Namespace) -> int:
    with deployment(settings) as reached:
        return asyncio.run(run_audit(reached, args))


async def run_audit(settings: Settings, args: argparse.Namespace) -> int:
    import nats

    from lapor.ops import audit

    nc = await nats.connect(settings.nats_url)
    try:
        js, subjects = nc.jetstream(), settings.subjects
        if args.audit_command == "history":
            history = await audit.complaint_history(js, subjects, args.tracking_id)
            print("\n".join(audit.describe_history(history)))
            return 0 if all(h["chain"] == "ok" for h in history) else 1
        anchors = [audit.Anchor.parse(a) for a in args.anchor]
        report = await audit.verify(js, subjects.events_stream, subjects, anchors=anchors)
        print("\n".join(report.describe()))
        return 0 if report.ok else 1
    finally:
        await nc.close()


COMMAND = Command(
    help="verify the hash chains; one complaint's history", arguments=arguments, run=run
)
