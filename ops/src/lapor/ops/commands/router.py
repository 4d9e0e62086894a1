"""``lapor router``: the routing model of a running system, trained from its own log.

    lapor router train --author "Admin Diskominfo" [--seed 0] [--dry-run]
    lapor router models
    lapor router rollback --author "Admin Diskominfo"
    lapor router use m-0123456789ab --author "Admin Diskominfo"

``train`` reads the whole log, takes every human decision in it as a label
(``lapor.router.learning``: the unit that acted, the coordinator's disposition that was
not declined), adds the development part of the project's corpus, trains a calibrated
model (``lapor.router.training``, deterministic for a log and a seed), prints its figures
and publishes it (``lapor.router.model_store``): every router switches to it at once and
names its version in each later decision. ``rollback`` puts the previous model back in
force; ``use`` any model published before.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lapor.ops.reach import deployment
from lapor.services.cli import Command
from lapor.services.settings import Settings

if TYPE_CHECKING:
    from nats.js import JetStreamContext

    from lapor.router.model import TextModel
    from lapor.router.training import Example


def arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="router_command", required=True)
    train = sub.add_parser("train", help="train a model from the log's decisions and publish it")
    train.add_argument("--author", required=True, help="who makes the change (recorded)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--dry-run", action="store_true", help="train and report, publish nothing")
    sub.add_parser("models", help="the models put in force, oldest first")
    rollback = sub.add_parser("rollback", help="put the previous model back in force")
    rollback.add_argument("--author", required=True)
    use = sub.add_parser("use", help="put a model published before in force")
    use.add_argument("version")
    use.add_argument("--author", required=True)


def run(settings: Settings, args: argparse.Namespace) -> int:
    with deployment(settings, database=False) as reached:
        try:
            return asyncio.run(run_router(reached, args))
        except ValueError as error:
            print(f"lapor router {args.router_command}: {error}", file=sys.stderr)
            return 1


async def run_router(settings: Settings, args: argparse.Namespace) -> int:
    import nats

    from lapor.router.model_store import ModelStore

    nc = await nats.connect(settings.nats_servers)
    try:
        js, subjects = nc.jetstream(), settings.subjects
        store = ModelStore(
            js,
            rules_bucket=subjects.routing_rules_bucket,
            models_bucket=subjects.routing_models_bucket,
        )
        if args.router_command == "train":
            model = await train_from_log(js, settings, seed=args.seed)
            print(f"trained {model.version}: {model.info}")
            if not args.dry_run:
                record = await store.publish(model, author=args.author)
                print(f"in force as revision {record.revision}")
        elif args.router_command == "models":
            for r in await store.history():
                print(f"{r.revision:>4}  {r.at}  {r.version}  {r.author}  {r.info}")
        elif args.router_command == "rollback":
            record = await store.rollback(author=args.author)
            print(f"{record.version} in force again (revision {record.revision})")
        else:
            record = await store.use(args.version, author=args.author)
            print(f"{record.version} in force (revision {record.revision})")
    finally:
        await nc.close()
    return 0


async def train_from_log(
    js: JetStreamContext,
    settings: Settings,
    *,
    seed: int = 0,
    base: Sequence[Example] | None = None,
) -> TextModel:
    """A model trained on the log's labels and ``base`` (by default the development part
    of the project's corpus)."""
    from lapor.ops.audit import Entry, walk_log
    from lapor.router import corpus
    from lapor.router.domain import RoutingTable
    from lapor.router.learning import Labels
    from lapor.router.rules_store import RulesStore
    from lapor.router.training import train
    from lapor.shared.envelope import UnknownEvent, decode, parse

    class Gather:
        def __init__(self) -> None:
            self.labels, self.events = Labels(), 0

        def feed(self, entry: Entry) -> None:
            self.events += 1
            try:
                env = parse(entry.data)
                self.labels.add(env.complaint_id, decode(env))
            except (UnknownEvent, ValueError):
                pass  # not an event this version knows, or not a complaint's: no label

    subjects, stream = settings.subjects, settings.subjects.events_stream
    gather = Gather()
    state = (await js.stream_info(stream)).state
    if state.messages:
        await walk_log(js, stream, subjects, state.last_seq, state.messages, gather, None)
    table = await RulesStore.current(js, subjects.routing_rules_bucket) or RoutingTable.load()
    if base is None:
        base = corpus.examples(corpus.development())
    examples = [*base, *gather.labels.examples()]
    return await asyncio.to_thread(train, examples, table, seed=seed)


COMMAND = Command(
    help="train, publish, list and roll back the router's model",
    arguments=arguments,
    run=run,
    local_secret=False,
)
