"""Open311 API keys: who may POST service requests.

**The store is a JSON file** (``LAPOR_OPEN311_KEYS_FILE``, by default
``<LAPOR_DATA_DIR>/open311_keys.json``) holding, per key, an id, the client's name, the
SHA-256 of the key, and when it was created and revoked. The key itself is shown once,
by ``lapor open311-keys add``, and never stored: a reader of the file cannot post. A key
is 32 random bytes, so a plain (unsalted) hash is enough: there is nothing to guess.

A file rather than a NATS KV bucket because the keys are operator configuration, not
complaint data: the command needs no running NATS, a deployment mounts the file from a
Secret (every replica reads the same one), and a change is picked up without a restart
(the service re-reads the file when its modification time changes). Revoked keys stay
in the file, marked, so that the list shows who had access and until when. Writes go
through a temporary file and a rename, so the service never reads half a file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

PREFIX = "o311_"


@dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    sha256: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The key file: add, revoke, list, and check a key (re-read when the file changes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[float, int] | None = None
        self._records: list[KeyRecord] = []

    def records(self) -> list[KeyRecord]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._seen, self._records = None, []
            return []
        mark = (stat.st_mtime, stat.st_size)
        if mark != self._seen:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._records = [KeyRecord(**r) for r in data.get("keys", [])]
            self._seen = mark
        return list(self._records)

    def check(self, key: str | None) -> bool:
        """Whether ``key`` is one of the active keys (compared in constant time)."""
        if not key:
            return False
        given = digest(key)
        found = False
        for record in self.records():
            if record.active and hmac.compare_digest(record.sha256, given):
                found = True
        return found

    def add(self, name: str) -> tuple[KeyRecord, str]:
        """A new key for client ``name``: its record and the key, to be shown once."""
        if not name.strip():
            raise ValueError("a key needs the name of the client it is for")
        key = PREFIX + secrets.token_urlsafe(32)
        record = KeyRecord(
            id=secrets.token_hex(4),
            name=name.strip(),
            sha256=digest(key),
            created_at=_now(),
        )
        self._write([*self.records(), record])
        return record, key

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke the key with this id (or whose key this is); it stays listed."""
        records = self.records()
        for i, record in enumerate(records):
            if key_id in (record.id, record.sha256) or digest(key_id) == record.sha256:
                if not record.active:
                    raise ValueError(f"key {record.id} was revoked already")
                revoked = KeyRecord(**{**asdict(record), "revoked_at": _now()})
                records[i] = revoked
                self._write(records)
                return revoked
        raise ValueError(f"no key {key_id!r}")

    def _write(self, records: list[KeyRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        text = json.dumps({"keys": [asdict(r) for r in records]}, indent=2) + "\n"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, self.path)
        self._seen = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
