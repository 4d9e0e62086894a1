"""``lapor projections status | show NAME | skip NAME SEQ --reason --by``: where each read
model is, the event one stopped in front of, and the recorded decision to leave that event
out (``lapor.ops.projection_admin``)."""

from __future__ import annotations

import argparse
import asyncio

from lapor.ops.reach import deployment
from lapor.services.cli import Command
from lapor.services.settings import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="projections_command", required=True)
    sub.add_parser("status", help="each read model's position, and where one stopped")
    show = sub.add_parser("show", help="the event a read model stopped in front of")
    show.add_argument("projection")
    skip = sub.add_parser("skip", help="record the decision to leave that event out")
    skip.add_argument("projection")
    skip.add_argument("seq", type=int, help="the sequence it stopped at (see status)")
    skip.add_argument("--reason", required=True, help="why, for the record")
    skip.add_argument("--by", required=True, help="who decides, for the record")


def run(settings: Settings, args: argparse.Namespace) -> int:
    with deployment(settings) as reached:
        return asyncio.run(run_projections(reached, args))


async def run_projections(settings: Settings, args: argparse.Namespace) -> int:
    import asyncpg
    import nats

    from lapor.ops import projection_admin as admin

    conn = await asyncpg.connect(settings.database_url)
    nc = await nats.connect(settings.nats_servers)
    try:
        js, stream = nc.jetstream(), settings.subjects.events_stream
        match args.projections_command:
            case "status":
                end = (await js.stream_info(stream)).state.last_seq
                found = await admin.states(conn)
                print("\n".join(s.describe(end) for s in found) or "no read model has run yet")
                return 1 if any(s.stopped_seq is not None for s in found) else 0
            case "show":
                state = await admin.state_of(conn, args.projection)
                print(await admin.stopped_event(js, stream, state))
                return 0
            case _:
                try:
                    decided = await admin.record_skip(
                        conn, args.projection, args.seq, args.reason, args.by
                    )
                except ValueError as e:
                    print(f"lapor: {e}")
                    return 2
                print(f"{args.projection}: {decided.describe()}")
                print(
                    "the read model goes on at its next attempt (at most "
                    f"{settings.projection_retry_max_seconds:g} s)"
                )
                return 0
    finally:
        await nc.close()
        await conn.close()


COMMAND = Command(
    help="read models: where each is; skip a stopped one",
    arguments=arguments,
    run=run,
    local_secret=False,
)
