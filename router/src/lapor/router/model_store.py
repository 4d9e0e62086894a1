"""Routing models an operator trains, publishes and rolls back without a redeploy.

Two NATS buckets:

- an object store (``subjects.routing_models_bucket``) keeps every published model's
  archive under its version (``m-…``, a hash of the archive, so a version names exactly
  one model);
- the routing rules' key-value bucket keeps, under ``model``, the record of the model in
  force: its version, the archive's SHA-256, who published it and when, and how it was
  trained. The key's history (64 revisions) is the list of models that were in force;
  rolling back puts an earlier record again.

Routers watch the key (``watch``): on a new record they fetch the archive, check its hash
and load it, then route with it; an archive that is missing, altered or unreadable is
logged and ignored, and the router keeps the model it has.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import nats.js.errors
import structlog
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from lapor.router.model import TextModel
from lapor.router.rules_store import DELETED, HISTORY

log = structlog.get_logger(__name__)

KEY = "model"
"""The key of the rules bucket naming the model in force."""


@dataclass(frozen=True)
class ModelRecord:
    """A model put in force: which, by whom, when, and how it was trained."""

    version: str
    sha256: str
    author: str
    at: str
    info: dict = field(default_factory=dict)
    revision: int = 0
    """The key's revision that put it in force (0 before it is stored)."""


class ModelStore:
    """Publish, list, roll back and watch routing models. Stateless, like ``RulesStore``."""

    def __init__(self, js: JetStreamContext, *, rules_bucket: str, models_bucket: str) -> None:
        self.js, self.rules_bucket, self.models_bucket = js, rules_bucket, models_bucket

    async def publish(self, model: TextModel, *, author: str) -> ModelRecord:
        """Store ``model``'s archive and put it in force; the routers switch to it."""
        if not author.strip():
            raise ValueError("routing model: the author of a change must be named")
        data = model.to_bytes()
        objects = await self._objects()
        await objects.put(model.version, data)
        return await self._put(
            model.version, hashlib.sha256(data).hexdigest(), author, dict(model.info)
        )

    async def history(self) -> list[ModelRecord]:
        """The models that were put in force, oldest first (the last is in force)."""
        kv = await self._kv()
        try:
            entries = await kv.history(KEY)
        except nats.js.errors.NoKeysError:
            return []
        return [_record(e) for e in entries if e.value and e.operation not in DELETED]

    async def use(self, version: str, *, author: str) -> ModelRecord:
        """Put a model published before back in force (``ValueError`` if none has that
        version)."""
        known = {r.version: r for r in await self.history()}
        if version not in known:
            raise ValueError(f"routing model {version!r} was never published")
        earlier = known[version]
        model = await self._load(earlier)
        if model is None:
            raise ValueError(f"routing model {version!r}: its archive is missing or altered")
        return await self._put(version, earlier.sha256, author, earlier.info)

    async def rollback(self, *, author: str) -> ModelRecord:
        """Put the model in force before the current one back in force."""
        records = await self.history()
        if not records:
            raise ValueError("no routing model was ever published")
        current = records[-1].version
        earlier = [r for r in records if r.version != current]
        if not earlier:
            raise ValueError("no earlier routing model to roll back to")
        return await self.use(earlier[-1].version, author=author)

    async def current(self) -> TextModel | None:
        """The model in force, or None if none was published (or its archive is bad)."""
        records = await self.history()
        return await self._load(records[-1]) if records else None

    async def watch(self, on_change: Callable[[TextModel], None]) -> None:
        """Call ``on_change`` with the model in force, then with every new one, until
        cancelled (run it as a task)."""
        kv = await self._kv()
        watcher = await kv.watch(KEY)
        try:
            async for entry in watcher:
                if entry is None or entry.operation in DELETED or not entry.value:
                    continue
                model = await self._load(_record(entry))
                if model is None:
                    continue
                log.info("routing model changed", revision=entry.revision, version=model.version)
                try:
                    on_change(model)
                except Exception:
                    log.exception("routing model: applying the new model failed")
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()

    async def _put(self, version: str, sha: str, author: str, info: dict) -> ModelRecord:
        record = ModelRecord(
            version=version,
            sha256=sha,
            author=author.strip(),
            at=datetime.now(UTC).isoformat(),
            info=info,
        )
        kv = await self._kv()
        payload = {k: v for k, v in asdict(record).items() if k != "revision"}
        revision = await kv.put(KEY, json.dumps(payload, sort_keys=True).encode())
        log.info("routing model in force", version=version, revision=revision, author=author)
        return ModelRecord(**{**payload, "revision": revision})

    async def _load(self, record: ModelRecord) -> TextModel | None:
        try:
            objects = await self._objects()
            data = (await objects.get(record.version)).data or b""
        except nats.js.errors.NotFoundError:
            log.error("routing model: archive not found", version=record.version)
            return None
        if hashlib.sha256(data).hexdigest() != record.sha256:
            log.error("routing model: archive does not match its record", version=record.version)
            return None
        try:
            return TextModel.from_bytes(data)
        except ValueError as error:
            log.error("routing model: unreadable archive", version=record.version, error=str(error))
            return None

    async def _kv(self) -> KeyValue:
        try:
            return await self.js.key_value(self.rules_bucket)
        except nats.js.errors.BucketNotFoundError:
            return await self.js.create_key_value(bucket=self.rules_bucket, history=HISTORY)

    async def _objects(self) -> ObjectStore:
        try:
            return await self.js.object_store(self.models_bucket)
        except nats.js.errors.BucketNotFoundError:
            return await self.js.create_object_store(
                self.models_bucket,
                config=ObjectStoreConfig(
                    description="Routing models (lapor.router.model_store)",
                    storage=StorageType.FILE,
                ),
            )


def _record(entry: KeyValue.Entry) -> ModelRecord:
    return ModelRecord(**json.loads(entry.value or b"{}"), revision=entry.revision or 0)
