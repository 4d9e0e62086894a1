"""``lapor open311-keys add NAME | revoke ID | list``: the Open311 API keys
(``lapor.open311.keys``: hashed, in ``LAPOR_OPEN311_KEYS_FILE``, by default
``<LAPOR_DATA_DIR>/open311_keys.json``). ``add`` prints the key once; keep it."""

from __future__ import annotations

import argparse
import sys

from lapor.services.cli import Command
from lapor.services.settings import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="issue a key for a client (printed once)")
    add.add_argument("name", help="who the key is for, e.g. 'Aplikasi Warga'")
    revoke = sub.add_parser("revoke", help="revoke a key by its id (see list)")
    revoke.add_argument("id")
    sub.add_parser("list", help="every key: id, client, created, revoked")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from lapor.open311.app import keys_path
    from lapor.open311.keys import KeyStore

    store = KeyStore(keys_path(settings))
    try:
        if args.action == "add":
            record, key = store.add(args.name)
            print(key)
            print(
                f"id {record.id} for {record.name}; keep the key: it is not stored", file=sys.stderr
            )
        elif args.action == "revoke":
            record = store.revoke(args.id)
            print(f"revoked {record.id} ({record.name}) at {record.revoked_at}")
        else:
            for r in store.records():
                state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
                print(f"{r.id}  {r.name}  created {r.created_at}  {state}")
    except ValueError as e:
        print(f"lapor open311-keys: {e}", file=sys.stderr)
        return 2
    return 0


COMMAND = Command(
    help="manage the Open311 API keys (add, revoke, list)",
    arguments=arguments,
    run=run,
    local_secret=False,
)
