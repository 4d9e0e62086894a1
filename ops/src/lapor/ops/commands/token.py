"""``lapor token admin | agency OPD [--name] [--ttl]``: a bearer token for the admin or an
agency officer, signed with the deployment's ``LAPOR_AUTH_SECRET`` (locally, the one kept
in the data folder)."""

from __future__ import annotations

import argparse
import sys

from lapor.ops.reach import local_refusal
from lapor.services.auth import issue_token
from lapor.services.cli import Command, with_local_secret
from lapor.services.settings import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("role", choices=["admin", "agency"])
    parser.add_argument("opd", nargs="?", help="the officer's unit (for agency)")
    parser.add_argument("--name", help="the officer's name, recorded with their actions")
    parser.add_argument(
        "--ttl", type=int, default=86400, help="seconds (default: a day; at most 30 days)"
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    if settings.auth_secret is None:
        # A token signed with a secret made up here would be refused everywhere: only a
        # development machine keeps (and shares) one in its data folder.
        refusal = local_refusal(settings)
        if refusal is not None:
            print(f"lapor token: set LAPOR_AUTH_SECRET ({refusal})", file=sys.stderr)
            return 2
        settings = with_local_secret(settings)
    assert settings.auth_secret is not None
    secret = settings.auth_secret.get_secret_value()
    try:
        if args.ttl <= 0:
            raise ValueError("--ttl must be a positive number of seconds")
        print(issue_token(secret, args.role, args.opd, args.name, args.ttl))
    except ValueError as e:  # one line, not a traceback: a typo is not a crash
        print(f"lapor token: {e}", file=sys.stderr)
        return 2
    return 0


COMMAND = Command(
    help="issue a token for the admin or an agency officer",
    arguments=arguments,
    run=run,
    local_secret=False,
)
