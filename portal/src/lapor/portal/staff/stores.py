"""Where the staff's accounts, sessions and sign-ins live: NATS, like the routing rules.

* accounts: the key-value bucket ``<ROOT>_STAFF_ACCOUNTS``, one entry per user name; every
  change is a compare-and-set on the entry's revision, so two portal replicas counting
  failures at once cannot lose one (and an unlock cannot be undone by a late failure);
* sessions: ``<ROOT>_STAFF_SESSIONS``, keyed by the SHA-256 of the cookie's token (the
  bucket never holds a usable token), each entry gone after the bucket's age limit
  (``LAPOR_STAFF_SESSION_SECONDS``) whatever the portal does; signing out deletes it;
* failed sign-ins per client address: ``<ROOT>_STAFF_THROTTLE`` (:class:`Throttle`);
* sign-ins: the stream ``<ROOT>_STAFF_SIGNINS``, one message per attempt, kept two years.

The buckets and the stream are declared by ``lapor migrate`` like every other.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from lapor.portal.staff.accounts import Account
from lapor.shared.subjects import Subjects

CAS_TRIES = 5


class Accounts:
    """The accounts' bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, subjects: Subjects) -> Accounts:
        return cls(await js.key_value(subjects.staff_accounts_bucket))

    async def get(self, username: str) -> tuple[Account, int] | None:
        """The account and its revision; None if there is none (or it was removed)."""
        try:
            entry = await self.kv.get(username)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        return Account.from_json(entry.value), entry.revision or 0

    async def add(self, account: Account) -> None:
        """A new account (also under the name of a removed one);
        ``KeyWrongLastSequenceError`` if the name is taken."""
        await self.kv.create(account.username, account.to_json())

    async def change(
        self, username: str, how: Callable[[Account], Account | Awaitable[Account]]
    ) -> Account | None:
        """Apply ``how`` to the account with compare-and-set, again on a race; None if
        there is no such account."""
        for _ in range(CAS_TRIES):
            found = await self.get(username)
            if found is None:
                return None
            account, revision = found
            changed = how(account)
            if not isinstance(changed, Account):
                changed = await changed
            try:
                await self.kv.update(username, changed.to_json(), last=revision)
            except KeyWrongLastSequenceError:
                continue
            return changed
        raise RuntimeError(f"account {username} kept changing under us")

    async def remove(self, username: str) -> bool:
        if await self.get(username) is None:
            return False
        await self.kv.delete(username)
        return True

    async def all(self) -> list[Account]:
        try:
            keys = await self.kv.keys()
        except NotFoundError:  # nats-py: no keys at all
            return []
        found = [await self.get(key) for key in sorted(keys)]
        return [account for account, _ in filter(None, found)]


@dataclass(frozen=True)
class Session:
    username: str
    started_at: datetime
    key: str
    """The SHA-256 of the cookie's token: what the bucket is keyed by."""


def session_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """The sessions' bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, subjects: Subjects) -> Sessions:
        return cls(await js.key_value(subjects.staff_sessions_bucket))

    async def start(self, username: str, now: datetime) -> tuple[str, Session]:
        """A new session: the token for the cookie, and the session."""
        token = secrets.token_urlsafe(32)
        key = session_key(token)
        value = {"username": username, "started_at": now.isoformat()}
        await self.kv.create(key, json.dumps(value).encode())
        return token, Session(username, now, key)

    async def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 100:
            return None
        key = session_key(token)
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        data = json.loads(entry.value)
        return Session(data["username"], datetime.fromisoformat(data["started_at"]), key)

    async def end(self, token: str | None) -> None:
        if token and len(token) <= 100:
            await self.kv.purge(session_key(token))


class Throttle:
    """Failed sign-ins per client address, in ``<ROOT>_STAFF_THROTTLE`` (keyed by the
    address's digest, counted with compare-and-set). Each failure rewrites the entry, and
    NATS drops it once the address has been quiet for the bucket's age limit: a sliding
    window. The lock-out of an account stops guessing one password; this stops one
    address from trying a few passwords on every account."""

    LIMIT = 20
    """Failures from one address before it must wait."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, subjects: Subjects) -> Throttle:
        return cls(await js.key_value(subjects.staff_throttle_bucket))

    @staticmethod
    def _key(address: str) -> str:
        return hashlib.sha256(address.encode()).hexdigest()[:40]

    async def _count(self, key: str) -> tuple[int, int]:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return 0, 0
        return int(entry.value or b"0"), entry.revision or 0

    async def blocked(self, address: str) -> bool:
        count, _ = await self._count(self._key(address))
        return count >= self.LIMIT

    async def failed(self, address: str) -> int:
        """Count one more failure; returns the count."""
        key = self._key(address)
        for _ in range(CAS_TRIES):
            count, revision = await self._count(key)
            value = str(count + 1).encode()
            try:
                if revision:
                    await self.kv.update(key, value, last=revision)
                else:
                    await self.kv.create(key, value)
            except KeyWrongLastSequenceError:
                continue
            return count + 1
        return self.LIMIT  # a storm of failures from this address: treat it as over


OUTCOMES = ("ok", "wrong_password", "unknown_user", "locked", "disabled", "throttled")


class SignIns:
    """The sign-in record: one message per attempt, published before the answer."""

    def __init__(self, js: JetStreamContext, subjects: Subjects) -> None:
        self.js = js
        self.subjects = subjects

    async def record(self, outcome: str, username: str, at: datetime, **context: Any) -> None:
        assert outcome in OUTCOMES, outcome
        body = {"at": at.isoformat(), "outcome": outcome, "username": username[:80], **context}
        await self.js.publish(self.subjects.signin(outcome), json.dumps(body).encode())

    async def recent(self, count: int = 50) -> list[dict[str, Any]]:
        """The last ``count`` attempts, the newest last."""
        stream = self.subjects.signins_stream
        info = await self.js.stream_info(stream)
        first, last = info.state.first_seq, info.state.last_seq
        found = []
        for seq in range(max(first, last - count + 1), last + 1):
            try:
                msg = await self.js.get_msg(stream, seq)
            except NotFoundError:
                continue
            if msg.data:
                found.append(json.loads(msg.data))
        return found


def utc_now() -> datetime:
    return datetime.now(UTC)
