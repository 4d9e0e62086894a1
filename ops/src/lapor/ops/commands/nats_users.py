"""``lapor nats-users FILE``: the NATS users of every unit in the OPD registry, written as
the server's authorization block (mode 0600), their passwords printed to hand out, and
each agency's consumer created (``lapor.ops.natsauth``)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
from pathlib import Path

from lapor.ops.reach import deployment
from lapor.services.cli import Command
from lapor.services.settings import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", type=Path, help="file for the authorization block (0600)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    with deployment(settings, database=False) as reached:
        asyncio.run(nats_users(reached, args.output))
    return 0


async def nats_users(settings: Settings, output: Path) -> None:
    """Generate the users of every unit in the OPD registry (include the file from the
    server configuration), print the passwords to hand out, and pre-create each agency's
    consumer, so that an agency needs no permission to create one."""
    import nats

    from lapor.ops import natsauth
    from lapor.shared.registry import load_registry

    registry, subjects = load_registry(settings.deployment), settings.subjects
    passwords = natsauth.agency_passwords(registry)
    service_password = secrets.token_urlsafe(24)
    natsauth.write_private(
        output,
        natsauth.authorization_config(
            registry, subjects, passwords, service_password=service_password
        ),
    )
    nc = await nats.connect(settings.nats_url)
    try:
        created = await natsauth.create_agency_consumers(nc.jetstream(), registry, subjects)
    finally:
        await nc.close()
    print(f"wrote {output}; {len(created)} agency consumers ready")
    print(f"service user {natsauth.SERVICE_USER}: {service_password}")
    for opd, password in sorted(passwords.items()):
        print(f"{opd}: {password}  (connect with inbox_prefix {natsauth.inbox_prefix(opd)})")


COMMAND = Command(
    help="write the NATS users and per-agency permissions, create consumers",
    arguments=arguments,
    run=run,
    local_secret=False,
)
