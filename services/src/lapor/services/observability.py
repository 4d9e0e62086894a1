"""Prometheus metrics of a service, served at ``/health/metrics`` (``/metrics`` is the
analytics API's own path), and the HTTP instrumentation of every service.

What is counted as it happens (process counters, this module's ``REGISTRY``):

* ``lapor_http_requests_total{service,method,route,status}`` and
  ``lapor_http_request_duration_seconds{service,method,route}`` (histogram): every HTTP
  request, by route template (``/complaints/{tracking_id}``, never the raw path; a path no
  route matches is ``unmatched``), recorded by :class:`Instrumented`;
* ``lapor_events_handled_total{consumer,outcome}``: every event a consumer (the
  router's, the agency fan-out, each read model) settled: ``ok`` (handled and
  acknowledged), ``retried`` (failed and will be tried again: redelivered after a delay,
  or held by a read model), ``dead_lettered`` (parked in the dead-letter stream);
* ``lapor_dead_letters_total{consumer}``: messages this process parked in
  ``<root>_DEADLETTER`` (a counter: alert on ``increase(...) > 0``);
* ``lapor_deadline_breaches_total{step}``: deadlines the tracker's scheduler declared
  breached (disposition, follow-up, ...).

What is read at scrape time, from the handlers and from JetStream (no second copy of
their state to keep in step):

* ``lapor_consumer_pending{consumer}``: the JetStream consumer's ``num_pending``, the
  messages not yet delivered to it; ``lapor_consumer_ack_pending{consumer}``: delivered,
  not yet acknowledged;
* ``lapor_projection_checkpoint_age_seconds{projection}``: how far behind the read model
  is in time: the age of the oldest event of the log it has not applied, 0 when it has
  applied all of them;
* ``lapor_projection_checkpoint``, ``lapor_projection_stopped`` (alert on ``== 1``: a read
  model is stopped in front of an event it cannot apply, and what people see from it is
  behind the log until someone acts), ``lapor_projection_stopped_at_seq``,
  ``lapor_projection_waiting``, ``lapor_projection_consecutive_failures``.

Several processes of one service behind one port (``lapor serve intake --workers N``)
share their counters through ``PROMETHEUS_MULTIPROC_DIR``, which ``lapor serve`` sets.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from fastapi import FastAPI
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lapor.services import tracing

if TYPE_CHECKING:
    from lapor.services.projections import ProjectionHandler
    from lapor.services.runtime import Runtime
    from lapor.shared.subjects import Subjects

__all__ = [
    "CONTENT_TYPE_LATEST",
    "DEAD_LETTERED",
    "OK",
    "RETRIED",
    "Instrumented",
    "event_handled",
    "exposition",
    "scrape",
]

log = structlog.get_logger(__name__)

OK, RETRIED, DEAD_LETTERED = "ok", "retried", "dead_lettered"
"""The outcomes of ``lapor_events_handled_total``."""
UNMATCHED = "unmatched"
"""The route of a request no route matched (so that scanners cannot mint series)."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SAMPLE_TIMEOUT_SECONDS = 2.0
"""How long a scrape waits for JetStream; what has not come by then is left out."""

MULTIPROCESS = values.ValueClass is not values.MutexValue
"""Whether this process's counters live in ``PROMETHEUS_MULTIPROC_DIR`` (decided once,
when prometheus_client was imported)."""
REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_REQUESTS = Counter(
    "lapor_http_requests",
    "HTTP requests answered, by route template and status",
    ["service", "method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "lapor_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
EVENTS_HANDLED = Counter(
    "lapor_events_handled",
    "Events a consumer settled: ok, retried (tried again later) or dead_lettered",
    ["consumer", "outcome"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "lapor_dead_letters",
    "Messages parked in the dead-letter stream by this process",
    ["consumer"],
    registry=REGISTRY,
)
DEADLINE_BREACHES = Counter(
    "lapor_deadline_breaches",
    "Statutory deadlines breached (complaint.deadline_breached appended), by step",
    ["step"],
    registry=REGISTRY,
)


def event_handled(consumer: str, outcome: str = OK, count: int = 1) -> None:
    """Count ``count`` events ``consumer`` settled with ``outcome``."""
    if count:
        EVENTS_HANDLED.labels(consumer, outcome).inc(count)


def dead_lettered(consumer: str) -> None:
    DEAD_LETTERS.labels(consumer).inc()


# --- HTTP -------------------------------------------------------------------------------


def route_of(scope: Scope) -> str:
    """The template of the route that served the request (``/complaints/{tracking_id}``)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = candidate.matches(scope)
        if match != Match.NONE and isinstance(getattr(candidate, "path", None), str):
            return candidate.path  # e.g. a 405: the path exists, not with this method
    return UNMATCHED


class Instrumented:
    """ASGI middleware: counts and times every request by route template, and runs it in
    a server span that continues the caller's ``traceparent`` (or starts a trace), so
    that the events the request appends carry the trace on.

    Plain ASGI, like ``Correlation``: ``@app.middleware("http")`` costs a fifth of
    intake's throughput.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        status = 500  # unless a response starts: an exception Starlette answers with 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracing.tracer().start_as_current_span(
            method,
            context=tracing.context_of(Headers(scope=scope)),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope.get("path", "")},
            record_exception=True,
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = route_of(scope)
                HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
                HTTP_DURATION.labels(self.service, method, route).observe(
                    time.perf_counter() - started
                )
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))


def framework_telemetry_off() -> dict[str, Any]:
    """``FastAPI(...)`` options that turn off FastAPI's own OpenTelemetry (a second server
    span and three operation spans per request, OTel metrics and logs), where the
    installed FastAPI has it: :class:`Instrumented` makes the one server span and the
    Prometheus series."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {"telemetry": off}


# --- Scrape -----------------------------------------------------------------------------


class _Health(Protocol):
    name: str
    status: str
    checkpoint: int | None
    failures: int
    stop: Any


@dataclass
class Sample:
    """What a scrape read from JetStream and PostgreSQL."""

    pending: dict[str, int] = field(default_factory=dict)
    ack_pending: dict[str, int] = field(default_factory=dict)
    checkpoint_age: dict[str, float] = field(default_factory=dict)


class ServiceCollector:
    """The gauges of one service: its read models' state, and what a scrape sampled."""

    def __init__(
        self, service: str, handlers: Sequence[ProjectionHandler], sample: Sample | None = None
    ) -> None:
        self.service = service
        self.handlers = handlers
        self.sample = sample or Sample()

    def collect(self) -> Iterator[Metric]:
        yield from self._projections()
        pending = GaugeMetricFamily(
            "lapor_consumer_pending",
            "Messages the JetStream consumer has not delivered yet (num_pending)",
            labels=["consumer"],
        )
        for consumer, n in sorted(self.sample.pending.items()):
            pending.add_metric([consumer], n)
        ack_pending = GaugeMetricFamily(
            "lapor_consumer_ack_pending",
            "Messages delivered to the JetStream consumer and not acknowledged yet",
            labels=["consumer"],
        )
        for consumer, n in sorted(self.sample.ack_pending.items()):
            ack_pending.add_metric([consumer], n)
        age = GaugeMetricFamily(
            "lapor_projection_checkpoint_age_seconds",
            "Age of the oldest event of the log the read model has not applied (0: caught up)",
            labels=["projection"],
        )
        for projection, seconds in sorted(self.sample.checkpoint_age.items()):
            age.add_metric([projection], seconds)
        yield from (pending, ack_pending, age)

    def _projections(self) -> Iterator[Metric]:
        labels = ["service", "projection"]
        checkpoint = GaugeMetricFamily(
            "lapor_projection_checkpoint", "Last log sequence the read model applied", labels=labels
        )
        stopped = GaugeMetricFamily(
            "lapor_projection_stopped",
            "1 while the read model is stopped in front of an event it cannot apply",
            labels=labels,
        )
        stopped_at = GaugeMetricFamily(
            "lapor_projection_stopped_at_seq",
            "Log sequence of the event the read model is stopped in front of (0: none)",
            labels=labels,
        )
        waiting = GaugeMetricFamily(
            "lapor_projection_waiting", "1 while the read model waits for PostgreSQL", labels=labels
        )
        failures = GaugeMetricFamily(
            "lapor_projection_consecutive_failures",
            "Failed attempts in a row (0 once the read model goes on)",
            labels=labels,
        )
        for handler in self.handlers:
            health: _Health = handler.health
            at = [self.service, health.name]
            checkpoint.add_metric(at, health.checkpoint or 0)
            stopped.add_metric(at, int(health.status == "stopped"))
            stopped_at.add_metric(at, health.stop.seq if health.stop else 0)
            waiting.add_metric(at, int(health.status == "waiting"))
            failures.add_metric(at, health.failures)
        yield from (checkpoint, stopped, stopped_at, waiting, failures)


def exposition(
    service: str, handlers: Sequence[ProjectionHandler], sample: Sample | None = None
) -> bytes:
    """The metrics in Prometheus' text format: the process's counters (every worker's,
    under ``PROMETHEUS_MULTIPROC_DIR``) and the service's gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS:
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(registry)
    else:
        registry.register(_Counters())
    registry.register(ServiceCollector(service, handlers, sample))
    return generate_latest(registry)


class _Counters:
    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()


async def scrape(rt: Runtime) -> bytes:
    """What ``/health/metrics`` answers: the counters and gauges, with the consumers'
    pending messages and the read models' checkpoint ages read from JetStream now."""
    consumers = list(rt.consumers)
    for _, durable in consumers:  # present from the start, at 0, for rate() and alerts
        EVENTS_HANDLED.labels(durable, OK)
        DEAD_LETTERS.labels(durable)
    sample = Sample()
    if _connected(rt) and (consumers or rt.projections):
        try:
            await asyncio.wait_for(
                _sample(rt.js, rt.settings.subjects, consumers, rt.projections, sample),
                SAMPLE_TIMEOUT_SECONDS,
            )
        except TimeoutError:
            log.warning("metrics: JetStream did not answer in time; gauges left out")
    return exposition(rt.name, rt.projections, sample)


def _connected(rt: Runtime) -> bool:
    try:
        return bool(rt.broker.connection.is_connected)
    except Exception:  # not connected yet: FastStream has no connection to ask
        return False


async def _sample(
    js: JetStreamContext,
    subjects: Subjects,
    consumers: Sequence[tuple[str, str]],
    handlers: Sequence[ProjectionHandler],
    sample: Sample,
) -> None:
    async def pending(stream: str, durable: str) -> None:
        info = await js.consumer_info(stream, durable)
        sample.pending[durable] = info.num_pending or 0
        sample.ack_pending[durable] = info.num_ack_pending or 0

    async def age(handler: ProjectionHandler) -> None:
        seconds = await checkpoint_age(js, subjects, handler)
        if seconds is not None:
            sample.checkpoint_age[handler.health.name] = seconds

    tasks = [pending(stream, durable) for stream, durable in consumers]
    tasks += [age(h) for h in handlers]
    for result in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(result, Exception):
            log.warning("metrics: a gauge could not be read", error=repr(result))


async def checkpoint_age(
    js: JetStreamContext, subjects: Subjects, handler: ProjectionHandler
) -> float | None:
    """Seconds since the oldest event the read model has not applied was appended; 0 when
    it has applied every event of the log; None when its checkpoint is not known."""
    checkpoint = handler.health.checkpoint
    if checkpoint is None:  # starting: what it last committed
        checkpoint = await handler.pool.fetchval(
            "SELECT last_seq FROM projection_checkpoints WHERE projection = $1",
            handler.projection.name,
            timeout=SAMPLE_TIMEOUT_SECONDS,
        )
    try:
        raw = await js.get_msg(
            subjects.events_stream,
            seq=(checkpoint or 0) + 1,
            subject=subjects.all_events,
            next=True,
        )
    except NotFoundError:
        return 0.0
    if raw.time is None:
        return None
    appended = raw.time if raw.time.tzinfo else raw.time.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - appended).total_seconds())


def consumers_of(broker: Any, workers: Sequence[object]) -> list[tuple[str, str]]:
    """(stream, durable) of the JetStream consumers a process reads: its FastStream
    subscribers' and its log followers' (workers with ``stream`` and ``durable``)."""
    found: list[tuple[str, str]] = []
    for subscriber in getattr(broker, "subscribers", ()):
        stream = getattr(getattr(subscriber, "stream", None), "name", None)
        durable = (getattr(subscriber, "extra_options", None) or {}).get("durable")
        if isinstance(stream, str) and isinstance(durable, str):
            found.append((stream, durable))
    for worker in workers:
        stream, durable = getattr(worker, "stream", None), getattr(worker, "durable", None)
        if isinstance(stream, str) and isinstance(durable, str):
            found.append((stream, durable))
    return list(dict.fromkeys(found))
