"""``lapor serve SERVICE --role ROLE`` (or ``LAPOR_ROLE``): which parts a process runs,
and the one-line errors. No servers: the app is built (which connects nothing) and
uvicorn is replaced by a recorder."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from lapor.services import cli
from lapor.services.runtime import ALL, Part, UnknownRole, create_service, role_part
from lapor.services.serve import COMMAND as SERVE
from lapor.services.settings import Settings

ENVIRONMENT = {
    "NATS_URL": "nats://127.0.0.1:1",
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    "LAPOR_AUTH_SECRET": "unit-test-secret",
    "LAPOR_LOG_FORMAT": "console",
    "LAPOR_ROLE": ALL,  # set, so that whatever serve sets is undone afterwards
}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    """What ``lapor serve`` handed to uvicorn, instead of serving it."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cli, "installed_commands", lambda: {"serve": SERVE})
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append((app, options)))
    return calls


def paths(app: FastAPI) -> set[str]:
    """The paths the app serves, as its OpenAPI lists them."""
    return set(app.openapi()["paths"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tracker", "--role", "routing"], "tracker has no role 'routing' (its roles: all, api, "),
        (["router", "--role", "api"], "router has no role 'api' (its roles: all, routing, fanout)"),
        (["analytics", "--role", "fanout"], "analytics has no role 'fanout'"),
        (["intake", "--role", "api"], "intake has no role 'api' (its roles: all)"),
    ],
)
def test_a_role_the_service_does_not_have_is_one_line_and_exit_2(
    served, capsys, argv: list[str], message: str
) -> None:
    assert cli.main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lapor serve: {message}")
    assert err.count("\n") == 1
    assert served == []


def test_lapor_role_from_the_environment_is_checked_the_same_way(
    served, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("LAPOR_ROLE", "projecter")
    assert cli.main(["serve", "tracker"]) == 2
    assert "tracker has no role 'projecter'" in capsys.readouterr().err
    assert served == []


def test_the_option_wins_over_the_environment(served, monkeypatch) -> None:
    monkeypatch.setenv("LAPOR_ROLE", "api")
    assert cli.main(["serve", "tracker", "--role", "projector"]) == 0
    [(app, _)] = served
    assert app.state.runtime.settings.role == "projector"


def test_each_role_runs_its_own_parts(served) -> None:
    assert cli.main(["serve", "tracker", "--role", "api"]) == 0
    assert cli.main(["serve", "tracker", "--role", "projector"]) == 0
    assert cli.main(["serve", "tracker"]) == 0
    (api, _), (projector, _), (everything, _) = served

    assert "/complaints/{tracking_id}" in paths(api)
    assert not api.state.part.projections and not api.state.part.workers
    assert api.state.part.scales_out

    # The projector serves health and metrics only.
    assert paths(projector) == {"/health/live", "/health/ready", "/health/metrics"}
    assert [p.name for p in projector.state.part.projections] == ["tracker.status"]
    assert len(projector.state.part.workers) == 1  # the deadline clocks
    assert not projector.state.part.scales_out

    # all: today's service, every part in one process.
    assert paths(api) <= paths(everything)
    assert [p.name for p in everything.state.part.projections] == ["tracker.status"]
    assert len(everything.state.part.workers) == 1
    assert everything.state.runtime.settings.role == ALL


def test_router_routing_and_fanout(served) -> None:
    assert cli.main(["serve", "router", "--role", "routing"]) == 0
    assert cli.main(["serve", "router", "--role", "fanout"]) == 0
    assert cli.main(["serve", "router"]) == 0
    (routing, _), (fanout, _), (everything, _) = served
    assert routing.state.part.subscribers is not None and len(routing.state.part.workers) == 1
    assert routing.state.part.scales_out
    assert fanout.state.part.subscribers is None and len(fanout.state.part.workers) == 1
    assert not fanout.state.part.scales_out
    assert everything.state.part.subscribers is not None
    assert len(everything.state.part.workers) == 2


def test_several_processes_only_for_a_role_that_follows_no_log_in_order(
    served, capsys, monkeypatch
) -> None:
    import os

    assert cli.main(["serve", "tracker", "--role", "projector", "--workers", "2"]) == 2
    assert "tracker (role projector) follows the log in order" in capsys.readouterr().out
    assert cli.main(["serve", "router", "--workers", "2"]) == 2
    assert served == []

    assert cli.main(["serve", "tracker", "--role", "api", "--workers", "3"]) == 0
    [(app, options)] = served
    # Each worker builds its app from the environment: the role goes with it.
    assert (app, options["factory"], options["workers"]) == (
        "lapor.tracker.app:create_app",
        True,
        3,
    )
    assert os.environ["LAPOR_ROLE"] == "api"


def test_parts_by_role_compose_in_order() -> None:
    called: list[str] = []
    a = Part(subscribers=lambda rt: called.append("a"), workers=[lambda rt: "wa"], scales_out=True)
    b = Part(subscribers=lambda rt: called.append("b"), workers=[lambda rt: "wb"])
    roles = {"a": a, "b": b}
    assert role_part("svc", roles, "a") is a
    everything = role_part("svc", roles, ALL)
    everything.subscribers(None)  # type: ignore[arg-type, misc]
    assert called == ["a", "b"]
    assert [w(None) for w in everything.workers] == ["wa", "wb"]  # type: ignore[arg-type]
    assert not everything.scales_out
    with pytest.raises(UnknownRole, match=r"^svc has no role 'c' \(its roles: all, a, b\)$"):
        role_part("svc", roles, "c")


def test_parts_are_given_either_by_role_or_without() -> None:
    settings = Settings(nats_url="nats://127.0.0.1:1", database_url="postgresql://x@h/d")
    with pytest.raises(ValueError, match="either by role or without"):
        create_service("svc", settings, workers=[lambda rt: None], roles={"a": Part()})  # type: ignore[list-item, return-value]
