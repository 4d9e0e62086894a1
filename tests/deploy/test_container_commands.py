"""The containers' commands, run as the production overlay runs them, on real NATS and
PostgreSQL (the suite's embedded servers).

``kubectl kustomize deploy/k8s/overlays/prod`` is rendered (the helper of
``test_manifests.py``), and every container and initContainer of every Deployment, Job and
CronJob that runs the lapor image is read: its command line (the image's ``ENTRYPOINT``
from ``deploy/Dockerfile`` and the container's ``args``; the ``lapor`` commands inside an
initContainer's ``sh -c`` loop) and its environment (the image's ``ENV``, the ConfigMaps
of ``envFrom`` and ``env``). Each variable the manifests name is given its local
counterpart (``LOCAL_ENV``): the embedded servers' URLs, a subject root and a database
that nothing has migrated, PostgreSQL's credentials apart from ``DATABASE_URL`` as
``lapor-db-app`` gives them, a fresh database for ``LAPOR_REBUILD_DATABASE_URL``, a
temporary folder for ``LAPOR_BACKUP_URL``. Nothing else of the test's environment reaches
the commands, so a pod that lacks a variable its command needs fails here too.

In the order a release runs them: the initContainers' check refuses before the migration;
the migrate Job; the initContainers' check passes and every ``lapor serve`` (on a free port
instead of the manifest's ``--port``) answers 200 on ``/health/ready``; a complaint goes
through intake, the router and the projections; the CronJobs (audit, backup, replay) run
beside the serving processes and exit 0; the services stop cleanly on SIGTERM.

A command the test does not know how to run (``ONE_SHOT``, ``LONG_RUNNING``) or a
variable it has no local value for fails the test: nothing in the manifests is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import nats
import pytest
import yaml

from lapor.devtools.chaos import quiet
from lapor.devtools.infra import Infrastructure, free_port
from lapor.devtools.testing import ROAD
from lapor.services.database import with_database
from lapor.services.settings import Settings
from lapor.services.topology import stream_configs

pytestmark = pytest.mark.connected

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
OVERLAY = "prod"
LAPOR = Path(sys.executable).with_name("lapor")
"""The ``lapor`` of this environment: what the image's ENTRYPOINT runs."""

KINDS = ("Deployment", "Job", "CronJob")

ONE_SHOT = (("migrate",), ("audit", "verify"), ("backup", "create"), ("replay",))
"""Commands that must exit 0 (by their leading words; options are the manifest's)."""
LONG_RUNNING = (("serve",),)
"""Commands that serve until stopped: ready on /health/ready, then SIGTERM."""
WAIT_CHECK = ("migrate", "--check")
"""What the initContainers wait on: it must refuse before the migrate Job has run."""

READY_WITHIN = 120.0
"""Generous: seven services start at once on a busy two-core machine."""
ONE_SHOT_WITHIN = 120.0


def _load_manifest_helpers() -> ModuleType:
    """``test_manifests.py``'s rendering helpers, loaded from its file (the tests run with
    ``--import-mode=importlib``: test modules are not importable by name)."""
    spec = importlib.util.spec_from_file_location(
        "lapor_deploy_manifests", HERE / "test_manifests.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


manifests = _load_manifest_helpers()


# --- what the manifests run --------------------------------------------------------------


def dockerfile_runtime() -> tuple[list[str], dict[str, str]]:
    """The final stage's ENTRYPOINT and ENV in ``deploy/Dockerfile``."""
    lines = DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
    stage = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    last_from = max(i for i, line in enumerate(stage) if line.upper().startswith("FROM "))
    entrypoint: list[str] | None = None
    env: dict[str, str] = {}
    for line in stage[last_from:]:
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif instruction.upper() == "ENV":
            for token in shlex.split(rest):
                name, _, value = token.partition("=")
                env[name] = value
    assert entrypoint, "deploy/Dockerfile's runtime stage has no ENTRYPOINT in exec form"
    return entrypoint, env


def lapor_image() -> str:
    """The image name the overlay gives ``lapor`` (its kustomization's ``images:``)."""
    kustomization = yaml.safe_load(
        (manifests.K8S / "overlays" / OVERLAY / "kustomization.yaml").read_text()
    )
    for image in kustomization.get("images", []):
        if image["name"] == "lapor":
            return image.get("newName", "lapor")
    return "lapor"


def image_name(image: str) -> str:
    without_digest = image.split("@", 1)[0]
    return re.sub(r":[^/:]+$", "", without_digest)


@dataclass
class Command:
    """One command line as a container runs it, with the variables it is given."""

    argv: tuple[str, ...]
    """ENTRYPOINT included: ``("lapor", "serve", ...)``."""
    env: dict[str, str | dict[str, Any]]
    """Name: the manifest's value, or its ``valueFrom``."""
    where: list[str] = field(default_factory=list)
    grace: float = 30.0
    """The shortest terminationGracePeriodSeconds of its pods (Kubernetes' default 30)."""

    @property
    def words(self) -> tuple[str, ...]:
        return self.argv[1:]

    def matches(self, prefixes: tuple[tuple[str, ...], ...]) -> bool:
        return any(self.words[: len(p)] == p for p in prefixes)

    @property
    def long_running(self) -> bool:
        return self.matches(LONG_RUNNING)

    def __str__(self) -> str:
        return shlex.join(self.argv)


def lapor_in_script(script: str) -> list[tuple[str, ...]]:
    """Each ``lapor ...`` invocation in a shell script, up to the next operator."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    found: list[tuple[str, ...]] = []
    for i, token in enumerate(tokens):
        if token == "lapor":
            words = []
            for word in tokens[i:]:
                if set(word) <= set(";&|()<>"):
                    break
                words.append(word)
            found.append(tuple(words))
    return found


def container_env(
    container: dict[str, Any],
    image_env: dict[str, str],
    config_maps: dict[str, dict[str, Any]],
    problems: list[str],
    where: str,
) -> dict[str, str | dict[str, Any]]:
    env: dict[str, str | dict[str, Any]] = dict(image_env)
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref is None or ref["name"] not in config_maps:
            problems.append(f"{where}: envFrom {source} is not a ConfigMap of the overlay")
            continue
        prefix = source.get("prefix", "")
        for name, value in config_maps[ref["name"]].get("data", {}).items():
            env[prefix + name] = value
    for variable in container.get("env", []):
        env[variable["name"]] = (
            variable["value"] if "value" in variable else variable.get("valueFrom", {})
        )
    return env


def collect(objects: list[dict[str, Any]]) -> tuple[list[Command], list[str]]:
    """Every distinct command the lapor image's containers run (same words and variables:
    one command, several places), and what the test cannot run."""
    entrypoint, image_env = dockerfile_runtime()
    ours = lapor_image()
    config_maps = manifests.by_kind(objects, "ConfigMap")
    commands: dict[str, Command] = {}
    problems: list[str] = []
    if entrypoint != ["lapor"]:
        problems.append(f"deploy/Dockerfile: ENTRYPOINT {entrypoint}, not lapor's")
    for label, template in manifests.pod_templates(objects):
        if label.split("/")[0] not in KINDS:
            continue
        init = {c["name"] for c in template["spec"].get("initContainers", [])}
        for container in manifests.containers(template):
            if image_name(container["image"]) != ours:
                continue
            kind = "initContainer" if container["name"] in init else "container"
            where = f"{label} {kind} {container['name']}"
            env = container_env(container, image_env, config_maps, problems, where)
            problems += [f"{where}: {problem}" for problem in unknown_variables(env)]
            shell = container.get("command")
            args = container.get("args", [])
            if shell is None:
                lines = [tuple(entrypoint + args)]
            elif shell[:1] == ["lapor"]:
                lines = [tuple(shell + args)]
            elif shell[:2] == ["sh", "-c"] and len(shell) == 3 and not args:
                lines = lapor_in_script(shell[2])
                if not lines:
                    problems.append(f"{where}: its script runs no lapor command: {shell[2]!r}")
            else:
                problems.append(f"{where}: command {shell} {args}: not known how to run")
                continue
            for argv in lines:
                command = Command(argv, env)
                if not command.matches(ONE_SHOT + LONG_RUNNING):
                    problems.append(f"{where}: `{command}` is not known how to run")
                    continue
                if kind == "initContainer" and command.long_running:
                    problems.append(f"{where}: `{command}` never exits: the pod never starts")
                    continue
                key = json.dumps([argv, env], sort_keys=True, default=str)
                known = commands.setdefault(key, command)
                known.where.append(where)
                grace = template["spec"].get("terminationGracePeriodSeconds", 30)
                known.grace = min(known.grace, grace)
    return list(commands.values()), problems


# --- their local environment -------------------------------------------------------------


@dataclass
class Local:
    settings: Settings
    rebuild_url: str
    tmp: Path
    services: dict[str, str] = field(default_factory=dict)
    """In-cluster Service name (a Deployment's) -> the local URL of the process serving it."""


AS_IS = {
    "LAPOR_DEPLOYMENT",
    "LAPOR_LOG_FORMAT",
    "LAPOR_LOG_LEVEL",
    "LAPOR_INFRA",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
}
"""Variables whose production value is used here too."""


def _url_parts(url: str) -> tuple[str, str, str]:
    """``url`` without its user and password, and those two (``lapor-db-app``'s keys)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    bare = f"{parts.scheme}://{host}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    return bare, parts.username or "", parts.password or ""


def _secret(local: Local) -> str:
    assert local.settings.auth_secret is not None
    return local.settings.auth_secret.get_secret_value()


LOCAL_ENV: dict[str, Callable[[Local], str | None]] = {
    "NATS_URL": lambda local: local.settings.nats_url,
    # The manifests' URL carries no credentials: PGUSER and PGPASSWORD do (lapor-db-app).
    "DATABASE_URL": lambda local: _url_parts(local.settings.database_url or "")[0],
    "PGUSER": lambda local: _url_parts(local.settings.database_url or "")[1],
    "PGPASSWORD": lambda local: _url_parts(local.settings.database_url or "")[2],
    "LAPOR_REBUILD_DATABASE_URL": lambda local: local.rebuild_url,
    "LAPOR_AUTH_SECRET": _secret,
    "LAPOR_SUBJECT_ROOT": lambda local: local.settings.subject_root,
    # One local nats-server: the streams get as many replicas as it can hold.
    "LAPOR_STREAM_REPLICAS": lambda local: str(local.settings.stream_replicas),
    "LAPOR_BACKUP_URL": lambda local: (local.tmp / "backups").as_uri(),
    "LAPOR_DATA_DIR": lambda local: str(local.tmp / "data"),
    # The CA of the NATS servers' TLS; the local server speaks plain NATS on loopback.
    "SSL_CERT_FILE": lambda local: None,
    "PATH": lambda local: f"{LAPOR.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    # Open311's API keys: a file of no key (only the reads are open).
    "LAPOR_OPEN311_KEYS_FILE": lambda local: str(local.tmp / "open311_keys.json"),
}
UPSTREAM_URLS = {"LAPOR_INTAKE_URL", "LAPOR_TRACKER_URL", "LAPOR_ANALYTICS_URL"}
"""The portal's and open311's clients: the manifest's http://<Service>:8080 becomes the
local URL of the process serving that Service (a Deployment of the same name)."""


def unknown_variables(env: dict[str, str | dict[str, Any]]) -> list[str]:
    """The variables of a container the test has no local value for."""
    problems = []
    for name, value in env.items():
        if name in AS_IS and not isinstance(value, str):
            problems.append(f"{name} comes from {value}: no local value for it")
        elif name in UPSTREAM_URLS and not isinstance(value, str):
            problems.append(f"{name} comes from {value}: no Service named in it")
        elif name not in AS_IS and name not in LOCAL_ENV and name not in UPSTREAM_URLS:
            problems.append(f"{name} ({value}): no local value for it (LOCAL_ENV)")
    return problems


def local_env(command: Command, local: Local) -> dict[str, str]:
    env = {"HOME": str(local.tmp / "home")}
    for name, value in command.env.items():
        if name in UPSTREAM_URLS:
            assert isinstance(value, str)
            env[name] = local.services[urlsplit(value).hostname or ""]
            continue
        given = value if name in AS_IS else LOCAL_ENV[name](local)
        if given is not None:
            assert isinstance(given, str), (name, given)
            env[name] = given
    return env


# --- running them ------------------------------------------------------------------------


@dataclass
class Ran:
    command: Command
    code: int
    seconds: float
    output: str

    def __str__(self) -> str:
        return (
            f"`{self.command}` exited {self.code} after {self.seconds:.1f}s "
            f"({'; '.join(self.command.where)}):\n{self.output[-3000:]}"
        )


async def run_once(command: Command, local: Local) -> Ran:
    env = local_env(command, local)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        str(LAPOR),
        *command.words,
        env=env,
        cwd=local.tmp,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), ONE_SHOT_WITHIN)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = await proc.communicate()
    code = proc.returncode if proc.returncode is not None else -1
    return Ran(command, code, time.monotonic() - started, out.decode(errors="replace"))


def on_port(argv: tuple[str, ...], port: int) -> list[str]:
    """``argv`` with ``port`` for the manifest's ``--port`` (the containers' 8080)."""
    words = list(argv)
    for i, word in enumerate(words):
        if word == "--port":
            words[i + 1] = str(port)
            return words
        if word.startswith("--port="):
            words[i] = f"--port={port}"
            return words
    return [*words, "--port", str(port)]


@dataclass
class Serving:
    command: Command
    port: int
    proc: asyncio.subprocess.Process
    log: Path
    ready_after: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def new_port(ports: set[int]) -> int:
    port = free_port(host="0.0.0.0")
    while port in ports:
        port = free_port(host="0.0.0.0")
    ports.add(port)
    return port


def deployment_of(command: Command) -> str:
    """``intake`` of ``Deployment/intake container intake``: its Service's name too."""
    return command.where[0].split()[0].split("/", 1)[1]


async def start(command: Command, local: Local, port: int) -> Serving:
    env = local_env(command, local)
    log = local.tmp / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(LAPOR),
            *on_port(command.words, port),
            env=env,
            cwd=local.tmp,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    return Serving(command, port, proc, log)


async def ready(serving: Serving, client: httpx.AsyncClient, since: float) -> None:
    deadline = since + READY_WITHIN
    while time.monotonic() < deadline:
        if serving.proc.returncode is not None:
            raise AssertionError(
                f"`{serving.command}` exited {serving.proc.returncode} before it was ready "
                f"({'; '.join(serving.command.where)}):\n{serving.tail()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(f"{serving.url}/health/ready")).status_code == 200:
                serving.ready_after = time.monotonic() - since
                return
        await asyncio.sleep(0.25)
    raise AssertionError(
        f"`{serving.command}` not ready within {READY_WITHIN}s "
        f"({'; '.join(serving.command.where)}):\n{serving.tail()}"
    )


async def stop(serving: Serving) -> int:
    proc = serving.proc
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), serving.command.grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            return -signal.SIGKILL
    assert proc.returncode is not None
    return proc.returncode


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
async def local(infra: Infrastructure, settings: Settings, tmp_path: Path) -> AsyncIterator[Local]:
    """``settings``' servers and secret with a subject root and a database of their own
    that nothing has migrated (the migrate Job does), and an empty rebuild database."""
    name = f"{settings.subject_root}_k8s"
    own = Settings(
        nats_url=settings.nats_url,
        database_url=with_database(infra.database_url, name),
        subject_root=name,
        auth_secret=settings.auth_secret,
        stream_replicas=1,
        log_format="console",
    )
    databases = (name, f"{name}_rebuild")
    admin = await asyncpg.connect(infra.database_url)
    try:
        for database in databases:
            await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    for folder in ("backups", "data", "home"):
        (tmp_path / folder).mkdir()
    try:
        yield Local(own, with_database(infra.database_url, databases[1]), tmp_path)
    finally:
        nc = await nats.connect(infra.nats_url)
        js = nc.jetstream()
        for config in stream_configs(own):
            with contextlib.suppress(Exception):
                await js.delete_stream(config.name)
        with contextlib.suppress(Exception):
            await js.delete_key_value(own.subjects.routing_rules_bucket)
        with contextlib.suppress(Exception):
            await js.delete_object_store(own.subjects.routing_models_bucket)
        await nc.close()
        admin = await asyncpg.connect(infra.database_url)
        try:
            for database in (*databases, f"{name}_replay"):
                await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()


# --- tests -------------------------------------------------------------------------------


def test_every_command_of_the_lapor_image_is_known() -> None:
    """Without servers: what the overlay runs is all known to the test below, and it is
    there (the migration, its check, the serving roles, the CronJobs)."""
    commands, problems = collect(manifests.rendered(OVERLAY))
    assert not problems, "\n".join(problems)
    words = {c.words[:2] for c in commands}
    assert ("migrate",) in {c.words for c in commands}, "no migrate Job"
    assert WAIT_CHECK in words, "no initContainer waits for the migration"
    assert sum(c.long_running for c in commands) >= 4, "fewer serving roles than services"
    assert {("audit", "verify"), ("backup", "create"), ("replay", "--verify")} <= words


def test_the_detection_refuses_what_it_cannot_run() -> None:
    """A command or a variable the test does not know fails, rather than being skipped."""
    objects = manifests.rendered(OVERLAY)
    job = next(o for o in objects if o["kind"] == "Job")
    strange = json.loads(json.dumps(job))
    strange["metadata"]["name"] = "lapor-strange"
    pod = strange["spec"]["template"]["spec"]
    pod["containers"][0]["args"] = ["projections", "status"]
    pod["containers"][0]["env"].append({"name": "LAPOR_SOMETHING_NEW", "value": "1"})
    pod["initContainers"] = [
        {**pod["containers"][0], "name": "wait", "command": ["sh", "-c", "sleep 1"], "args": []}
    ]
    _, problems = collect([*objects, strange])
    text = "\n".join(problems)
    assert "Job/lapor-strange container migrate: `lapor projections status` is not known" in text
    assert "Job/lapor-strange initContainer wait: its script runs no lapor command" in text
    assert "Job/lapor-strange container migrate: LAPOR_SOMETHING_NEW (1): no local" in text
    assert lapor_in_script("for i in $(seq 3); do lapor migrate --check && exit 0; done") == [
        ("lapor", "migrate", "--check")
    ]


async def test_the_prod_containers_commands_run_on_real_nats_and_postgresql(
    local: Local,
) -> None:
    commands, problems = collect(manifests.rendered(OVERLAY))
    assert not problems, "\n".join(problems)
    began = time.monotonic()
    report: list[str] = []

    def say(ran: Ran) -> None:
        report.append(f"exit {ran.code:>3} {ran.seconds:5.1f}s  `{ran.command}`")
        report.append(f"        {'; '.join(ran.command.where)}")

    checks = [c for c in commands if c.words == WAIT_CHECK]
    migrations = [c for c in commands if c.words == ("migrate",)]
    cron = [c for c in commands if not c.long_running and c not in checks + migrations]
    serves = [c for c in commands if c.long_running]

    # 1. Before the migration the initContainers' check refuses (so the pods wait), naming
    #    the streams, and the migrations where the pod has a database (reached with
    #    PGUSER and PGPASSWORD beside a URL without credentials, as in the cluster).
    events = f"stream {local.settings.subjects.events_stream}"
    for ran in await asyncio.gather(*(run_once(c, local) for c in checks)):
        say(ran)
        assert ran.code == 1 and "lapor migrate --check: missing" in ran.output, str(ran)
        assert events in ran.output, str(ran)
        with_database = "DATABASE_URL" in ran.command.env
        assert ("migration " in ran.output) == with_database, str(ran)

    # 2. The migrate Job.
    for command in migrations:
        ran = await run_once(command, local)
        say(ran)
        assert ran.code == 0, str(ran)

    # 3. The initContainers' check passes, and every serving role gets ready.
    ports: set[int] = set()
    # Each serving role's port, known before any starts: the portal and open311 are given
    # the URLs of intake, tracker-api and analytics-api as their Services.
    assigned = [new_port(ports) for _ in serves]
    for command, port in zip(serves, assigned, strict=True):
        local.services[deployment_of(command)] = f"http://127.0.0.1:{port}"
    running = [await start(c, local, p) for c, p in zip(serves, assigned, strict=True)]
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            since = time.monotonic()
            checked, *_ = await asyncio.gather(
                asyncio.gather(*(run_once(c, local) for c in checks)),
                *(ready(s, client, since) for s in running),
            )
            for ran in checked:
                say(ran)
                assert ran.code == 0, str(ran)
            for serving in running:
                line = shlex.join(on_port(serving.command.argv, serving.port))
                report.append(f"ready {serving.ready_after:5.1f}s  `{line}`")
                report.append(f"        {'; '.join(serving.command.where)}")

            # 4. A complaint through intake, the router and the projections, so that the
            #    CronJobs have a log, read models and streams to work on.
            intake = next(s for s in running if s.command.words[:2] == ("serve", "intake"))
            accepted = await client.post(f"{intake.url}/complaints", json=ROAD)
            assert accepted.status_code == 202, accepted.text
            await quiet(local.settings, within=60)
            tracking_id = accepted.json()["tracking_id"]

            # The portal and open311 reach the APIs they were pointed at: their pages and
            # answers are made from intake's, tracker-api's and analytics-api's.
            by_service = {s.command.words[1]: s for s in running}
            portal = by_service["portal"]
            for page in ("/lapor", f"/lacak/{tracking_id}", "/statistik"):
                shown = await client.get(f"{portal.url}{page}")
                assert shown.status_code == 200, (page, shown.text[-2000:])
            open311 = by_service["open311"]
            request = await client.get(f"{open311.url}/open311/v2/requests/{tracking_id}.json")
            assert request.status_code == 200, request.text

            # 5. The CronJobs, beside the running services.
            for ran in await asyncio.gather(*(run_once(c, local) for c in cron)):
                say(ran)
                assert ran.code == 0, str(ran)
        assert any((local.tmp / "backups").iterdir()), "the backup wrote nothing"
    finally:
        codes = await asyncio.gather(*(stop(s) for s in running))

    # 6. Each serving role stops on SIGTERM (what Kubernetes sends) within the grace
    #    period, through its shutdown (uvicorn exits 0 or re-raises the signal it caught).
    for serving, code in zip(running, codes, strict=True):
        log = serving.log.read_text(errors="replace")
        stopped = code in (0, -signal.SIGTERM) and '"service stopped"' in log
        assert stopped, f"`{serving.command}` stopped with {code}:\n{serving.tail()}"
    report.append(f"all in {time.monotonic() - began:.1f}s")
    print("\n" + "\n".join(report))
