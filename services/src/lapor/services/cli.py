"""The ``lapor`` command.

lapor run [SERVICE ...]   local infrastructure + migrate + the services, supervised, until Ctrl-C
lapor serve SERVICE       one service (what a container runs); needs NATS_URL, DATABASE_URL
lapor migrate             declare streams and migrate PostgreSQL
lapor projections status  where each read model is; show / skip the event one stopped at
lapor demo                submit a realistic batch to a running system, print completion
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path

import httpx
from pydantic import SecretStr

from lapor.services.auth import issue_token
from lapor.services.bootstrap import bootstrap
from lapor.services.discovery import installed_services, local_ports
from lapor.services.infra import (
    RUN_FILE,
    Infrastructure,
    infrastructure,
    supervised_infrastructure,
)
from lapor.services.logging import configure_logging
from lapor.services.settings import Settings
from lapor.services.supervisor import Supervised

EXAMPLE = (
    ' -H \'content-type: application/json\' -d \'{"title": "Jalan berlubang",'
    ' "body": "Jalan di depan Pasar Flamboyan berlubang besar", "category": "jalan"}\''
)


def default_url(name: str) -> str | None:
    """Where a service installed here listens when ``lapor run`` runs it on its own port."""
    service = installed_services().get(name)
    return None if service is None else f"http://127.0.0.1:{service.port}"


def main(argv: list[str] | None = None) -> int:
    # pgserver's lock file falls back to /tmp on machines without a login session.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    parser = argparse.ArgumentParser(prog="lapor", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the system locally")
    run.add_argument("services", nargs="*", help="default: all installed services")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument(
        "--base-port",
        type=int,
        help="intake listens on it, tracker, analytics and router on the next three "
        "(default: each service's own port, 8080 and up)",
    )
    serve = sub.add_parser("serve", help="run one service")
    serve.add_argument("service")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the port (intake only: the others follow the log in order)",
    )
    sub.add_parser("migrate", help="declare streams and migrate PostgreSQL")
    token = sub.add_parser("token", help="issue a token for the admin or an agency officer")
    token.add_argument("role", choices=["admin", "agency"])
    token.add_argument("opd", nargs="?", help="the officer's unit (for agency)")
    token.add_argument("--name", help="the officer's name, recorded with their actions")
    token.add_argument(
        "--ttl", type=int, default=86400, help="seconds (default: a day; at most 30 days)"
    )
    rerun = sub.add_parser("replay", help="rebuild read models from the log; verify or swap")
    rerun.add_argument("projections", nargs="*", help="default: all installed")
    how = rerun.add_mutually_exclusive_group(required=True)
    how.add_argument("--verify", action="store_true", help="list every difference")
    how.add_argument("--swap", action="store_true", help="replace the live tables")
    rerun.add_argument("--from-seq", type=int, default=1)
    rerun.add_argument("--from-time", type=datetime.fromisoformat)
    models = sub.add_parser("projections", help="read models: where each is; skip a stopped one")
    models_sub = models.add_subparsers(dest="projections_command", required=True)
    models_sub.add_parser("status", help="each read model's position, and where one stopped")
    show = models_sub.add_parser("show", help="the event a read model stopped in front of")
    show.add_argument("projection")
    skip = models_sub.add_parser("skip", help="record the decision to leave that event out")
    skip.add_argument("projection")
    skip.add_argument("seq", type=int, help="the sequence it stopped at (see status)")
    skip.add_argument("--reason", required=True, help="why, for the record")
    skip.add_argument("--by", required=True, help="who decides, for the record")
    audit = sub.add_parser("audit", help="verify the hash chains; one complaint's history")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    check = audit_sub.add_parser("verify", help="report altered, missing, reordered events")
    check.add_argument("--anchor", action="append", default=[], help="N:digest of a past run")
    history = audit_sub.add_parser("history", help="who did what and when, verified")
    history.add_argument("tracking_id")
    users = sub.add_parser(
        "nats-users", help="write the NATS users and per-agency permissions, create consumers"
    )
    users.add_argument("output", type=Path, help="file for the authorization block (0600)")
    demo = sub.add_parser("demo", help="submit a demo batch to a running system")
    for name in ("intake", "tracker", "analytics"):
        url = default_url(name)
        demo.add_argument(f"--{name}", default=url, required=url is None)
    args = parser.parse_args(argv)

    settings = with_local_secret(Settings())
    configure_logging(settings.log_level, settings.log_format)
    match args.command:
        case "run":
            return run_local(settings, args.services, args.host, args.base_port)
        case "serve":
            return serve_one(settings, args.service, args.host, args.port, args.workers)
        case "migrate":
            with infrastructure(settings) as infra:
                applied = asyncio.run(bootstrap(_with_urls(settings, infra)))
                print(f"streams declared; {len(applied)} SQL migration(s) applied")
            return 0
        case "token":
            assert settings.auth_secret is not None
            secret = settings.auth_secret.get_secret_value()
            try:
                if args.ttl <= 0:
                    raise ValueError("--ttl must be a positive number of seconds")
                print(issue_token(secret, args.role, args.opd, args.name, args.ttl))
            except ValueError as e:  # one line, not a traceback: a typo is not a crash
                print(f"lapor token: {e}", file=sys.stderr)
                return 2
            return 0
        case "replay":
            with infrastructure(settings) as infra:
                return asyncio.run(run_replay(_with_urls(settings, infra), args))
        case "audit":
            with infrastructure(settings) as infra:
                return asyncio.run(run_audit(_with_urls(settings, infra), args))
        case "projections":
            with infrastructure(settings) as infra:
                return asyncio.run(run_projections(_with_urls(settings, infra), args))
        case "nats-users":
            with infrastructure(settings) as infra:
                asyncio.run(nats_users(_with_urls(settings, infra), args.output))
            return 0
        case "demo":
            from lapor.services.demo import main as demo_main

            secret = settings.auth_secret.get_secret_value()
            return demo_main(args.intake, args.tracker, args.analytics, secret)
    return 2


def with_local_secret(settings: Settings) -> Settings:
    """Without ``LAPOR_AUTH_SECRET``, a local system keeps a random one in its data folder,
    so that ``lapor run``, ``lapor token`` and ``lapor demo`` agree on it."""
    if settings.auth_secret is not None:
        return settings
    path = settings.data_dir / "auth_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return settings.model_copy(update={"auth_secret": SecretStr(path.read_text().strip())})


async def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    from lapor.services.replay import replay

    report = await replay(
        settings,
        args.projections,
        mode="verify" if args.verify else "swap",
        from_seq=args.from_seq,
        from_time=args.from_time,
    )
    for name, verdict in report.items():
        if verdict.stopped is not None:
            outcome = "not swapped: the rebuild stopped" if args.swap else "rebuild stopped"
        else:
            outcome = "swapped" if args.swap else f"{len(verdict.differences)} difference(s)"
        print(f"{name}: {outcome}", *verdict.describe(), sep="\n")
    return 0 if all(v.clean for v in report.values()) else 1


async def run_projections(settings: Settings, args: argparse.Namespace) -> int:
    import asyncpg
    import nats

    from lapor.services import projection_admin as admin

    conn = await asyncpg.connect(settings.database_url)
    nc = await nats.connect(settings.nats_url)
    try:
        js, stream = nc.jetstream(), settings.subjects.events_stream
        match args.projections_command:
            case "status":
                end = (await js.stream_info(stream)).state.last_seq
                found = await admin.states(conn)
                print("\n".join(s.describe(end) for s in found) or "no read model has run yet")
                return 1 if any(s.stopped_seq is not None for s in found) else 0
            case "show":
                state = await admin.state_of(conn, args.projection)
                print(await admin.stopped_event(js, stream, state))
                return 0
            case _:
                try:
                    decided = await admin.record_skip(
                        conn, args.projection, args.seq, args.reason, args.by
                    )
                except ValueError as e:
                    print(f"lapor: {e}")
                    return 2
                print(f"{args.projection}: {decided.describe()}")
                print(
                    "the read model goes on at its next attempt (at most "
                    f"{settings.projection_retry_max_seconds:g} s)"
                )
                return 0
    finally:
        await nc.close()
        await conn.close()


async def run_audit(settings: Settings, args: argparse.Namespace) -> int:
    import nats

    from lapor.services import audit

    nc = await nats.connect(settings.nats_url)
    try:
        js, subjects = nc.jetstream(), settings.subjects
        if args.audit_command == "history":
            history = await audit.complaint_history(js, subjects, args.tracking_id)
            print("\n".join(audit.describe_history(history)))
            return 0 if all(h["chain"] == "ok" for h in history) else 1
        anchors = [audit.Anchor.parse(a) for a in args.anchor]
        report = await audit.verify(js, subjects.events_stream, subjects, anchors=anchors)
        print("\n".join(report.describe()))
        return 0 if report.ok else 1
    finally:
        await nc.close()


async def nats_users(settings: Settings, output: Path) -> None:
    """Generate the users of every unit in the OPD registry (include the file from the
    server configuration), print the passwords to hand out, and pre-create each agency's
    consumer, so that an agency needs no permission to create one."""
    import nats

    from lapor.services import natsauth
    from lapor.shared.registry import load_registry

    registry, subjects = load_registry(), settings.subjects
    passwords = natsauth.agency_passwords(registry)
    service_password = secrets.token_urlsafe(24)
    natsauth.write_private(
        output,
        natsauth.authorization_config(
            registry, subjects, passwords, service_password=service_password
        ),
    )
    nc = await nats.connect(settings.nats_url)
    try:
        created = await natsauth.create_agency_consumers(nc.jetstream(), registry, subjects)
    finally:
        await nc.close()
    print(f"wrote {output}; {len(created)} agency consumers ready")
    print(f"service user {natsauth.SERVICE_USER}: {service_password}")
    for opd, password in sorted(passwords.items()):
        print(f"{opd}: {password}  (connect with inbox_prefix {natsauth.inbox_prefix(opd)})")


def _with_urls(settings: Settings, infra) -> Settings:
    return settings.model_copy(
        update={"nats_url": infra.nats_url, "database_url": infra.database_url}
    )


def serve_one(settings: Settings, name: str, host: str, port: int, workers: int = 1) -> int:
    import uvicorn

    services = installed_services()
    if name not in services:
        print(f"unknown service {name!r}; installed: {', '.join(sorted(services))}")
        return 2
    service = services[name]
    options = {"host": host, "port": port, "log_level": "warning", "access_log": False}
    if workers > 1:
        if not service.stateless:
            print(f"{name} follows the log in order: run one process (--workers 1)")
            return 2
        # Each worker builds its app from the environment, as a container would.
        if settings.auth_secret is not None:
            os.environ["LAPOR_AUTH_SECRET"] = settings.auth_secret.get_secret_value()
        uvicorn.run(service.app, factory=True, workers=workers, **options)
        return 0
    uvicorn.run(service.create_app(settings), **options)
    return 0


def run_local(settings: Settings, names: list[str], host: str, base_port: int | None = None) -> int:
    """Start (or use) NATS and PostgreSQL, migrate, and run each service in its own process,
    as they would run in production, all under a supervisor: whichever dies is started
    again (the embedded servers on the same port and data). Ctrl-C or TERM stops
    everything, the services first."""
    every = local_ports(installed_services(), base_port)
    ports = {name: port for name, port in every.items() if not names or name in names}
    # Ctrl-C or a TERM from a process manager: both stop everything in order. (A shell that
    # starts us in the background may have set SIGINT to "ignore"; take it back.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with supervised_infrastructure(settings) as (infra, supervisor):
            try:
                settings = _with_urls(settings, infra)
                asyncio.run(bootstrap(settings))
                env = _service_env(settings)
                for name, port in ports.items():
                    supervisor.start(service_child(name, host, port, env))
                _announce(settings.data_dir, infra, host, ports)
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                # A second Ctrl-C must not cut the orderly stop short.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                print("\nstopping ...", flush=True)
            finally:
                (settings.data_dir / RUN_FILE).unlink(missing_ok=True)
    except KeyboardInterrupt:  # during the start of NATS or PostgreSQL
        print("\nstopped", flush=True)
    return 0


def _service_env(settings: Settings) -> dict[str, str]:
    assert settings.nats_url and settings.database_url and settings.auth_secret
    return {
        **os.environ,
        "NATS_URL": settings.nats_url,
        "DATABASE_URL": settings.database_url,
        "LAPOR_AUTH_SECRET": settings.auth_secret.get_secret_value(),
    }


def service_child(name: str, host: str, port: int, env: dict[str, str]) -> Supervised:
    """``lapor serve NAME`` as a supervised child, ready when its /health/ready says so."""
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    ready_url = f"http://{probe_host}:{port}/health/ready"
    serve = ["serve", name, "--host", host, "--port", str(port)]
    return Supervised(
        name,
        [sys.executable, "-m", "lapor.services.cli", *serve],
        ready=lambda: httpx.get(ready_url, timeout=1).status_code == 200,
        env=env,
    )


def _announce(data_dir: Path, infra: Infrastructure, host: str, ports: dict[str, int]) -> None:
    urls = {name: f"http://{host}:{port}" for name, port in ports.items()}
    described = {"nats_url": infra.nats_url, "database_url": infra.database_url, "services": urls}
    (data_dir / RUN_FILE).write_text(json.dumps(described, indent=2))
    print(f"\nlapor is running ({infra.kind} infrastructure)")
    print(f"  NATS       {infra.nats_url}\n  PostgreSQL {infra.database_url}")
    print("  (lapor replay, audit and projections find this system by its data folder)")
    for name, url in urls.items():
        print(f"  {name:<10} {url}  (docs: /docs)")
    if "intake" in urls:
        print(f"Try:     curl -X POST {urls['intake']}/complaints" + EXAMPLE)
    print("A process that dies is started again. Ctrl-C stops everything.\n", flush=True)


def run() -> None:
    """Console entry point: errors a user can act on are one line, not a traceback."""
    try:
        sys.exit(main())
    except (RuntimeError, TimeoutError, ValueError) as e:
        sys.exit(f"lapor: {e}")


if __name__ == "__main__":
    run()
