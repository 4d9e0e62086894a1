"""Operations commands use the servers they are given and ask for no other; a missing one
is started locally only on a development machine. In the runtime image, with
``LAPOR_INFRA=none`` or in a Kubernetes pod they stop with one line naming what to set,
and none of them writes an auth secret."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from lapor.devtools.infra import Infrastructure
from lapor.ops import reach
from lapor.services import cli
from lapor.services.settings import Settings

NATS = "nats://nats.lapor.svc:4222"
DATABASE = "postgresql://lapor@db.lapor.svc/lapor"
GIVEN = {"nats_url": NATS, "database_url": DATABASE}

# Every operations command that talks to a server: how it is called, the function doing
# its work (replaced here), and what it needs.
COMMANDS = {
    "migrate": (["migrate"], "lapor.ops.commands.migrate.bootstrap", {"NATS_URL", "DATABASE_URL"}),
    "replay": (
        ["replay", "--verify"],
        "lapor.ops.commands.replay.run_replay",
        {"NATS_URL", "DATABASE_URL"},
    ),
    "audit": (["audit", "verify"], "lapor.ops.commands.audit.run_audit", {"NATS_URL"}),
    "audit history": (
        ["audit", "history", "7K3MQ-9X2AB"],
        "lapor.ops.commands.audit.run_audit",
        {"NATS_URL"},
    ),
    "projections": (
        ["projections", "status"],
        "lapor.ops.commands.projections.run_projections",
        {"NATS_URL", "DATABASE_URL"},
    ),
    "rules": (["rules", "history"], "lapor.ops.commands.rules._run", {"NATS_URL"}),
    "router": (["router", "models"], "lapor.ops.commands.router.run_router", {"NATS_URL"}),
}
URL_VARIABLES = {"NATS_URL": NATS, "DATABASE_URL": DATABASE}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean environment for the ``lapor`` command; returns its data folder."""
    for name in (
        "NATS_URL",
        "DATABASE_URL",
        "LAPOR_NATS_URL",
        "LAPOR_DATABASE_URL",
        "LAPOR_REBUILD_DATABASE_URL",
        "LAPOR_AUTH_SECRET",
        "LAPOR_INFRA",
        "KUBERNETES_SERVICE_HOST",
    ):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("LAPOR_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)
    # The command points logging at this test's captured stderr, closed once it ends.
    monkeypatch.setattr(cli, "configure_logging", lambda *args: None)
    return data


@pytest.fixture
def no_local_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting local servers fails the test."""

    def infrastructure(settings: Settings):
        raise AssertionError(f"local servers started for {settings!r}")

    monkeypatch.setattr("lapor.devtools.infra.infrastructure", infrastructure)


def outcome(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Exit code and stderr lines of ``lapor ARGV`` as the console script ends it."""
    try:
        _run(argv)
    except SystemExit as e:
        code, err = e.code, capsys.readouterr().err
        if isinstance(code, str):  # cli.run's one line for an error a user can act on
            return 1, [*err.splitlines(), code]
        return int(code or 0), err.splitlines()
    raise AssertionError("lapor did not exit")


def _run(argv: list[str]) -> None:
    old = sys.argv
    sys.argv = ["lapor", *argv]
    try:
        cli.run()
    finally:
        sys.argv = old


def recorder(monkeypatch: pytest.MonkeyPatch, target: str) -> list[Settings]:
    """Replace ``target`` by a coroutine that records the settings it is given."""
    seen: list[Settings] = []

    async def work(*args, **kwargs):
        seen.extend(a for a in args if isinstance(a, Settings))
        return [] if target.endswith(".bootstrap") else 0

    monkeypatch.setattr(target, work)
    return seen


def test_given_urls_are_used_as_they_are() -> None:
    settings = Settings(**GIVEN)
    with reach.deployment(settings) as reached:
        assert reached is settings


def test_a_nats_only_command_needs_no_database_url(no_local_servers: None) -> None:
    settings = Settings(nats_url=NATS, database_url=None, infra="none")
    with reach.deployment(settings, database=False) as reached:
        assert reached is settings and reached.database_url is None


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("why", ["LAPOR_INFRA=none", "kubernetes", "runtime image"])
def test_without_its_urls_a_command_stops_in_one_line_and_writes_nothing(
    name: str,
    why: str,
    env: Path,
    no_local_servers: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv, target, needs = COMMANDS[name]
    seen = recorder(monkeypatch, target)
    if why == "LAPOR_INFRA=none":
        monkeypatch.setenv("LAPOR_INFRA", "none")
        reason = "LAPOR_INFRA=none starts no local servers"
    elif why == "kubernetes":  # devtools installed, LAPOR_INFRA=auto: still nothing local
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
        reason = "no local servers are started in a Kubernetes pod"
    else:
        monkeypatch.setattr(reach, "entry_points", lambda **selection: ())
        reason = "local servers come with lapor-devtools, not installed here"

    code, lines = outcome(argv, capsys)

    assert code != 0 and not seen
    [line] = lines
    wanted = " and ".join(v for v in URL_VARIABLES if v in needs)
    assert line.endswith(f": set {wanted} ({reason})"), line
    assert not env.exists()  # no auth secret, nothing at all


@pytest.mark.parametrize("name", COMMANDS)
def test_given_what_it_needs_a_command_runs_in_a_pod_and_writes_nothing(
    name: str,
    env: Path,
    no_local_servers: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv, target, needs = COMMANDS[name]
    seen = recorder(monkeypatch, target)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    for variable in needs:
        monkeypatch.setenv(variable, URL_VARIABLES[variable])

    code, lines = outcome(argv, capsys)

    assert (code, lines) == (0, [])
    [settings] = seen
    assert settings.nats_url == NATS
    assert settings.database_url == (DATABASE if "DATABASE_URL" in needs else None)
    assert settings.auth_secret is None
    assert not env.exists()


def test_on_a_development_machine_only_the_missing_server_asked_for_is_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    asked: list[Settings] = []

    @contextlib.contextmanager
    def infrastructure(settings: Settings) -> Iterator[Infrastructure]:
        asked.append(settings)
        yield Infrastructure(
            settings.nats_url or "nats://127.0.0.1:4999",
            settings.database_url or "postgresql://local/lapor",
            "embedded",
        )

    monkeypatch.setattr("lapor.devtools.infra.infrastructure", infrastructure)
    with reach.deployment(Settings(infra="auto"), database=False) as reached:
        assert (reached.nats_url, reached.database_url) == ("nats://127.0.0.1:4999", None)
    # The database was passed as given (a placeholder): no PostgreSQL is started for it.
    assert asked[0].nats_url is None and asked[0].database_url == reach.NOT_NEEDED
    with reach.deployment(Settings(infra="auto")) as reached:
        assert reached.database_url == "postgresql://local/lapor"


def test_the_local_infrastructure_of_devtools_is_found_by_entry_point() -> None:
    found = entry_points(group="lapor.infrastructure", name="local")
    assert [ep.value for ep in found] == ["lapor.devtools.infra:infrastructure"]


def test_no_operations_command_writes_a_local_secret() -> None:
    ops = [ep for ep in entry_points(group="lapor.commands") if ep.value.startswith("lapor.ops.")]
    assert {ep.name for ep in ops} >= {*(n.split()[0] for n in COMMANDS), "token"}
    assert [ep.name for ep in ops if ep.load().local_secret] == []


def test_a_token_without_a_secret_in_a_pod_is_refused_in_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert cli.main(["token", "admin"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "lapor token: set LAPOR_AUTH_SECRET (no local servers are started in a Kubernetes pod)"
    ]
    assert not env.exists()


def test_a_token_on_a_development_machine_uses_the_local_secret(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["token", "admin"]) == 0
    assert capsys.readouterr().out.count(".") == 2  # a JWT
    assert (env / "auth_secret").stat().st_mode & 0o777 == 0o600


def test_the_console_script_says_it_in_one_line(tmp_path: Path) -> None:
    """The issue's case, end to end, in a pod with devtools installed: with only NATS_URL
    set, migrate names DATABASE_URL; without it, the audit names NATS_URL alone. Neither
    starts a server nor writes anything."""
    lapor = Path(sys.executable).with_name("lapor")
    unset = {"NATS_URL", "DATABASE_URL", "LAPOR_AUTH_SECRET", "LAPOR_INFRA"}
    base = {k: v for k, v in os.environ.items() if k not in unset}
    environment = {
        **base,
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "LAPOR_DATA_DIR": str(tmp_path / "data"),
    }

    def lapor_(*argv: str, **variables: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(lapor), *argv],
            env={**environment, **variables},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    migrate = lapor_("migrate", NATS_URL=NATS)
    assert migrate.returncode == 1
    assert migrate.stderr.splitlines() == [
        "lapor: set DATABASE_URL (no local servers are started in a Kubernetes pod)"
    ]
    audit = lapor_("audit", "verify")
    assert audit.returncode == 2  # could not run, which is not "findings" (1)
    assert audit.stderr.splitlines() == [
        "lapor audit verify: set NATS_URL (no local servers are started in a Kubernetes pod)"
    ]
    assert list(tmp_path.iterdir()) == []
