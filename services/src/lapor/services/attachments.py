"""The citizens' attachments in the JetStream object store ``<ROOT>_ATTACHMENTS``.

Each object is named by the sha256 (hex) of its bytes: the same bytes are stored once,
however often they are sent (a retried submission stores nothing again), and a reader
checks what it reads against the name the event gave it. Intake writes (before it
appends the ``complaint.received`` that refers to them); the tracker reads, for those
who may read the complaint. Nothing else touches the bucket (``lapor nats-users``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator

import nats.errors
import nats.js.errors
import structlog
from nats.js import JetStreamContext
from nats.js.api import ObjectInfo, ObjectMeta
from nats.js.object_store import ObjectStore

log = structlog.get_logger(__name__)

CHUNK_BYTES = 128 * 1024
"""What nats-py puts in one message of an object (its default)."""
CHUNK_WAIT_SECONDS = 5.0
"""How long a read waits for the next chunk before it gives up."""


class AttachmentMissing(Exception):
    """The object is not in the store (never stored, or erased on request)."""


class AttachmentCorrupt(Exception):
    """The bytes read do not have the digest the object is named by."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _nats_digest(sha256: str) -> str:
    """The object store's own digest notation of a hex sha256 (``SHA-256=<base64url>``)."""
    return "SHA-256=" + base64.urlsafe_b64encode(bytes.fromhex(sha256)).decode()


def _holds(info: ObjectInfo | None, sha256: str, size: int) -> bool:
    return (
        info is not None
        and not info.deleted
        and info.size == size
        and (info.digest or "").upper() == _nats_digest(sha256).upper()
    )


class AttachmentStore:
    """One object store, by bucket name, on a JetStream context."""

    def __init__(self, js: JetStreamContext, bucket: str) -> None:
        self.js = js
        self.bucket = bucket
        self._store: ObjectStore | None = None

    async def store(self) -> ObjectStore:
        if self._store is None:
            self._store = await self.js.object_store(self.bucket)
        return self._store

    async def _info(self, name: str) -> ObjectInfo | None:
        store = await self.store()
        try:
            return await store.get_info(name)
        except nats.js.errors.ObjectNotFoundError:
            return None

    async def put(self, data: bytes, media_type: str) -> tuple[str, bool]:
        """Store ``data`` under its sha256 unless it is there already; returns the name
        and whether it was written now. Durable when it returns (JetStream acknowledged
        every chunk and the object's record)."""
        name = sha256_hex(data)
        if _holds(await self._info(name), name, len(data)):
            return name, False
        store = await self.store()
        meta = ObjectMeta(name=name, headers={"Content-Type": [media_type]})
        try:
            await store.put(name, data, meta=meta)
        except (nats.errors.Error, TimeoutError):
            # Two writers of the same bytes: the second replaces the first and then
            # removes its chunks, which intake may not do (no purge permission). The
            # object is whole either way; only if it is not is this a failure.
            if not _holds(await self._info(name), name, len(data)):
                raise
        log.info("attachment stored", bucket=self.bucket, size=len(data))
        return name, True

    async def open(self, name: str, sha256: str) -> tuple[int, AsyncIterator[bytes]]:
        """The object's size and its bytes, chunk by chunk as they come from the server
        (an ordered consumer on its chunks): :class:`AttachmentMissing` at once if it is
        not there. Once every chunk is read their digest is checked against ``sha256``,
        and :class:`AttachmentCorrupt` raised if it differs (a response already under way
        is then cut off, never ended as if whole)."""
        info = await self._info(name)
        if info is None or info.deleted or not info.nuid or info.size is None:
            raise AttachmentMissing(name)
        return info.size, self._chunks(info, name, sha256)

    async def _chunks(self, info: ObjectInfo, name: str, sha256: str) -> AsyncIterator[bytes]:
        digest = hashlib.sha256()
        if info.size:
            # The stream named: nats-py would otherwise look it up ($JS.API.STREAM.NAMES),
            # which the tracker's NATS user may not.
            sub = await self.js.subscribe(
                f"$O.{self.bucket}.C.{info.nuid}",
                stream=f"OBJ_{self.bucket}",
                ordered_consumer=True,
            )
            try:
                while True:
                    msg = await sub.next_msg(timeout=CHUNK_WAIT_SECONDS)
                    digest.update(msg.data)
                    yield msg.data
                    if msg.metadata.num_pending == 0:
                        break
            finally:
                await sub.unsubscribe()
        if digest.hexdigest() != sha256:
            log.error("attachment corrupt", bucket=self.bucket, name=name)
            raise AttachmentCorrupt(name)
