"""Staff accounts (akun petugas): who may sign in to the staff pages, and as what.

Two roles: an **officer** (admin penghubung) acts for one unit of the OPD registry; the
**coordinator** (admin koordinator) verifies and disposes. What an account may do in the
tracker is what its role's token may do (``admin`` or ``agency:<opd>``).

Passwords are hashed with Argon2id (argon2-cffi, RFC 9106's second recommended profile:
64 MiB, three passes) and never stored or logged otherwise. After
:data:`MAX_FAILURES` wrong passwords in a row an account is locked for :data:`LOCKOUT`;
a right password resets the count. Everything here is pure: the stores keep accounts,
the pages ask.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from lapor.shared.events import Actor

ROLES = {"officer": "agency", "coordinator": "admin"}
"""An account's role, and the tracker role its actions are taken as."""
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,39}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 256
"""Argon2 takes any length; a bound keeps a sign-in from hashing megabytes."""
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)

_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
_DECOY = _hasher.hash("a password no account has")
"""Checked against when the user name is unknown, so that the answer takes as long."""


class InvalidAccount(ValueError):
    """An account that cannot be made: the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    """``officer`` or ``coordinator``."""
    opd: str | None
    """An officer's unit; none for the coordinator."""
    name: str
    password_hash: str
    failures: int = 0
    locked_until: datetime | None = None
    disabled: bool = False
    changed_at: datetime | None = None

    def actor(self) -> Actor:
        """Who the tracker records as having acted: the role's token role and the name."""
        return Actor(role=ROLES[self.role], opd=self.opd, name=self.username)

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def to_json(self) -> bytes:
        data = asdict(self)
        for key in ("locked_until", "changed_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return json.dumps(data).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Account:
        data: dict[str, Any] = json.loads(raw)
        for key in ("locked_until", "changed_at"):
            data[key] = datetime.fromisoformat(data[key]) if data.get(key) else None
        return cls(**data)


def new_account(
    username: str,
    role: str,
    password: str,
    *,
    opd: str | None = None,
    name: str | None = None,
    units: frozenset[str] | set[str] = frozenset(),
    now: datetime | None = None,
) -> Account:
    """A checked account: a user name of 3–40 lower-case letters, digits, ``.``, ``_``
    or ``-``; an officer with a unit of the registry (``units``), the coordinator without
    one; a password of at least :data:`MIN_PASSWORD` characters."""
    if not USERNAME.match(username):
        raise InvalidAccount(
            "username", "3 to 40 lower-case letters, digits, '.', '_' or '-', from a letter"
        )
    if role not in ROLES:
        raise InvalidAccount("role", f"one of {', '.join(ROLES)}")
    if role == "officer" and opd not in units:
        raise InvalidAccount("opd", "an officer needs a unit of the OPD registry")
    if role == "coordinator" and opd is not None:
        raise InvalidAccount("opd", "the coordinator acts for no single unit")
    return Account(
        username=username,
        role=role,
        opd=opd,
        name=(name or username).strip()[:120],
        password_hash=hash_password(password),
        changed_at=now or datetime.now(UTC),
    )


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidAccount("password", f"at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidAccount("password", f"at most {MAX_PASSWORD} characters")
    return _hasher.hash(password)


def password_matches(account: Account | None, password: str) -> bool:
    """Whether ``password`` is the account's; for no account, as slow, and False."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        ok = _hasher.verify(account.password_hash if account else _DECOY, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and account is not None


def with_password(account: Account, password: str, now: datetime) -> Account:
    """The account with a new password; a reset also lifts a lock-out."""
    return replace(
        account,
        password_hash=hash_password(password),
        failures=0,
        locked_until=None,
        changed_at=now,
    )


def after_failure(account: Account, now: datetime) -> Account:
    """One more wrong password; the :data:`MAX_FAILURES`-th locks the account."""
    failures = account.failures + 1
    locked_until = now + LOCKOUT if failures >= MAX_FAILURES else account.locked_until
    return replace(account, failures=failures, locked_until=locked_until)


def after_success(account: Account, password: str) -> Account:
    """The count of failures starts again; a hash made with weaker parameters than
    today's is replaced while the password is at hand."""
    fresh = replace(account, failures=0, locked_until=None)
    if _hasher.check_needs_rehash(account.password_hash):
        fresh = replace(fresh, password_hash=_hasher.hash(password))
    return fresh


def unlocked(account: Account) -> Account:
    return replace(account, failures=0, locked_until=None)
