"""``lapor accounts``: the staff's accounts for the portal (``lapor.portal.staff``), in
the deployment's NATS (as the ops user ``lapor``), or in the local system's (beside
``lapor run``, found by its data folder).

    lapor accounts add USER --role officer --opd dpupr [--name "Budi Santoso"]
    lapor accounts add USER --role coordinator
    lapor accounts password USER        a new password (also lifts a lock-out)
    lapor accounts unlock USER          after too many wrong passwords
    lapor accounts disable USER | enable USER
    lapor accounts remove USER
    lapor accounts list
    lapor accounts sign-ins [--last N]  the newest sign-in attempts

A password is asked twice at the terminal, or read from the first line of
``--password-file`` (``-`` for standard input: a Secret mounted in a Job); it is never
printed, logged or put on a command line.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from dataclasses import replace
from pathlib import Path

from lapor.services.cli import Command
from lapor.services.settings import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="accounts_command", required=True)
    add = sub.add_parser("add", help="a new officer's or coordinator's account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["officer", "coordinator"])
    add.add_argument("--opd", help="an officer's unit (a code of the OPD registry)")
    add.add_argument("--name", help="the person's name, shown on the pages")
    password = sub.add_parser("password", help="set a new password (also lifts a lock-out)")
    for p in (add, password):
        p.add_argument(
            "--password-file",
            help="read the password from this file's first line ('-': standard input) "
            "instead of asking at the terminal",
        )
    password.add_argument("username")
    for name, words in (
        ("unlock", "lift a lock-out after too many wrong passwords"),
        ("disable", "refuse every sign-in (sessions end at their next page)"),
        ("enable", "allow sign-ins again"),
        ("remove", "delete the account"),
    ):
        sub.add_parser(name, help=words).add_argument("username")
    sub.add_parser("list", help="every account: role, unit, state")
    signins = sub.add_parser("sign-ins", help="the newest sign-in attempts, oldest first")
    signins.add_argument("--last", type=int, default=50)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from lapor.ops.reach import deployment
    from lapor.portal.staff.accounts import InvalidAccount

    try:
        with deployment(settings, database=False) as reached:
            return asyncio.run(_run(reached, args))
    except InvalidAccount as e:
        print(f"lapor accounts: {e}", file=sys.stderr)
        return 2


def read_password(path: str | None) -> str:
    if path == "-":
        return sys.stdin.readline().rstrip("\n")
    if path:
        lines = Path(path).read_text().splitlines()
        return lines[0] if lines else ""
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("lapor accounts: the two passwords differ")
    return first


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    import nats
    from nats.js.errors import KeyWrongLastSequenceError

    from lapor.portal.staff import accounts as acc
    from lapor.portal.staff.stores import Accounts, SignIns, utc_now
    from lapor.shared.registry import load_registry

    command, now = args.accounts_command, utc_now()
    nc = await nats.connect(settings.nats_servers)
    try:
        js = nc.jetstream()
        accounts = await Accounts.open(js, settings.subjects)
        if command == "add":
            units = {unit.code for unit in load_registry(settings.deployment).units}
            account = acc.new_account(
                args.username,
                args.role,
                read_password(args.password_file),
                opd=args.opd,
                name=args.name,
                units=units,
                now=now,
            )
            try:
                await accounts.add(account)
            except KeyWrongLastSequenceError:
                print(f"lapor accounts: {args.username} exists", file=sys.stderr)
                return 2
            print(f"added {account.username} ({_role(account)})")
            return 0
        if command == "list":
            for a in await accounts.all():
                print(f"{a.username:<24} {_role(a):<34} {_state(a, now)}  {a.name}")
            return 0
        if command == "sign-ins":
            for r in await SignIns(js, settings.subjects).recent(args.last):
                where = r.get("address", "-")
                print(f"{r['at']}  {r['outcome']:<15} {r['username']!r:<26} {where}")
            return 0
        if command == "remove":
            done = await accounts.remove(args.username)
        else:
            change = {
                "unlock": acc.unlocked,
                "disable": lambda a: replace(a, disabled=True),
                "enable": lambda a: replace(a, disabled=False),
            }.get(command)
            if change is None:  # password
                password = read_password(args.password_file)
                acc.hash_password(password)  # refused before anything changes
                done = await accounts.change(
                    args.username, lambda a: acc.with_password(a, password, now)
                )
            else:
                done = await accounts.change(args.username, change)
        if not done:
            print(f"lapor accounts: no account {args.username}", file=sys.stderr)
            return 2
        print(f"{command}: {args.username}")
        return 0
    finally:
        await nc.close()


def _role(account) -> str:
    return f"officer of {account.opd}" if account.role == "officer" else "coordinator"


def _state(account, now) -> str:
    if account.disabled:
        return "disabled"
    if account.locked(now):
        return f"locked until {account.locked_until:%Y-%m-%d %H:%M} UTC"
    return "active"


COMMAND = Command(
    help="the staff's accounts for the portal: add, password, unlock, disable, list, sign-ins",
    arguments=arguments,
    run=run,
    local_secret=False,
)
