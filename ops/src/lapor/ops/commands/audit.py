"""``lapor audit verify [--anchor N:digest] [--no-keep]`` checks the hash chains of the whole
log against the given anchors and those kept by earlier runs, and keeps its own when clean;
``lapor audit anchors [--forget --by NAME --reason TEXT]`` lists (or drops) the kept ones;
``lapor audit history TRACKING_ID`` tells who did what and when, each entry checked
(``lapor.ops.audit``). Only NATS is needed: ``NATS_URL``, no ``DATABASE_URL``.

Exit codes: 0 intact, 1 findings, 2 could not run (a server not given or not answering).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lapor.ops.reach import Unreachable, deployment
from lapor.services.cli import Command
from lapor.services.settings import Settings

if TYPE_CHECKING:
    from lapor.ops.audit import Anchor

FINDINGS, COULD_NOT_RUN = 1, 2


def arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", required=True)
    check = sub.add_parser(
        "verify", help="report altered, missing, reordered events and a truncated log"
    )
    check.add_argument(
        "--anchor", action="append", default=[], help="N:digest of a past run (repeatable)"
    )
    check.add_argument(
        "--no-keep",
        dest="keep",
        action="store_false",
        help="keep no anchor of this run (compare only)",
    )
    anchors = sub.add_parser("anchors", help="the anchors kept by earlier runs")
    anchors.add_argument("--forget", action="store_true", help="drop them (after a restore)")
    anchors.add_argument("--by", help="who decides to forget them, for the record")
    anchors.add_argument("--reason", help="why, for the record")
    history = sub.add_parser("history", help="who did what and when, verified")
    history.add_argument("tracking_id")


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.audit_command == "anchors" and args.forget and not (args.by and args.reason):
        print("lapor audit anchors: --forget needs --by and --reason", file=sys.stderr)
        return COULD_NOT_RUN
    from nats.errors import NoServersError
    from nats.js.errors import NotFoundError

    from lapor.ops.audit import Anchor

    prog = f"lapor audit {args.audit_command}"
    try:
        anchors = [Anchor.parse(a) for a in getattr(args, "anchor", [])]
        with deployment(settings, database=False) as reached:
            return asyncio.run(run_audit(reached, args, anchors))
    except NotFoundError:
        stream = settings.subjects.events_stream
        print(f"{prog}: no stream {stream} on that server (run lapor migrate)", file=sys.stderr)
    except (Unreachable, ValueError, NoServersError, OSError) as e:
        print(f"{prog}: {e or type(e).__name__}", file=sys.stderr)
    return COULD_NOT_RUN


async def run_audit(
    settings: Settings, args: argparse.Namespace, anchors: Sequence[Anchor] = ()
) -> int:
    import nats

    from lapor.ops import audit

    nc = await nats.connect(settings.nats_servers)
    try:
        js, subjects = nc.jetstream(), settings.subjects
        stream = subjects.events_stream
        store = audit.AnchorStore(js, subjects, replicas=settings.stream_replicas)
        if args.audit_command == "history":
            history = await audit.complaint_history(js, subjects, args.tracking_id)
            print("\n".join(audit.describe_history(history)))
            return 0 if all(h["chain"] == "ok" for h in history) else FINDINGS
        if args.audit_command == "anchors":
            if args.forget:
                dropped = await store.forget(stream, by=args.by, reason=args.reason)
                print(f"{len(dropped)} anchor(s) of {stream} forgotten in {store.bucket}")
                return 0
            kept = await store.kept(stream)
            lines = [k.describe() for k in kept] or [f"no anchor kept in {store.bucket}"]
            print("\n".join(audit.printable(line) for line in lines))
            return 0
        result = await audit.verify_kept(
            js, subjects, anchors=anchors, keep=args.keep, replicas=settings.stream_replicas
        )
        print("\n".join(result.describe()))
        return 0 if result.report.ok else FINDINGS
    finally:
        await nc.close()


COMMAND = Command(
    help="verify the hash chains against kept anchors; one complaint's history",
    arguments=arguments,
    run=run,
    local_secret=False,
)
