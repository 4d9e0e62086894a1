"""``lapor nats-users FILE [--state agencies.json]``: the NATS users file of the deployment,
written (mode 0600) from the agencies file (``lapor.ops.onboarding``): the ops user
``lapor``, one user per service (``intake``, ``router``, ``tracker``, ``analytics``, each
with least privileges: ``lapor.ops.natsauth.service_permissions``) and every agency
onboarded with ``lapor agency add``; and every unit's durable consumer created, so that an
agency needs no permission to create one.

A user's password is made when it has none yet (the first run; the four service users on
the first run after an upgrade from the single service user, whose password stays the ops
user's), or with ``--new-service-password`` (all) or ``--new-password ROLE``. The ops
user's goes to ``--service-password-file``, each service's to
``--passwords-dir/<role>``: files of mode 0600, the only copies; the agencies file and the
users file keep bcrypt hashes. Agencies' credentials are kept as they are. Nothing secret
is printed.
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
DEFAULT_PASSWORDS_DIR = Path("nats-passwords")


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
        help="where a new password of the ops user lapor is written, mode 0600 "
        f"(default {DEFAULT_SERVICE_PASSWORD_FILE})",
    )
    parser.add_argument(
        "--passwords-dir",
        type=Path,
        default=DEFAULT_PASSWORDS_DIR,
        help="where a service's new password is written as <role>, mode 0600 in a 0700 "
        f"folder (default {DEFAULT_PASSWORDS_DIR})",
    )
    parser.add_argument(
        "--new-service-password",
        action="store_true",
        help="replace every service user's password and the ops user's",
    )
    parser.add_argument(
        "--new-password",
        action="append",
        default=[],
        metavar="ROLE",
        help="replace the password of one role's user: intake, router, tracker, analytics "
        "or ops (repeatable)",
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
    for role in args.new_password:
        natsauth.user_of(role)  # an unknown role is refused before anything is written
    renew = set(natsauth.ROLES if args.new_service_password else args.new_password)
    renew |= set(state.missing_roles())
    written: list[tuple[str, Path]] = []
    for role in natsauth.ROLES:
        if role not in renew:
            continue
        password = state.new_service_password(role)
        path = password_path(args, role)
        if role == natsauth.OPS:
            onboarding.write_password(path, password)
        else:
            onboarding.write_password_in(args.passwords_dir, role, password)
        written.append((role, path))
    users = state.users_config()
    state.save(args.state)
    natsauth.write_private(args.output, users)
    for role, path in written:
        user = natsauth.user_of(role)
        print(
            f"user {user} ({role}): new password written to {path} (mode 0600); its NATS_URL "
            f"is tls://{user}:<that password>@<host>:4222 (Secret {secret_of(role)})"
        )
    agencies = ", ".join(sorted(state.agencies)) or "none yet (lapor agency add)"
    roles = ", ".join(natsauth.user_of(role) for role in natsauth.ROLES)
    print(f"wrote {args.output}: service users {roles}; agencies: {agencies}")
    print(f"kept the agencies file {args.state}")


def password_path(args: argparse.Namespace, role: str) -> Path:
    """Where a new password of ``role``'s user is written."""
    from lapor.ops import natsauth

    if role == natsauth.OPS:
        return args.service_password_file
    return args.passwords_dir / role


def secret_of(role: str) -> str:
    """The Kubernetes Secret holding the ``NATS_URL`` of ``role``'s user."""
    from lapor.ops import natsauth

    return "lapor-nats" if role == natsauth.OPS else f"lapor-nats-{role}"


COMMAND = Command(
    help="write the NATS users file (ops and service users, agencies), create consumers",
    arguments=arguments,
    run=run,
    local_secret=False,
)
