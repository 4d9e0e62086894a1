"""The ``lapor`` command, put together from the workspace members installed here.

Each member registers its subcommands as :class:`Command` objects under the
``lapor.commands`` entry point group: the chassis ``serve`` (what a container runs);
lapor-ops what an operator runs against a deployment (``migrate``, ``token``, ``replay``,
``audit``, ``projections``, ``nats-users``, ``rules``); lapor-devtools the local system
(``run``, ``demo``). The runtime image has no devtools: ``lapor run`` there says so in one
line instead of failing on a missing module.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

from pydantic import SecretStr

from lapor.services.logging import configure_logging
from lapor.services.settings import Settings


@dataclass(frozen=True)
class Command:
    """One ``lapor`` subcommand: what it is for, its arguments, and what it does."""

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Settings, argparse.Namespace], int]
    """Given the settings (see ``local_secret``) and the parsed arguments; returns the
    exit code. Modules of heavy dependencies are imported here, not when the command is
    found: every ``lapor`` call finds all of them."""
    local_secret: bool = True
    """Without ``LAPOR_AUTH_SECRET``, fill in the data folder's local secret (made if
    missing) before ``run``. False for a command that neither signs nor verifies: it then
    writes nothing there (an operations Job has no data folder to keep one in)."""


def installed_commands() -> dict[str, Command]:
    """Every command an installed member registered, by name."""
    found = sorted(entry_points(group="lapor.commands"), key=lambda ep: ep.name)
    return {ep.name: ep.load() for ep in found}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = installed_commands()
    if argv and not argv[0].startswith("-") and argv[0] not in commands:
        # Most likely a command of a member not installed here (lapor-devtools' ``run`` in
        # the runtime image): one line, not argparse's usage and list of choices.
        available = ", ".join(commands)
        print(f"lapor {argv[0]}: not installed here (installed: {available})", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(
        prog="lapor", description="An event-sourced public-service complaint channel."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in commands.items():
        command.arguments(sub.add_parser(name, help=command.help))
    args = parser.parse_args(argv)

    command = commands[args.command]
    settings = Settings()
    if command.local_secret:
        settings = with_local_secret(settings)
    configure_logging(settings.log_level, settings.log_format)
    return command.run(settings, args)


def with_local_secret(settings: Settings) -> Settings:
    """Without ``LAPOR_AUTH_SECRET``, a local system keeps a random one in its data folder,
    so that ``lapor run``, ``lapor token`` and ``lapor demo`` agree on it."""
    if settings.auth_secret is not None:
        return settings
    path = settings.data_dir / "auth_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole beside it (mkstemp: readable by its owner alone) and then linked
        # in place: of two commands starting at once, the first link wins and both read
        # the same whole secret; nobody reads an empty file or one others could read.
        fd, partial = tempfile.mkstemp(dir=path.parent, prefix=".auth_secret.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
            with contextlib.suppress(FileExistsError):
                os.link(partial, path)
        finally:
            os.unlink(partial)
    return settings.model_copy(update={"auth_secret": SecretStr(path.read_text().strip())})


def run() -> None:
    """Console entry point: errors a user can act on are one line, not a traceback."""
    try:
        sys.exit(main())
    except (RuntimeError, TimeoutError, ValueError) as e:
        sys.exit(f"lapor: {e}")


if __name__ == "__main__":
    run()
