"""``lapor agency add | rotate | remove | list | consumers``: onboard agencies onto the
deployment's NATS, each with its own credential (``lapor.ops.onboarding``).

``add``, ``rotate`` and ``remove`` change the agencies file (``--state``), regenerate the
NATS users file (``--users``) from it, and write a new seed to ``--credentials-dir``. They
never talk to NATS, so they run where the agencies file is kept (an operator's machine);
a change takes effect when the users file reaches the NATS servers and they reload.
``consumers`` runs where NATS is reachable as the ops user ``lapor`` and creates the agencies'
durable consumers. No secret is ever printed: a seed goes to a file (0600) whose path is
printed. The procedure: ``deploy/docs/agencies.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lapor.services.cli import Command
from lapor.services.settings import Settings

if TYPE_CHECKING:
    from lapor.ops.onboarding import State
    from lapor.shared.registry import Registry

DEFAULT_STATE = Path("agencies.json")
DEFAULT_USERS = Path("users.conf")
DEFAULT_CREDENTIALS = Path("agency-credentials")
DEFAULT_PUBLIC_URL = "wss://NATS_PUBLIC_HOST"
"""Agencies come in over WebSocket through the ingress (deploy/nats/values.yaml)."""
USERS_SECRET = "lapor-nats-users"
"""The Kubernetes Secret the NATS servers mount the users file from (key ``users.conf``)."""
STATE_SECRET = "lapor-agencies"
"""The Kubernetes Secret that keeps the agencies file (key ``agencies.json``)."""


def arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="agency_command", required=True)

    add = sub.add_parser(
        "add",
        help="onboard a unit: a new nkey, its seed written to a file",
        description="Onboard OPD, a unit of the deployment's OPD registry "
        "(LAPOR_DEPLOYMENT). A code outside the registry is refused: the router never "
        "disposes a complaint to it, so its consumer would stay empty.",
    )
    add.add_argument("opd", help="the unit's code in the OPD registry, e.g. dpupr")
    add.add_argument(
        "--name",
        default="",
        help="who the credential is issued to (a person or a system), recorded in the "
        "agencies file (default: the unit's name)",
    )
    rotate = sub.add_parser("rotate", help="a new credential for OPD; the old one is revoked")
    rotate.add_argument("opd")
    remove = sub.add_parser("remove", help="offboard OPD: its credential is revoked")
    remove.add_argument("opd")
    for p in (add, rotate, remove):
        _files(p)
    for p in (add, rotate):
        p.add_argument(
            "--public-url",
            default=DEFAULT_PUBLIC_URL,
            help="the NATS address agencies connect to, for the printed instructions "
            f"(default {DEFAULT_PUBLIC_URL}: the WebSocket ingress of deploy/nats/values.yaml)",
        )

    listing = sub.add_parser("list", help="the onboarded agencies (public keys, no secrets)")
    listing.add_argument("--state", type=Path, default=DEFAULT_STATE)

    consumers = sub.add_parser(
        "consumers",
        help="create agencies' durable consumers (as the ops user lapor, NATS_URL)",
    )
    consumers.add_argument("opd", nargs="*", help="the units (default: every unit of the registry)")


def _files(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_STATE,
        help=f"the agencies file (default {DEFAULT_STATE})",
    )
    p.add_argument(
        "--users",
        type=Path,
        default=DEFAULT_USERS,
        help=f"the NATS users file, regenerated (default {DEFAULT_USERS})",
    )
    p.add_argument(
        "--credentials-dir",
        type=Path,
        default=DEFAULT_CREDENTIALS,
        help=f"where seeds are written as <OPD>.nk, mode 0600 (default {DEFAULT_CREDENTIALS})",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.agency_command == "consumers":
            return consumers(settings, args.opd)
        return change(settings, args)
    except (ValueError, OSError) as e:  # one line, not a traceback
        print(f"lapor agency: {e}", file=sys.stderr)
        return 2


def change(settings: Settings, args: argparse.Namespace) -> int:
    """``add``, ``rotate``, ``remove``, ``list``: the agencies file and what follows."""
    from lapor.ops import natsauth, onboarding
    from lapor.shared.registry import load_registry

    registry = load_registry(settings.deployment)
    state = onboarding.State.load(
        args.state, subject_root=settings.subject_root, deployment=settings.deployment
    )
    what, opd = args.agency_command, getattr(args, "opd", None)
    if what == "list":
        print(listing(state, registry))
        return 0

    key = removed = None
    if what == "add":
        key = state.add(registry, opd, args.name)
    elif what == "rotate":
        key = state.rotate(opd)
    else:
        removed = state.remove(opd)
    users = state.users_config()  # refuses before anything is written, e.g. no service users

    # The seed first: if a later step fails, nothing accepts the new key yet.
    seed = onboarding.write_seed(args.credentials_dir, opd, key) if key else None
    state.save(args.state)
    natsauth.write_private(args.users, users)

    unit = registry.get(opd)
    label = f"{opd} ({unit.name})" if unit else opd
    if removed is not None:
        print(f"removed {label}: its key {removed.public_key} is revoked")
        copy = onboarding.seed_path(args.credentials_dir, opd)
        if copy.exists():
            copy.unlink()
            print(f"deleted the operator's copy of its seed, {copy}")
    else:
        assert key is not None and seed is not None
        verb = "added" if what == "add" else "new credential for"
        print(f"{verb} {label}, issued to {state.agencies[opd].holder}")
        print(f"  public key {key.public}")
        print(f"  seed (the secret) written to {seed.resolve()} (mode 0600)")
        print("  hand it to the agency over a private channel, then delete this copy")
    print(f"wrote {args.state} and {args.users} (mode 0600)")
    print(
        f"next: put {args.state} into the Secret {STATE_SECRET}, {args.users} into "
        f"{USERS_SECRET}, and reload NATS;"
    )
    if what == "add":
        print(f"  once: lapor agency consumers {opd}  (where NATS_URL is the ops user lapor's)")
    elif what == "rotate":
        print("  from the reload on the old credential is refused")
    else:
        print(f"  from the reload {opd} is refused; its consumer stays, keeping its place")
        return 0
    print()
    assert seed is not None
    print(how_to_subscribe(state, opd, seed.name, args.public_url))
    return 0


def how_to_subscribe(state: State, opd: str, seed_file: str, public_url: str) -> str:
    """What the agency needs to know, besides its seed."""
    from lapor.ops import natsauth

    subjects = state.subjects
    return "\n".join(
        [
            f"How {opd} subscribes:",
            f"  server        {public_url}",
            f"  credential    the nkey seed file {seed_file}",
            f"  stream        {subjects.agency_stream}",
            f"  consumer      {natsauth.consumer_name(opd)} "
            "(a durable pull consumer: bind to it; creating one is refused)",
            f"  subject       {subjects.agency_all(opd)} (the consumer's filter)",
            f"  inbox prefix  {natsauth.inbox_prefix(opd)} (connect with it; others are refused)",
            "  example client (pip install 'nats-py[nkeys,aiohttp]'):",
            f"    python examples/agency_client.py --server {public_url} --opd {opd} "
            f"--seed {seed_file} --root {state.subject_root}",
        ]
    )


def listing(state: State, registry: Registry) -> str:
    """The onboarded agencies: who holds each credential, since when, its public key."""
    missing = state.missing_roles()
    service = f"not set: {', '.join(missing)} (lapor nats-users)" if missing else "set"
    lines = [
        f"subject root {state.subject_root}, deployment {state.deployment}, service users {service}"
    ]
    if not state.agencies:
        lines.append("no agency onboarded")
    for opd in sorted(state.agencies):
        a = state.agencies[opd]
        unit = registry.get(opd)
        rotated = f", rotated {a.rotated_at}" if a.rotated_at else ""
        lines.append(
            f"{opd}: {unit.name if unit else 'not in the registry'}; issued to {a.holder}; "
            f"added {a.added_at}{rotated}; {a.public_key}"
        )
    if state.revoked:
        lines.append(f"revoked keys: {len(state.revoked)} (listed in the agencies file)")
    return "\n".join(lines)


def consumers(settings: Settings, opds: list[str]) -> int:
    """Create the durable of each unit named (default: every unit of the registry)."""
    from lapor.ops.reach import deployment
    from lapor.shared.registry import load_registry

    registry = load_registry(settings.deployment)
    unknown = [opd for opd in opds if opd not in registry]
    if unknown:
        raise ValueError(f"not in the OPD registry: {', '.join(unknown)}")
    with deployment(settings, database=False) as reached:
        asyncio.run(create_consumers(reached, opds or [u.code for u in registry.units]))
    return 0


async def create_consumers(settings: Settings, opds: list[str]) -> list[str]:
    """The durables of ``opds``, created as the user of ``NATS_URL`` (the ops user)."""
    import nats

    from lapor.ops import natsauth

    nc = await nats.connect(settings.nats_servers)
    try:
        js = nc.jetstream()
        names = [await natsauth.create_agency_consumer(js, c, settings.subjects) for c in opds]
    finally:
        await nc.close()
    print(f"{len(names)} agency consumers ready on {settings.subjects.agency_stream}")
    return names


COMMAND = Command(
    help="onboard agencies with their own NATS credentials: add, rotate, remove, list",
    arguments=arguments,
    run=run,
    local_secret=False,
)
