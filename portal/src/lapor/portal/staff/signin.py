"""A sign-in attempt: decided against the account, counted, recorded, and logged.

Every attempt is published to the sign-in record before the answer is given, and logged.
An unknown name, a wrong password, a locked or disabled account all get the same answer
on the page ("the name or the password is wrong", or "locked") so that the page does not
tell which names exist; the record says which it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog

from lapor.portal.staff import accounts as acc
from lapor.portal.staff.stores import Accounts, SignIns, Throttle

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Attempt:
    outcome: str
    """One of ``stores.OUTCOMES``."""
    account: acc.Account | None = None
    """The account signed in to (only when ``outcome`` is ``ok``)."""


async def sign_in(
    accounts: Accounts,
    record: SignIns,
    username: str,
    password: str,
    now: datetime,
    throttle: Throttle | None = None,
    **context: str,
) -> Attempt:
    """Check ``password`` for ``username``; count a failure or reset the count; record
    and log the attempt with ``context`` (the client's address, its user agent). With a
    ``throttle``, an address with too many failures is refused before any check, and
    each failure from it is counted."""
    username = username.strip().lower()
    address = context.get("address", "-")
    if throttle is not None and await throttle.blocked(address):
        attempt = Attempt("throttled")
    else:
        attempt = await _decide(accounts, username, password, now)
        if throttle is not None and attempt.outcome in ("wrong_password", "unknown_user"):
            await throttle.failed(address)
    await record.record(attempt.outcome, username, now, **context)
    emit = log.info if attempt.outcome == "ok" else log.warning
    emit("staff sign-in", outcome=attempt.outcome, username=username[:80], **context)
    return attempt


async def _decide(accounts: Accounts, username: str, password: str, now: datetime) -> Attempt:
    found = await accounts.get(username) if acc.USERNAME.match(username) else None
    account = found[0] if found else None
    matches = acc.password_matches(account, password)  # as slow for every outcome
    if account is None:
        return Attempt("unknown_user")
    if account.disabled:
        return Attempt("disabled")
    if account.locked(now):
        return Attempt("locked")
    if not matches:
        await accounts.change(username, lambda a: acc.after_failure(a, now))
        return Attempt("wrong_password")
    fresh = await accounts.change(username, lambda a: acc.after_success(a, password))
    return Attempt("ok", fresh)
