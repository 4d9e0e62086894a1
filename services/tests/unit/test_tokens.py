"""Officer and admin tokens: every one expires and names a known unit (``lapor token``, which
refuses what it cannot issue in one line, is tested with lapor-ops)."""

from __future__ import annotations

import time

import jwt
import pytest

from lapor.services.auth import (
    ALGORITHM,
    ISSUER,
    MAX_TTL,
    InvalidToken,
    actor_from_token,
    issue_token,
)
from lapor.shared.events import Actor

SECRET = "unit-test-secret-of-thirty-two-bytes"


def signed(**claims: object) -> str:
    return jwt.encode(claims, SECRET, algorithm=ALGORITHM)


def full_claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {"iss": ISSUER, "sub": "admin", "iat": now, "exp": now + 60}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_an_issued_token_reads_back_as_its_actor() -> None:
    token = issue_token(SECRET, "agency", "dpupr", name="Rina")
    assert actor_from_token(SECRET, token) == Actor(role="agency", opd="dpupr", name="Rina")
    assert actor_from_token(SECRET, signed(**full_claims())) == Actor(role="admin")


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "iss"])
def test_a_token_without_a_required_claim_is_refused(missing: str) -> None:
    with pytest.raises(InvalidToken):
        actor_from_token(SECRET, signed(**full_claims(**{missing: None})))


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "someone-else"},
        {"exp": int(time.time()) - 10},  # expired
        {"exp": int(time.time()) + MAX_TTL + 3600},  # lives longer than any token may
        {"sub": "reporter"},  # only admins and officers hold tokens
        {"sub": "agency"},  # an officer without a unit
        {"sub": "agency:Not A Unit"},
        {"sub": 7},
    ],
)
def test_a_token_that_is_not_what_lapor_issues_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidToken):
        actor_from_token(SECRET, signed(**full_claims(**changes)))


def test_a_token_is_refused_for_a_unit_not_in_the_registry() -> None:
    with pytest.raises(ValueError, match="no unit 'no_such_unit' in the OPD registry"):
        issue_token(SECRET, "agency", "no_such_unit")


def test_a_token_lives_at_most_thirty_days() -> None:
    issue_token(SECRET, "admin", ttl=MAX_TTL)
    with pytest.raises(ValueError, match="at most 30 days"):
        issue_token(SECRET, "admin", ttl=MAX_TTL + 1)


def test_a_bad_name_is_one_line() -> None:
    with pytest.raises(ValueError) as refused:
        issue_token(SECRET, "admin", name="x" * 500)
    assert "\n" not in str(refused.value) and str(refused.value).startswith("name: ")
