"""``lapor backup create|list|restore``: snapshots of the JetStream streams, restored
exactly (``lapor.ops.backup``; the procedure is in ``deploy/docs/backup.md``).

    lapor backup create [TARGET] [--keep N] [--no-consumers]
    lapor backup list [TARGET] [--check]
    lapor backup restore BACKUP [--from TARGET] [--replace] [--stream NAME ...]
                         [--replicas N] [--rebuild-read-models]
    lapor backup read-models [--rebuild]

TARGET is a folder or ``file:///folder`` (default: ``LAPOR_BACKUP_URL``); BACKUP an id
listed by ``list``, ``latest``, or a backup folder's path. ``create`` needs ``NATS_URL``;
``restore`` also ``DATABASE_URL`` to check the read models against the restored log;
``read-models`` checks them against the log as it is (after a restore), and with
``--rebuild`` rebuilds them from it (the services stopped).

Exit codes: 0 done; 1 refused or failed (a damaged backup, streams that hold messages
without ``--replace``, a server that cannot read the archives, ...), with nothing
changed when refused; 2 a server not reachable; 3 restored, but the read models need a
rebuild or a skip decision needs review (printed, with what to run).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from lapor.ops.reach import Unreachable, deployment, local_refusal
from lapor.services.cli import Command
from lapor.services.settings import Settings

NEEDS_ATTENTION = 3


def arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="backup_command", required=True)
    create = sub.add_parser("create", help="snapshot every stream into a new backup")
    create.add_argument("target", nargs="?", help="folder or file:///folder (LAPOR_BACKUP_URL)")
    create.add_argument("--keep", type=int, help="then remove all but the newest N backups")
    create.add_argument(
        "--no-consumers", action="store_true", help="leave the consumers' state out"
    )
    listing = sub.add_parser("list", help="the backups in a target, oldest first")
    listing.add_argument("target", nargs="?", help="folder or file:///folder (LAPOR_BACKUP_URL)")
    listing.add_argument("--check", action="store_true", help="check every file's SHA-256")
    restore = sub.add_parser("restore", help="restore a backup (checked first)")
    restore.add_argument("backup", help="an id from `lapor backup list`, latest, or a folder")
    restore.add_argument("--from", dest="target", help="folder or file:///folder")
    restore.add_argument(
        "--replace", action="store_true", help="delete streams that hold messages first"
    )
    restore.add_argument(
        "--stream", action="append", default=[], help="only this stream (name or role)"
    )
    restore.add_argument("--replicas", type=int, help="replicas of the restored streams")
    restore.add_argument(
        "--rebuild-read-models",
        action="store_true",
        help="rebuild read models that are ahead of or behind the restored log",
    )
    models = sub.add_parser(
        "read-models", help="check the read models against the log (after a restore)"
    )
    models.add_argument("--rebuild", action="store_true", help="rebuild them if they need it")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from lapor.ops import backup

    try:
        if args.backup_command == "list":
            return _list(backup.target_path(args.target), args.check)
        if args.backup_command == "create":
            target = backup.target_path(args.target)
            with deployment(settings, database=False) as reached:
                return asyncio.run(_create(reached, target, args))
        if args.backup_command == "read-models":
            with deployment(settings) as reached:
                return asyncio.run(_read_models(reached, args.rebuild))
        # The read models are checked where a database is given or may be started.
        database = settings.database_url is not None or local_refusal(settings) is None
        target = backup.target_path(args.target) if args.target or _has_env() else None
        with deployment(settings, database=database) as reached:
            return asyncio.run(_restore(reached, target, args))
    except Unreachable as e:
        print(f"lapor backup: {e}", file=sys.stderr)
        return 2
    except backup.BackupError as e:
        print(f"lapor backup {args.backup_command}: {e}", file=sys.stderr)
        return 1


def _has_env() -> bool:
    import os

    from lapor.ops.backup import URL_ENV

    return bool(os.environ.get(URL_ENV))


async def _create(settings: Settings, target, args: argparse.Namespace) -> int:
    from lapor.ops import backup

    folder, manifest = await backup.create(
        settings,
        target,
        consumers=not args.no_consumers,
        keep=args.keep,
        on_stream=lambda entry: print(*backup.describe([entry]), flush=True),
    )
    for name in manifest.absent:
        print(f"{name}: absent (nothing published to it yet)")
    print(f"backup {manifest.id} written to {folder}")
    return 0


def _list(target, check: bool) -> int:
    from lapor.ops import backup

    found = backup.complete_backups(target)
    if not found:
        print(f"no backups in {target}")
        return 0
    damaged = 0
    for backup_id, folder in found:
        try:
            manifest = (
                backup.verify_backup(folder)
                if check
                else backup.Manifest.from_bytes((folder / backup.MANIFEST).read_bytes())
            )
        except backup.BackupError as e:
            damaged += 1
            print(f"{backup_id}: DAMAGED: {e}")
            continue
        events = next((s for s in manifest.streams if s.role == "events"), None)
        size = sum(s.archive.size for s in manifest.streams)
        log = f"{events.messages} events up to seq {events.last_seq}" if events else "no log"
        verdict = ", files checked" if check else ""
        print(
            f"{backup_id}: {manifest.finished_at}, root {manifest.subject_root}, {log}, "
            f"{len(manifest.streams)} streams, {backup._size(size)}{verdict}"
        )
    return 1 if damaged else 0


async def _restore(settings: Settings, target, args: argparse.Namespace) -> int:
    from lapor.ops import backup

    folder = backup.find_backup(target, args.backup) if target else _folder(args.backup)
    report = await backup.restore(
        settings,
        folder,
        replace=args.replace,
        only=args.stream,
        replicas=args.replicas,
        rebuild_read_models=args.rebuild_read_models,
        on_stream=lambda r: print(
            f"{r.stream} ({r.role}): restored, "
            f"{backup.held(r.messages, r.first_seq, r.last_seq)}, {r.consumers} consumers"
            + (" (replaced the stream that was there)" if r.replaced else ""),
            flush=True,
        ),
    )
    print(f"backup {report.backup.id} restored")
    if not report.checked:
        if any(r.role == "events" for r in report.streams):
            print("read models not checked (no DATABASE_URL): see deploy/docs/backup.md")
        return 0
    return _tell(report.stale, report.skips, report.rebuilt)


async def _read_models(settings: Settings, rebuild: bool) -> int:
    from lapor.ops import backup

    check = await backup.check_read_models(settings, rebuild=rebuild)
    code = _tell(check.stale, check.skips, check.rebuilt)
    if not (check.stale or check.skips):
        print(f"read models match the log (which ends at seq {check.log_end})")
    return code


def _tell(stale: list[str], skips: list[str], rebuilt: list[str]) -> int:
    for name in rebuilt:
        print(f"{name}: rebuilt from the restored log and swapped in")
    if stale and not rebuilt:
        print("read models that do not match the restored log:", *stale, sep="\n  ")
        print("with the services stopped, rebuild them: lapor backup read-models --rebuild")
    if skips:
        print("skip decisions past the end of the log:", *skips, sep="\n  ")
    return NEEDS_ATTENTION if skips or (stale and not rebuilt) else 0


def _folder(name: str):
    from pathlib import Path

    from lapor.ops import backup

    path = Path(name)
    if not (path / backup.MANIFEST).is_file():
        raise backup.BackupError(
            f"{name}: not a backup folder; give --from TARGET or set {backup.URL_ENV}"
        )
    return path


COMMAND = Command(
    help="back up the JetStream streams; list and restore backups",
    arguments=arguments,
    run=run,
    local_secret=False,
)
