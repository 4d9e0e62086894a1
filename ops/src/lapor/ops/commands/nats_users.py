"""``lapor nats-users FILE [--state agencies.json]``: the NATS users file of the deployment,
written (mode 0600) from the agencies file (``lapor.ops.onboarding``): the service user
``lapor`` and every agency onboarded with ``lapor agency add``; and every unit's durable
consumer created, so that an agency needs no permission to create one.

The service user's password is made on the first run (or with
``--new-service-password``) and written to ``--service-password-file`` (0600), the only
copy: the agencies file keeps its bcrypt hash, the users file the same hash. Agencies'
credentials are kept as they are. Nothing secret is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from lapor.ops.commands.agency import DEFAULT_STATE
from lapor.ops.reach import deployment
from lapor.services.cli import Command
from lapor.services.settings import Settings

DEFAULT_SERVICE_PASSWORD_FILE = Path("nats-service-password")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", type=Path, help="the NATS users file to write (0600)")
    parser.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_STATE,
        help=f"the agencies file (default {DEFAULT_STATE}; made if missing)",
    )
    parser.add_argument(
        "--service-password-file",
        type=Path,
        default=DEFAULT_SERVICE_PASSWORD_FILE,
        help="where a new service password is written, mode 0600 "
        f"(default {DEFAULT_SERVICE_PASSWORD_FILE})",
    )
    parser.add_argument(
        "--new-service-password",
        action="store_true",
        help="replace the service user's password (every service needs the new NATS_URL)",
    )
    parser.add_argument(
        "--no-consumers",
        action="store_true",
        help="only write the files; do not create the agencies' consumers (no NATS needed)",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        write_users(settings, args)
    except (ValueError, OSError) as e:
        print(f"lapor nats-users: {e}", file=sys.stderr)
        return 2
    if not args.no_consumers:
        from lapor.ops.commands.agency import create_consumers
        from lapor.shared.registry import load_registry

        codes = [unit.code for unit in load_registry(settings.deployment).units]
        with deployment(settings, database=False) as reached:
            asyncio.run(create_consumers(reached, codes))
    return 0


def write_users(settings: Settings, args: argparse.Namespace) -> None:
    from lapor.ops import natsauth, onboarding

    state = onboarding.State.load(
        args.state, subject_root=settings.subject_root, deployment=settings.deployment
    )
    password = None
    if state.service_password_hash is None or args.new_service_password:
        password = state.new_service_password()
        onboarding.write_password(args.service_password_file, password)
    users = state.users_config()
    state.save(args.state)
    natsauth.write_private(args.output, users)
    if password is not None:
        print(
            f"service user {natsauth.SERVICE_USER}: new password written to "
            f"{args.service_password_file} (mode 0600); the services' NATS_URL is "
            f"tls://{natsauth.SERVICE_USER}:<that password>@<host>:4222"
        )
    agencies = ", ".join(sorted(state.agencies)) or "none yet (lapor agency add)"
    print(f"wrote {args.output}: service user {natsauth.SERVICE_USER}; agencies: {agencies}")
    print(f"kept the agencies file {args.state}")


COMMAND = Command(
    help="write the NATS users file (service user, onboarded agencies), create consumers",
    arguments=arguments,
    run=run,
    local_secret=False,
)
