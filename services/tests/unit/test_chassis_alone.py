"""The chassis stands alone: it imports nothing of lapor-ops or lapor-devtools, nor what
only they depend on, so that the runtime image could do without them (it does without
devtools), and a tool never becomes a dependency of a service by accident."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lapor.services import cli
from lapor.services.serve import COMMAND as SERVE

ELSEWHERE = (
    "lapor.ops",
    "lapor.devtools",
    # What the tooling depends on and the chassis does not.
    "pgserver",
    "testcontainers",
    "docker",
    "psutil",
    "httpx",
    "tqdm",
)

IMPORT_EVERY_MODULE = textwrap.dedent(
    """
    import importlib
    import pkgutil
    import sys

    ELSEWHERE = {elsewhere!r}


    class NotInstalledHere:
        def find_spec(self, name, path=None, target=None):
            if any(name == top or name.startswith(top + ".") for top in ELSEWHERE):
                raise ImportError(f"{{name}} is not installed here")
            return None


    sys.meta_path.insert(0, NotInstalledHere())
    import lapor.services

    for module in pkgutil.walk_packages(lapor.services.__path__, "lapor.services."):
        importlib.import_module(module.name)
        print(module.name)
    """
)


def test_every_chassis_module_imports_without_ops_devtools_and_their_dependencies() -> None:
    script = IMPORT_EVERY_MODULE.format(elsewhere=ELSEWHERE)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    imported = done.stdout.split()
    assert {"lapor.services.cli", "lapor.services.serve", "lapor.services.runtime"} <= set(imported)


def test_a_command_of_a_member_not_installed_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As in the runtime image: the chassis and lapor-ops, no lapor-devtools.
    monkeypatch.setattr(cli, "installed_commands", lambda: {"serve": SERVE})
    assert cli.main(["run", "--base-port", "9000"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["lapor run: not installed here (installed: serve)"]
