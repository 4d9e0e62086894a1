"""Officer and admin tokens: every one expires, names a known unit, and ``lapor token``
refuses what it cannot issue in one line."""

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
from lapor.services.cli import main
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


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("LAPOR_AUTH_SECRET", SECRET)
    monkeypatch.setenv("LAPOR_DATA_DIR", str(tmp_path))
    # The command points the process's logging at this test's captured stderr, which is
    # closed once the test ends: later tests would log into a closed file.
    monkeypatch.setattr("lapor.services.cli.configure_logging", lambda *args: None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["agency", "no_such_unit"], "no unit 'no_such_unit' in the OPD registry"),
        (["admin", "--ttl", "-5"], "--ttl must be a positive number of seconds"),
        (["admin", "--ttl", "0"], "--ttl must be a positive number of seconds"),
        (["admin", "--ttl", str(MAX_TTL + 1)], "a token lives at most 30 days (2592000 s)"),
        (["agency"], "tokens are for admins, and for agency officers with their OPD"),
    ],
)
def test_lapor_token_refuses_in_one_line(
    cli_env: None, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["token", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"lapor token: {message}"]


def test_lapor_token_issues_a_token_that_expires(
    cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "agency", "dlh", "--ttl", "120"]) == 0
    token = capsys.readouterr().out.strip()
    assert actor_from_token(SECRET, token) == Actor(role="agency", opd="dlh")
    claims = jwt.decode(token, SECRET, algorithms=[ALGORITHM], issuer=ISSUER)
    assert claims["exp"] - claims["iat"] == 120
