"""Backups of the JetStream streams, restored exactly: sequences, headers, configuration.

What is backed up
=================

Every stream the platform keeps its data in (:func:`covered`):

* ``<ROOT>_EVENTS``, the log: the source of truth; every read model is rebuilt from it;
* ``OBJ_<ROOT>_ATTACHMENTS``, the citizens' photos and documents, which the log's
  ``complaint.received`` refer to (taken after the log: intake stores the files before it
  appends, so every complaint of the backed-up log has its files);
* ``<ROOT>_REPORTERS``, the reporters' contacts: nothing can rebuild it;
* ``<ROOT>_AGENCY``, the agencies' copies, with the durables ``lapor nats-users`` made for
  each unit (what each agency has read);
* ``<ROOT>_DEADLETTER``, what consumers parked for operators;
* ``KV_<ROOT>_ROUTING_RULES``, the routing rules' bucket (tables, their change records,
  the record of the model in force, with their history);
* ``OBJ_<ROOT>_ROUTING_MODELS``, the routing models' object store (only once a model was
  published: a backup without it says so in ``absent``);
* ``KV_<ROOT>_STAFF_ACCOUNTS``, the officers' and coordinators' accounts, and
  ``<ROOT>_STAFF_SIGNINS``, their sign-in record (the portal's sessions are not kept: a
  restore signs everyone out).

How: the server's own snapshot, not an export of messages
=========================================================

Each stream is saved with the JetStream snapshot API, the mechanism of ``nats stream
backup``: a request to ``$JS.API.STREAM.SNAPSHOT.<stream>`` names a subject to deliver
to; the answer carries the stream's configuration and state; then the server sends the
archive (S2-compressed) in chunks, each with a reply subject that the client answers
empty (flow control: the server sends a window ahead and stops after five seconds
without an answer), and ends with an empty message whose ``Status`` header is ``204``
(or absent) on success, ``408``/``500`` with a description otherwise. Restoring is the
reverse: ``$JS.API.STREAM.RESTORE.<stream>`` with the saved configuration and state
answers an upload subject; every chunk is sent as a request (answered empty), and an
empty request ends the upload, answered with the stream's info or an error. The server
creates the stream itself, so a restore never writes into an existing stream.

Why this and not an export of every message republished into an empty stream: a restore
gives back the very **stream sequences**, and the platform relies on them. The read
models' checkpoints are stream sequences (``projection_checkpoints.last_seq``, in
PostgreSQL, not in the backup), and so are the recorded skip decisions
(``projection_skips.seq``), the consumers' positions and the metrics exports'
``Lapor-Log-Sequence``. A republished log renumbers whenever a sequence is missing (a
deleted message, an erased reporter), so every read model would have to be rebuilt
before the services may start, and the consumers recreated. With a snapshot, the
headers (the hash chain, ``Nats-Msg-Id``), the storage timestamps that ``?as_of=`` cuts
at, the per-subject order, and the durable consumers' state (which complaint the router
has routed, which event the fan-out has copied) come back as they were, and a
PostgreSQL that was not lost carries on where it was.

The archive is opaque here: it is stored as the server sent it and handed back as it
is, whatever the server's archive format (``NATSARC1`` since nats-server 2.15, a tar
before); restoring needs a server at least as new as the one that took it, which is
checked before anything is changed.

A backup on disk
================

``<target>/<id>/`` (``id`` the UTC time it began, ``20261207T020000Z``), written as
``<id>.partial/`` and renamed once complete::

    manifest.json          what is in it (format, subject root, server version, and per
                           stream: role, messages, first and last sequence, consumers,
                           each file's size and SHA-256)
    manifest.json.sha256   the manifest's own SHA-256
    <STREAM>.json          the snapshot's answer: the configuration and state to restore
    <STREAM>.s2            the archive, as the server sent it

:func:`restore` checks every one of those sums, the subject root and the server's
version **before** it touches a stream, and refuses streams that hold messages unless
told to replace them (``replace=True``). An existing *empty* stream (``lapor migrate``
declares the streams on a new cluster) is replaced without asking: nothing is lost.

What a restore means for the read models
========================================

The restored log ends where the backup was taken: events appended after it are gone.
Read models in a PostgreSQL that was not lost may be *ahead* of it (a checkpoint past
the log's last sequence): the next events appended would get the sequences they already
applied and be skipped. Or PostgreSQL was restored to an earlier time than NATS and they
are *behind* the restored consumers (which would then wait for ever for an event already
acknowledged). :func:`restore` looks (with ``DATABASE_URL``) and reports both; with
``rebuild_read_models=True`` it rebuilds those read models from the restored log and
swaps them in (:mod:`lapor.ops.replay`). Skip decisions recorded for sequences past the
restored log would apply to other events later appended there: they are reported too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from dataclasses import replace as replace_fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import nats
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from lapor.services.settings import Settings
from lapor.shared.subjects import Subjects

log = structlog.get_logger(__name__)

FORMAT = "lapor-backup/1"
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.json.sha256"
PARTIAL = ".partial"
URL_ENV = "LAPOR_BACKUP_URL"
"""Where backups go when no target is given: ``file:///backups`` (a mounted volume)."""

CHUNK_SIZE = 128 * 1024
"""The server's default chunk, and the size of each uploaded chunk of a restore."""
WINDOW_SIZE = 8 * 1024 * 1024
"""How much the server sends ahead of the client's answers (its default)."""
API_TIMEOUT = 10.0
IDLE_TIMEOUT = 30.0
"""A snapshot that sends nothing for this long has failed."""
RESTORE_TIMEOUT = 600.0
"""How long the server may take to build a stream from an uploaded archive."""

_ID = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")


class BackupError(Exception):
    """A backup or restore that could not be done; nothing is left half-done by the
    checks that raise it before a stream is touched."""


class BackupCorrupt(BackupError):
    """A backup's files do not match its manifest (or the manifest its sum)."""


class StreamsNotEmpty(BackupError):
    """A restore would replace streams that hold messages, and was not told to."""


# --------------------------------------------------------------------------- what


@dataclass(frozen=True)
class Covered:
    role: str
    stream: str
    required: bool
    """Declared by ``lapor migrate``: its absence means a wrong root or no migration."""


def covered(subjects: Subjects) -> list[Covered]:
    """The streams a backup holds, in the order they are taken: the log first, then the
    attachments and the reporters (intake stores a complaint's files before it appends
    the complaint, and appends it before its reporter, so every complaint of the
    backed-up log has its files and its reporter), the rules before the models (a model's
    record is put after its archive, so every model the rules name is in the object
    store)."""
    return [
        Covered("events", subjects.events_stream, True),
        Covered("attachments", f"OBJ_{subjects.attachments_bucket}", True),
        Covered("reporters", subjects.reporters_stream, True),
        Covered("agency", subjects.agency_stream, True),
        Covered("dead_letters", subjects.dead_letter_stream, True),
        Covered("routing_rules", f"KV_{subjects.routing_rules_bucket}", True),
        Covered("routing_models", f"OBJ_{subjects.routing_models_bucket}", False),
        Covered("staff_accounts", f"KV_{subjects.staff_accounts_bucket}", True),
        Covered("signins", subjects.signins_stream, True),
    ]


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class StreamEntry:
    role: str
    stream: str
    messages: int
    first_seq: int
    last_seq: int
    bytes: int
    consumers: int
    deny_delete: bool
    archive: FileEntry
    """The server's snapshot, as it sent it."""
    meta: FileEntry
    """The snapshot's answer: the configuration and state a restore sends back."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StreamEntry:
        return cls(
            **{
                **d,
                "archive": FileEntry(**d["archive"]),
                "meta": FileEntry(**d["meta"]),
            }
        )


@dataclass(frozen=True)
class Manifest:
    id: str
    subject_root: str
    server_version: str
    started_at: str
    finished_at: str
    streams: list[StreamEntry]
    absent: list[str] = field(default_factory=list)
    """Covered streams that did not exist when the backup was taken (optional ones)."""
    format: str = FORMAT

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        d = json.loads(data)
        if d.get("format") != FORMAT:
            raise BackupCorrupt(f"not a backup of this format ({d.get('format')!r}, want {FORMAT})")
        d["streams"] = [StreamEntry.from_dict(s) for s in d["streams"]]
        return cls(**d)

    def stream(self, name_or_role: str) -> StreamEntry:
        for s in self.streams:
            if name_or_role in (s.stream, s.role):
                return s
        known = ", ".join(f"{s.stream} ({s.role})" for s in self.streams)
        raise BackupError(f"{name_or_role!r} is not in backup {self.id} (it holds {known})")


# --------------------------------------------------------------------------- where


def target_path(url: str | None = None) -> Path:
    """The folder backups go to: ``url`` (``file:///…`` or a path), else
    ``LAPOR_BACKUP_URL``."""
    url = url or os.environ.get(URL_ENV)
    if not url:
        raise BackupError(f"no backup target: give one or set {URL_ENV}=file:///<folder>")
    parts = urlsplit(url)
    if parts.scheme == "":
        return Path(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return Path(unquote(parts.path))
    raise BackupError(
        f"{url}: only file:// targets are supported (mount the volume or bucket as a folder)"
    )


def find_backup(target: Path, name: str) -> Path:
    """A backup folder by its id under ``target``, ``latest``, or a folder's own path."""
    direct = Path(name)
    if (direct / MANIFEST).is_file():
        return direct
    if name == "latest":
        ids = [b for b, _ in complete_backups(target)]
        if not ids:
            raise BackupError(f"no complete backup in {target}")
        return target / ids[-1]
    if (target / name / MANIFEST).is_file():
        return target / name
    raise BackupError(f"no backup {name!r} in {target}")


def complete_backups(target: Path) -> list[tuple[str, Path]]:
    """Backups under ``target`` that were finished (renamed from ``.partial``), oldest
    first; nothing else in the folder is ever looked at or touched."""
    if not target.is_dir():
        return []
    found = [
        (p.name, p) for p in target.iterdir() if _ID.match(p.name) and (p / MANIFEST).is_file()
    ]
    return sorted(found, key=lambda item: _sort_key(item[0]))


def _sort_key(backup_id: str) -> tuple[str, int]:
    stamp, _, n = backup_id.partition("-")
    return stamp, int(n or 0)


def _new_id(target: Path, now: datetime) -> str:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    backup_id, n = stamp, 0
    while (target / backup_id).exists() or (target / f"{backup_id}{PARTIAL}").exists():
        n += 1
        backup_id = f"{stamp}-{n}"
    return backup_id


def _begin(target: Path, now: datetime) -> tuple[str, Path]:
    """A new backup's id and its folder, still ``.partial``."""
    target.mkdir(parents=True, exist_ok=True)
    backup_id = _new_id(target, now)
    work = target / f"{backup_id}{PARTIAL}"
    work.mkdir()
    return backup_id, work


def _finish(work: Path, final: Path, manifest: Manifest) -> Path:
    """Write the manifest and its sum, then make the backup complete by its name."""
    data = manifest.to_bytes()
    _write(work / MANIFEST, data)
    _write(work / MANIFEST_SUM, f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n".encode())
    _fsync_dir(work)
    work.rename(final)
    _fsync_dir(final.parent)
    return final


def prune(target: Path, keep: int) -> list[str]:
    """Remove the oldest complete backups beyond the newest ``keep``; returns their ids."""
    if keep < 1:
        raise BackupError("--keep must leave at least one backup")
    backups = complete_backups(target)
    gone = backups[: max(0, len(backups) - keep)]
    for backup_id, path in gone:
        shutil.rmtree(path)
        log.info("backup removed", backup=backup_id)
    return [b for b, _ in gone]


# --------------------------------------------------------------------------- create


async def create(
    settings: Settings,
    target: Path,
    *,
    consumers: bool = True,
    keep: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    on_stream: Callable[[StreamEntry], object] | None = None,
) -> tuple[Path, Manifest]:
    """Snapshot every covered stream into a new folder under ``target``; returns the
    folder and its manifest. ``keep``: then remove all but the newest ``keep`` backups."""
    if keep is not None and keep < 1:
        raise BackupError("--keep must leave at least one backup")
    started = datetime.now(UTC)
    backup_id, work = _begin(target, started)
    try:
        nc = await _connect(settings)
        try:
            js = nc.jetstream()
            entries, absent = [], []
            for c in covered(settings.subjects):
                try:
                    await js.stream_info(c.stream)
                except NotFoundError:
                    if c.required:
                        raise BackupError(
                            f"stream {c.stream} ({c.role}) does not exist: is "
                            "LAPOR_SUBJECT_ROOT right, and did `lapor migrate` run?"
                        ) from None
                    absent.append(c.stream)
                    continue
                entry = await snapshot_stream(
                    nc, c, work, consumers=consumers, chunk_size=chunk_size
                )
                entries.append(entry)
                log.info("stream backed up", stream=c.stream, messages=entry.messages)
                if on_stream is not None:
                    on_stream(entry)
            version = _version(nc)
        finally:
            await nc.close()
        manifest = Manifest(
            id=backup_id,
            subject_root=settings.subject_root,
            server_version=version,
            started_at=started.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
            streams=entries,
            absent=absent,
        )
        final = _finish(work, target / backup_id, manifest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if keep is not None:
        prune(target, keep)
    return final, manifest


async def snapshot_stream(
    nc: Client,
    what: Covered,
    folder: Path,
    *,
    consumers: bool = True,
    chunk_size: int = CHUNK_SIZE,
    idle_timeout: float = IDLE_TIMEOUT,
) -> StreamEntry:
    """Receive one stream's snapshot into ``folder``, hashing it as it is written."""
    stream = what.stream
    archive_path = folder / f"{stream}.s2"
    inbox = nc.new_inbox()
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[Msg] = loop.create_future()
    digest, size, last_chunk = hashlib.sha256(), 0, loop.time()

    with archive_path.open("wb") as out:

        async def chunk(msg: Msg) -> None:
            nonlocal size, last_chunk
            if ended.done():
                return
            try:
                if not msg.data:  # the end: its status says how it went
                    ended.set_result(msg)
                    return
                out.write(msg.data)
                digest.update(msg.data)
                size += len(msg.data)
                last_chunk = loop.time()
                if msg.reply:  # flow control: the server sends on when answered
                    await nc.publish(msg.reply, b"")
            except Exception as e:  # e.g. the volume is full: stop, say why
                ended.set_exception(e)

        sub = await nc.subscribe(inbox, cb=chunk)
        try:
            request = {
                "deliver_subject": inbox,
                "no_consumers": not consumers,
                "chunk_size": chunk_size,
                "window_size": WINDOW_SIZE,
            }
            answer = await _api(nc, f"$JS.API.STREAM.SNAPSHOT.{stream}", request)
            while True:
                with contextlib.suppress(TimeoutError):
                    end = await asyncio.wait_for(asyncio.shield(ended), timeout=1.0)
                    break
                if loop.time() - last_chunk > idle_timeout:
                    raise BackupError(f"snapshot of {stream}: nothing came for {idle_timeout:.0f}s")
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        status = (end.headers or {}).get("Status")
        if status not in (None, "204"):
            why = (end.headers or {}).get("Description", "")
            raise BackupError(f"snapshot of {stream} failed: {status} {why}".strip())
        out.flush()
        os.fsync(out.fileno())

    meta = {"config": answer["config"], "state": answer["state"]}
    meta_bytes = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode()
    meta_path = folder / f"{stream}.json"
    _write(meta_path, meta_bytes)
    state, config = answer["state"], answer["config"]
    return StreamEntry(
        role=what.role,
        stream=stream,
        messages=state.get("messages", 0),
        first_seq=state.get("first_seq", 0),
        last_seq=state.get("last_seq", 0),
        bytes=state.get("bytes", 0),
        consumers=state.get("consumer_count", 0) if consumers else 0,
        deny_delete=bool(config.get("deny_delete")),
        archive=FileEntry(archive_path.name, size, digest.hexdigest()),
        meta=FileEntry(meta_path.name, len(meta_bytes), hashlib.sha256(meta_bytes).hexdigest()),
    )


# --------------------------------------------------------------------------- check


def verify_backup(folder: Path) -> Manifest:
    """The manifest of the backup in ``folder`` once every sum and size matches;
    :class:`BackupCorrupt` naming every file that does not."""
    try:
        data = (folder / MANIFEST).read_bytes()
        recorded = (folder / MANIFEST_SUM).read_text().split()[0]
    except (OSError, IndexError) as e:
        raise BackupCorrupt(f"{folder}: no readable manifest and sum ({e})") from None
    if hashlib.sha256(data).hexdigest() != recorded:
        raise BackupCorrupt(f"{folder / MANIFEST}: does not match {MANIFEST_SUM}")
    try:
        manifest = Manifest.from_bytes(data)
    except (ValueError, KeyError, TypeError) as e:
        raise BackupCorrupt(f"{folder / MANIFEST}: unreadable ({e})") from None
    problems = [
        problem
        for entry in manifest.streams
        for f in (entry.meta, entry.archive)
        if (problem := _check_file(folder, f)) is not None
    ]
    if problems:
        raise BackupCorrupt(f"backup {manifest.id} is damaged: " + "; ".join(problems))
    return manifest


def _check_file(folder: Path, f: FileEntry) -> str | None:
    path = folder / f.path
    if Path(f.path).name != f.path:
        return f"{f.path}: not a file of the backup's folder"
    try:
        size, digest = 0, hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                size += len(block)
                digest.update(block)
    except OSError as e:
        return f"{f.path}: {e.strerror or e}"
    if size != f.size:
        return f"{f.path}: {size} bytes, the manifest says {f.size}"
    if digest.hexdigest() != f.sha256:
        return f"{f.path}: SHA-256 {digest.hexdigest()[:16]}…, the manifest says {f.sha256[:16]}…"
    return None


# --------------------------------------------------------------------------- restore


@dataclass(frozen=True)
class Restored:
    stream: str
    role: str
    messages: int
    first_seq: int
    last_seq: int
    consumers: int
    replaced: bool
    """An existing stream was deleted first (empty, or with ``replace=True``)."""


@dataclass
class RestoreReport:
    backup: Manifest
    streams: list[Restored] = field(default_factory=list)
    checked: bool = False
    """Whether the read models were checked against the restored log (with the log among
    the streams restored, and ``DATABASE_URL``)."""
    stale: list[str] = field(default_factory=list)
    """Read models ahead of the restored log or behind their restored consumer."""
    skips: list[str] = field(default_factory=list)
    """Skip decisions recorded for sequences past the restored log."""
    rebuilt: list[str] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        return bool(self.skips) or (bool(self.stale) and not self.rebuilt)


async def restore(
    settings: Settings,
    folder: Path,
    *,
    replace: bool = False,
    only: Sequence[str] = (),
    replicas: int | None = None,
    rebuild_read_models: bool = False,
    on_stream: Callable[[Restored], object] | None = None,
) -> RestoreReport:
    """Restore the backup in ``folder`` (every stream, or those named in ``only`` by name
    or role). Everything is checked before anything is changed: the files against the
    manifest, the subject root, the server's version, and that no stream to restore holds
    messages (unless ``replace``). ``replicas`` overrides the streams' replicas (a smaller
    or larger cluster than the one backed up). Then, with ``DATABASE_URL``, the read
    models are checked against the restored log, and with ``rebuild_read_models`` rebuilt
    where needed."""
    manifest = verify_backup(folder)
    if manifest.subject_root != settings.subject_root:
        raise BackupError(
            f"backup {manifest.id} is of subject root {manifest.subject_root!r}, this "
            f"deployment's is {settings.subject_root!r} (LAPOR_SUBJECT_ROOT): a stream keeps "
            "its name and subjects"
        )
    chosen = [manifest.stream(n) for n in only] if only else list(manifest.streams)
    report = RestoreReport(manifest)
    nc = await _connect(settings)
    try:
        js = nc.jetstream()
        here = _version(nc)
        if _version_key(here) < _version_key(manifest.server_version):
            raise BackupError(
                f"backup {manifest.id} was taken by nats-server {manifest.server_version}; "
                f"this one is {here}, which may not read its archives"
            )
        existing: dict[str, int | None] = {}
        for entry in chosen:
            try:
                existing[entry.stream] = (await js.stream_info(entry.stream)).state.messages
            except NotFoundError:
                existing[entry.stream] = None
        occupied = {name: n for name, n in existing.items() if n}
        if occupied and not replace:
            held = ", ".join(f"{name} ({n} messages)" for name, n in occupied.items())
            raise StreamsNotEmpty(
                f"not restoring over streams that hold messages: {held}; "
                "replace them with --replace (what they hold is lost)"
            )
        # From here on, streams change.
        for entry in chosen:
            if existing[entry.stream] is not None:
                await js.delete_stream(entry.stream)
                log.warning("stream deleted for the restore", stream=entry.stream)
            restored = await restore_stream(nc, folder, entry, replicas=replicas)
            restored = replace_fields(restored, replaced=existing[entry.stream] is not None)
            report.streams.append(restored)
            log.info("stream restored", stream=entry.stream, messages=restored.messages)
            if on_stream is not None:
                on_stream(restored)
    finally:
        await nc.close()
    if any(r.role == "events" for r in report.streams) and settings.database_url is not None:
        check = await check_read_models(settings, rebuild=rebuild_read_models)
        report.checked = True
        report.stale, report.skips, report.rebuilt = check.stale, check.skips, check.rebuilt
    return report


async def restore_stream(
    nc: Client,
    folder: Path,
    entry: StreamEntry,
    *,
    replicas: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Restored:
    """Upload one stream's archive; the server creates the stream from it. Checks that the
    stream came back with the sequences the manifest recorded."""
    meta = json.loads((folder / entry.meta.path).read_bytes())
    config = dict(meta["config"])
    if replicas is not None:
        config["num_replicas"] = replicas
    answer = await _api(
        nc,
        f"$JS.API.STREAM.RESTORE.{entry.stream}",
        {"config": config, "state": meta["state"]},
    )
    upload = answer["deliver_subject"]
    with (folder / entry.archive.path).open("rb") as archive:
        await _upload(nc, upload, archive, chunk_size, entry.stream)
    done = await nc.request(upload, b"", timeout=RESTORE_TIMEOUT)
    info = _answer(done.data, f"restore of {entry.stream}")
    state = info.get("state", {})
    messages, last_seq = state.get("messages", 0), state.get("last_seq", 0)
    if last_seq != entry.last_seq or (entry.deny_delete and messages != entry.messages):
        raise BackupError(
            f"{entry.stream} came back with {messages} messages up to seq {last_seq}; "
            f"the backup holds {entry.messages} up to {entry.last_seq}"
        )
    return Restored(
        stream=entry.stream,
        role=entry.role,
        messages=messages,
        first_seq=state.get("first_seq", 0),
        last_seq=last_seq,
        consumers=state.get("consumer_count", 0),
        replaced=False,
    )


async def _upload(nc: Client, subject: str, archive: BinaryIO, size: int, stream: str) -> None:
    """Every chunk as a request: the server answers each once it has it (empty), or with
    an error."""
    while block := archive.read(size):
        reply = await nc.request(subject, block, timeout=API_TIMEOUT)
        if reply.data:
            raise BackupError(f"restore of {stream}: {reply.data.decode(errors='replace')}")


# --------------------------------------------------------------------------- read models


async def read_model_problems(
    settings: Settings, js: JetStreamContext, log_end: int, events_stream: str
) -> tuple[list[str], list[str]]:
    """What would go wrong with the read models on the restored log (ending at
    ``log_end``): read models whose checkpoint is past it or behind their restored
    consumer (they need a rebuild), and skip decisions for sequences past it."""
    import asyncpg

    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url)
    try:
        if await conn.fetchval("SELECT to_regclass('projection_checkpoints')") is None:
            return [], []  # a database never migrated: nothing to be wrong
        checkpoints = await conn.fetch(
            "SELECT projection, last_seq FROM projection_checkpoints ORDER BY projection"
        )
        skip_rows = await conn.fetch(
            "SELECT projection, seq FROM projection_skips WHERE seq > $1 ORDER BY projection, seq",
            log_end,
        )
    finally:
        await conn.close()
    stale = []
    for row in checkpoints:
        name, seq = row["projection"], row["last_seq"]
        if seq > log_end:
            stale.append(
                f"{name}: ahead: applied up to seq {seq}, the restored log ends at {log_end} "
                "(its rows hold events that are no longer in the log)"
            )
            continue
        try:
            consumer = await js.consumer_info(events_stream, name.replace(".", "_"))
        except NotFoundError:
            continue  # made afresh from the start of the log when the service starts
        floor = consumer.ack_floor.stream_seq if consumer.ack_floor else 0
        if seq < floor:
            stale.append(
                f"{name}: behind: applied up to seq {seq}, its consumer was restored past "
                f"{floor} (PostgreSQL is older than the backup)"
            )
    skips = [
        f"{row['projection']}: a skip decision for seq {row['seq']}, past the restored log: "
        "it would skip whatever event is appended there next; review it, then "
        f"DELETE FROM projection_skips WHERE seq > {log_end}"
        for row in skip_rows
    ]
    return stale, skips


@dataclass
class ReadModelCheck:
    log_end: int
    stale: list[str]
    skips: list[str]
    rebuilt: list[str] = field(default_factory=list)


async def check_read_models(settings: Settings, *, rebuild: bool = False) -> ReadModelCheck:
    """:func:`read_model_problems` against the log as it is now; with ``rebuild``, the
    read models rebuilt when one is stale (:func:`rebuild_read_models_to`)."""
    nc = await _connect(settings)
    try:
        js, stream = nc.jetstream(), settings.subjects.events_stream
        log_end = (await js.stream_info(stream)).state.last_seq
        stale, skips = await read_model_problems(settings, js, log_end, stream)
    finally:
        await nc.close()
    check = ReadModelCheck(log_end, stale, skips)
    if stale and rebuild:
        check.rebuilt = await rebuild_read_models_to(settings, log_end)
    return check


async def rebuild_read_models_to(settings: Settings, log_end: int) -> list[str]:
    """Rebuild every installed read model from the log (ending at ``log_end``) and swap
    it in; a checkpoint past the log is set back first (the swap refuses a live read
    model that is ahead of its rebuild). The services must be stopped."""
    import asyncpg

    from lapor.ops.replay import installed_projections, replay

    assert settings.database_url is not None
    names = sorted(installed_projections())
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            "UPDATE projection_checkpoints SET last_seq = 0 WHERE last_seq > $1", log_end
        )
    finally:
        await conn.close()
    verdicts = await replay(settings, names, mode="swap", show_progress=False)
    stopped = [name for name, v in verdicts.items() if v.stopped is not None]
    if stopped:
        raise BackupError(
            f"the rebuild of {', '.join(stopped)} stopped in front of an event it cannot "
            "apply: see `lapor projections status`"
        )
    return names


# --------------------------------------------------------------------------- helpers


async def _connect(settings: Settings) -> Client:
    return await nats.connect(settings.nats_servers, connect_timeout=API_TIMEOUT)


async def _api(nc: Client, subject: str, request: dict[str, Any]) -> dict[str, Any]:
    reply = await nc.request(subject, json.dumps(request).encode(), timeout=API_TIMEOUT)
    return _answer(reply.data, subject)


def _answer(data: bytes, what: str) -> dict[str, Any]:
    answer = json.loads(data)
    error = answer.get("error")
    if error:
        raise BackupError(
            f"{what}: {error.get('description', error)} (error {error.get('err_code', '?')})"
        )
    return answer


def _version(nc: Client) -> str:
    v = nc.connected_server_version
    return f"{v.major}.{v.minor}.{v.patch}"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _write(path: Path, data: bytes) -> None:
    with path.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def describe(entries: Iterable[StreamEntry]) -> list[str]:
    """One line per stream of a backup."""
    return [
        f"{e.stream} ({e.role}): {held(e.messages, e.first_seq, e.last_seq)}, "
        f"{e.consumers} consumers, {_size(e.archive.size)}, sha256 {e.archive.sha256[:16]}…"
        for e in entries
    ]


def held(messages: int, first_seq: int, last_seq: int) -> str:
    """What a stream holds, in words."""
    if not messages:
        return f"empty (last seq {last_seq})" if last_seq else "empty"
    return f"{messages} messages, seq {first_seq}..{last_seq}"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
