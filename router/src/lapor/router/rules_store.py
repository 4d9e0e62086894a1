"""Routing rules an operator can change without a redeploy: a versioned NATS KV bucket.

The bucket (its name chosen by the caller, e.g. ``LAPOR_ROUTING_RULES``) holds

- under ``routing_table``, the TOML text of the routing table in force. The bucket keeps
  the last ``HISTORY`` (64, the most NATS allows) revisions of it, so a previous table can
  be read back and re-published, and every revision number is a version;
- under ``changes.<revision>``, one JSON record per published table: who published it,
  when, the table's version and the SHA-256 of its text. KV history alone would say
  neither who nor (after 64 changes) what, and a key per change is never rolled off, so
  this is the record of every change made through ``RulesStore.publish``.

``publish`` validates a table before it is stored: a table that ``RoutingTable`` refuses
never reaches the routers. A text put into the bucket by other means is validated by
the watcher, which logs and ignores an invalid one and keeps routing by the table it has.
Deleting the key changes nothing for running routers; to go back to the packaged table,
publish it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import nats.js.errors
import structlog
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

from lapor.router.domain import RoutingTable

log = structlog.get_logger(__name__)

KEY = "routing_table"
"""The key holding the routing table's TOML text."""
CHANGES = "changes"
"""Prefix of the keys recording each change: ``changes.<revision>``."""
HISTORY = 64
"""Revisions of the table the bucket keeps (the NATS maximum)."""

DELETED = frozenset({"DEL", "PURGE"})
"""KV operations that remove a value rather than put one."""


@dataclass(frozen=True)
class RulesChange:
    """The record of one published routing table."""

    revision: int
    author: str
    version: str
    sha: str
    at: str


class RulesStore:
    """Publish, read and watch the routing table kept in a NATS key-value bucket.

    Stateless: every call names the JetStream context and the bucket, so one router can
    watch while an operator's tool publishes.
    """

    @staticmethod
    async def publish(
        js: JetStreamContext,
        text: str,
        *,
        bucket: str,
        author: str,
        expected_revision: int | None = None,
        deployment: str | None = None,
    ) -> int:
        """Validate ``text`` as a routing table, store it, record the change, and return
        its revision.

        Raises ``ValueError`` for a table ``RoutingTable.from_text`` refuses (nothing is
        stored then). With ``expected_revision`` the table replaces only that revision
        (0: only if none was ever published), so two operators cannot overwrite each
        other unknowingly; a stale one gets ``nats.js.errors.KeyWrongLastSequenceError``.
        The table is checked against the registry of ``deployment`` (by default
        ``LAPOR_DEPLOYMENT``'s).
        """
        if not author.strip():
            raise ValueError("routing rules: the author of a change must be named")
        table = RoutingTable.from_text(text, deployment=deployment)
        kv = await _bucket(js, bucket)
        data = text.encode("utf-8")
        if expected_revision is None:
            revision = await kv.put(KEY, data)
        else:
            revision = await kv.update(KEY, data, last=expected_revision)
        change = RulesChange(
            revision=revision,
            author=author.strip(),
            version=table.version,
            sha=hashlib.sha256(data).hexdigest(),
            at=datetime.now(UTC).isoformat(),
        )
        await kv.put(f"{CHANGES}.{revision}", json.dumps(change.__dict__).encode())
        log.info("routing rules published", revision=revision, version=table.version, author=author)
        return revision

    @staticmethod
    async def current(
        js: JetStreamContext, bucket: str, *, deployment: str | None = None
    ) -> RoutingTable | None:
        """The newest valid table in the bucket (for the registry of ``deployment``), or
        ``None`` if there is none (no bucket, nothing published, or only invalid texts)."""
        with contextlib.suppress(nats.js.errors.BucketNotFoundError):
            kv = await js.key_value(bucket)
            try:
                entries = await kv.history(KEY)
            except nats.js.errors.NoKeysError:
                return None
            for entry in reversed(entries):
                table = _table(entry, deployment)
                if table is not None:
                    return table
        return None

    @staticmethod
    async def changes(js: JetStreamContext, bucket: str) -> list[RulesChange]:
        """Every recorded change, oldest first."""
        try:
            kv = await js.key_value(bucket)
            entries = await kv.history(f"{CHANGES}.*")
        except (nats.js.errors.BucketNotFoundError, nats.js.errors.NoKeysError):
            return []
        records = [
            RulesChange(**json.loads(e.value))
            for e in entries
            if e.value and e.operation not in DELETED
        ]
        return sorted(records, key=lambda c: c.revision)

    @staticmethod
    async def watch(
        js: JetStreamContext,
        bucket: str,
        on_change: Callable[[RoutingTable], None],
        *,
        deployment: str | None = None,
    ) -> None:
        """Call ``on_change`` with the table in the bucket, then with every valid new one,
        until cancelled. Run it as a task::

            task = asyncio.create_task(RulesStore.watch(js, bucket, swap))

        The bucket is created if it does not exist yet. An invalid text (for the registry
        of ``deployment``) is logged and ignored (the caller keeps its table), and so is a
        deleted key.
        """
        kv = await _bucket(js, bucket)
        watcher = await kv.watch(KEY)
        try:
            async for entry in watcher:
                if entry is None:
                    continue  # the end of the initial values
                if entry.operation in DELETED:
                    log.warning(
                        "routing rules deleted; keeping the current table",
                        revision=entry.revision,
                    )
                    continue
                table = _table(entry, deployment)
                if table is None:
                    continue
                log.info("routing rules changed", revision=entry.revision, version=table.version)
                try:
                    on_change(table)
                except Exception:
                    log.exception("routing rules: applying the new table failed")
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()


def _table(entry: KeyValue.Entry, deployment: str | None = None) -> RoutingTable | None:
    if entry.operation in DELETED or entry.value is None:
        return None
    try:
        return RoutingTable.from_text(entry.value.decode("utf-8"), deployment=deployment)
    except (ValueError, UnicodeDecodeError) as e:
        log.error("routing rules: ignoring an invalid table", revision=entry.revision, error=str(e))
        return None


async def _bucket(js: JetStreamContext, bucket: str) -> KeyValue:
    try:
        return await js.key_value(bucket)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(
            bucket=bucket,
            history=HISTORY,
            description="Routing rules of the router (lapor.router.rules_store)",
        )
