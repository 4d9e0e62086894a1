"""``lapor token`` refuses what it cannot issue in one line, and issues tokens that expire."""

from __future__ import annotations

import jwt
import pytest

from lapor.services.auth import ALGORITHM, ISSUER, MAX_TTL, actor_from_token
from lapor.services.cli import main
from lapor.shared.events import Actor

SECRET = "unit-test-secret-of-thirty-two-bytes"


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
