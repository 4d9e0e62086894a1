"""The composition root every service uses: one FastAPI app holding one NATS broker
(FastStream), one PostgreSQL pool, health endpoints, error handling and logging.

A service supplies its HTTP routers and a function that registers its subscribers;
``create_service`` wires the rest the same way for all of them. Tests call it (through
each service's ``create_app(settings)``) with their own settings.

A service may split its parts into **roles** (:class:`Part` per role name), so that one
process serves reads while another follows the log: the tracker's ``api`` and
``projector``, say. ``Settings.role`` (``LAPOR_ROLE``, ``lapor serve --role``) picks one;
``all``, the default, runs every part in one process, as a service without roles always
does. Health, readiness and metrics are served in every role.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import asyncpg
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from pydantic import BaseModel, Field
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lapor.services.attachments import AttachmentStore
from lapor.services.connections import nats_reconnect_options
from lapor.services.consumers import DeadLetters
from lapor.services.database import create_pool
from lapor.services.docs import install_docs
from lapor.services.errors import (
    ERROR_RESPONSES,
    BodyLimit,
    document_errors,
    install_error_handlers,
)
from lapor.services.eventstore import EventStore
from lapor.services.logging import configure_logging
from lapor.services.observability import (
    CONTENT_TYPE_LATEST,
    Instrumented,
    consumers_of,
    framework_telemetry_off,
    scrape,
)
from lapor.services.projections import Projection, ProjectionHandler, projection_follower
from lapor.services.settings import Settings
from lapor.services.tracing import configure_tracing, shutdown_tracing

log = structlog.get_logger(__name__)

CORRELATION_HEADER = "X-Correlation-Id"

ALL = "all"
"""The role that runs every part of a service, in one process (the default)."""


class Worker(Protocol):
    """A background task of a service, started after the broker and stopped before it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Part:
    """What a service runs in one role: HTTP routers, broker subscribers, read models
    (projections) and background workers."""

    routers: Sequence[APIRouter] = ()
    subscribers: Callable[[Runtime], None] | None = None
    projections: Sequence[Projection] = ()
    workers: Sequence[Callable[[Runtime], Worker]] = ()
    scales_out: bool = False
    """Follows no log in order (or shares a durable consumer whose appends are checked):
    several processes or replicas may run it at once."""

    @classmethod
    def union(cls, parts: Sequence[Part]) -> Part:
        """Every part of ``parts`` in one process, in their order."""
        registrations = [p.subscribers for p in parts if p.subscribers is not None]

        def subscribers(rt: Runtime) -> None:
            for register in registrations:
                register(rt)

        return cls(
            routers=[r for p in parts for r in p.routers],
            subscribers=subscribers if registrations else None,
            projections=[x for p in parts for x in p.projections],
            workers=[w for p in parts for w in p.workers],
            scales_out=all(p.scales_out for p in parts),
        )


class UnknownRole(ValueError):
    """A role the service does not have (``lapor serve`` says so in one line)."""


def role_part(name: str, roles: Mapping[str, Part], role: str) -> Part:
    """What service ``name`` runs in ``role``: its part of that name, or all of them."""
    if role == ALL:
        return Part.union(list(roles.values()))
    if role not in roles:
        known = ", ".join([ALL, *roles])
        raise UnknownRole(f"{name} has no role {role!r} (its roles: {known})")
    return roles[role]


@dataclass
class Runtime:
    """What handlers need, built once per process."""

    name: str
    settings: Settings
    broker: NatsBroker
    pool: asyncpg.Pool | None = None
    projections: list[ProjectionHandler] = field(default_factory=list)
    consumers: list[tuple[str, str]] = field(default_factory=list)
    """(stream, durable) of the JetStream consumers this process reads (metrics)."""

    # Built on first use (the broker is connected by then), once per process.
    @cached_property
    def js(self) -> JetStreamContext:
        # Our own context, so that a publish gives up (and intake answers 503) in
        # publish_timeout_seconds rather than FastStream's default.
        return self.broker.connection.jetstream(timeout=self.settings.publish_timeout_seconds)

    @cached_property
    def store(self) -> EventStore:
        return EventStore(self.js, self.settings.subjects)

    @cached_property
    def attachments(self) -> AttachmentStore:
        """The citizens' attachments (intake writes, the tracker reads)."""
        return AttachmentStore(self.js, self.settings.subjects.attachments_bucket)

    @cached_property
    def dead_letters(self) -> DeadLetters:
        return DeadLetters(self.js, self.settings)

    @property
    def db(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError(f"{self.name} was created without a database")
        return self.pool


def correlation_uuid(request: Request) -> uuid.UUID:
    """The request's correlation id as a UUID (a caller's non-UUID id is hashed to one)."""
    raw = request.state.correlation_id
    try:
        return uuid.UUID(raw)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, raw)


async def runtime_of(request: Request) -> Runtime:
    """FastAPI dependency: the service's runtime (``async``: FastAPI would run a plain
    function in a thread pool)."""
    return request.app.state.runtime


def create_service(
    name: str,
    settings: Settings,
    *,
    routers: Sequence[APIRouter] = (),
    subscribers: Callable[[Runtime], None] | None = None,
    projections: Sequence[Projection] = (),
    workers: Sequence[Callable[[Runtime], Worker]] = (),
    roles: Mapping[str, Part] | None = None,
    database: bool = True,
    description: str = "",
    multipart: bool = False,
) -> FastAPI:
    """The service's app. Either its parts directly (``routers``, ``subscribers``,
    ``projections``, ``workers``: one role, ``all``) or ``roles``, its parts by role name;
    ``settings.role`` picks what this process runs (an unknown role: :class:`UnknownRole`).
    ``multipart``: the service takes files (``multipart/form-data``), whose bodies may be
    as large as ``settings.max_multipart_bytes``; every other body keeps
    ``settings.max_request_bytes``."""
    if roles is None:
        roles = {}
        part = Part(routers, subscribers, projections, workers)
        if settings.role != ALL:
            raise UnknownRole(f"{name} has no role {settings.role!r} (its roles: {ALL})")
    else:
        if routers or subscribers or projections or workers:
            raise ValueError(f"{name}: give its parts either by role or without roles")
        part = role_part(name, roles, settings.role)
    if settings.nats_url is None or (database and settings.database_url is None):
        raise ValueError(f"{name}: NATS_URL and DATABASE_URL must be set (lapor run sets them)")
    configure_logging(settings.log_level, settings.log_format)
    configure_tracing(name)
    # FastStream's own line per message costs ~30% throughput; services log on purpose.
    broker = NatsBroker(
        settings.nats_servers,
        log_level=logging.DEBUG,
        # Its lines through the root logger, so they are rendered like all others.
        logger=logging.getLogger("faststream.nats"),
        connect_timeout=5,
        **nats_reconnect_options(name, lambda: broker.connection),
    )
    runtime = Runtime(name=name, settings=settings, broker=broker)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if database:
            runtime.pool = await create_pool(settings.database_url)
        await broker.connect()
        if part.subscribers is not None:
            part.subscribers(runtime)
        await broker.start()
        runtime.projections = [ProjectionHandler(runtime.db, settings, p) for p in part.projections]
        running: list[Worker] = [projection_follower(runtime.js, h) for h in runtime.projections]
        running += [make(runtime) for make in part.workers]
        runtime.consumers = consumers_of(broker, running)
        for worker in running:
            await worker.start()
        log.info("service started", service=name, role=settings.role)
        try:
            yield
        finally:
            for worker in running:
                await worker.stop()
            try:
                await broker.stop()
            except Exception as e:  # a connection already closed must not hide the pool
                log.warning("broker did not stop cleanly", error=repr(e))
            if runtime.pool is not None:
                await runtime.pool.close()
            shutdown_tracing()
            log.info("service stopped", service=name, role=settings.role)

    app = FastAPI(
        title=f"lapor {name}",
        description=description,
        lifespan=lifespan,
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
        **framework_telemetry_off(),
    )
    install_docs(app)
    app.state.runtime = runtime
    app.state.part = part
    app.include_router(_health_router(), responses=ERROR_RESPONSES)
    for router in part.routers:
        app.include_router(router, responses=ERROR_RESPONSES)
    _install_error_handling(
        app, settings.max_request_bytes, settings.max_multipart_bytes if multipart else None
    )
    # Outermost: counts and traces every request, a 413 or a 500 too.
    app.add_middleware(Instrumented, service=name)
    return app


class ProjectionStatus(BaseModel):
    status: str = Field(description="ok, starting, stopped (in front of an event) or waiting")
    checkpoint: int | None = Field(description="Last log sequence applied")
    stopped_at: int | None = Field(default=None, description="The event it cannot apply")
    subject: str | None = None
    reason: str | None = None


class Readiness(BaseModel):
    status: str = Field(description="ready, degraded or not ready")
    role: str = Field(description="The parts this process runs (all, or e.g. api, projector)")
    checks: dict[str, str]
    projections: dict[str, ProjectionStatus] | None = None


def _health_router() -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics: each read model's checkpoint, and whether it is stopped."""
        rt: Runtime = request.app.state.runtime
        return Response(await scrape(rt), media_type=CONTENT_TYPE_LATEST)

    @router.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @router.get(
        "/ready",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "NATS or PostgreSQL is down"}},
    )
    async def ready(request: Request) -> JSONResponse:
        """Ready when NATS and PostgreSQL answer; ``degraded`` (still 200) when a read model
        this process keeps is stopped in front of an event or waiting, with where and why
        (a role without read models, such as an ``api``, reports NATS and PostgreSQL alone)."""
        rt: Runtime = request.app.state.runtime
        checks = {"nats": "ok" if rt.broker.connection.is_connected else "down"}
        if rt.pool is not None:
            try:
                await rt.pool.fetchval("SELECT 1", timeout=2)
                checks["postgresql"] = "ok"
            except Exception:
                checks["postgresql"] = "down"
        ok = all(v == "ok" for v in checks.values())
        body: dict[str, object] = {
            "status": "ready" if ok else "not ready",
            "role": rt.settings.role,
            "checks": checks,
        }
        if rt.projections:
            # A stopped read model still serves what it has (200), but says it is behind.
            body["projections"] = {h.health.name: h.health.describe() for h in rt.projections}
            if ok and any(h.health.behind for h in rt.projections):
                body["status"] = "degraded"
        return JSONResponse(body, status_code=200 if ok else 503)

    return router


class Correlation:
    """ASGI middleware: every request carries a correlation id (the caller's
    ``X-Correlation-Id`` or a new one) into the logs, the events it causes and the response.

    Plain ASGI rather than ``@app.middleware("http")``, whose per-request streams and task
    group cost a fifth of intake's throughput.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(CORRELATION_HEADER)
        correlation_id = given or str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[CORRELATION_HEADER] = correlation_id
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            await self.app(scope, receive, send_with_id)


def _install_error_handling(
    app: FastAPI, max_request_bytes: int, max_multipart_bytes: int | None = None
) -> None:
    """One error shape (``lapor.services.errors``), the body size limit, and an OpenAPI
    that documents both."""
    app.add_middleware(BodyLimit, limit=max_request_bytes, multipart_limit=max_multipart_bytes)
    # Added last, so outermost: even a 413 sent before the app runs carries the id.
    app.add_middleware(Correlation)
    install_error_handlers(app)
    document_errors(app)
