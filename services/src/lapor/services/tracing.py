"""OpenTelemetry traces that follow a complaint through the log.

A trace starts where a request enters (``lapor.services.observability.Instrumented``:
the caller's W3C ``traceparent`` is continued, or a new trace begins) and travels **in the
events' NATS headers**, never in the envelope: every append and publish of the event store
writes the current span's ``traceparent`` (and ``tracestate``) beside the event
(:func:`trace_headers`), and every consumer continues the trace of the event it handles
(:func:`consuming`, :func:`record_applied`), so the events it appends in turn carry the
same trace id. One complaint can so be followed from intake across the router, the
tracker and analytics: ``complaint.received`` and the ``complaint.routed`` it causes share
a trace id.

The trace headers are not ``Lapor-*`` headers: the audit's hash chain does not cover them
(they say how an event was observed, not what it is), so ``lapor audit verify`` is
unaffected, and the committed event schemas are unchanged.

Spans are exported over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; otherwise nothing leaves the process, but
the context still propagates (trace ids in the headers and in the log lines). The
standard ``OTEL_*`` variables apply: ``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SDK_DISABLED`` ...
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = structlog.get_logger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
SCOPE = "lapor"
"""The instrumentation scope of every span the services make."""

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer(SCOPE)  # a proxy until configure_tracing sets the provider
_configured = False


class _HeaderGetter(Getter[Mapping[str, str]]):
    """Reads a header whatever the case of its name (NATS keeps names as written)."""

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            lower = key.lower()
            value = next((v for k, v in carrier.items() if k.lower() == lower), None)
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier)


_getter = _HeaderGetter()


def exporting() -> bool:
    """Whether spans are sent to an OTLP collector."""
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def configure_tracing(service: str) -> None:
    """Install the process's tracer provider, once: resource ``service.name`` =
    ``lapor-<service>`` (unless ``OTEL_SERVICE_NAME`` says otherwise), the OTLP/HTTP
    exporter if an endpoint is configured. A provider installed before (a test's, an
    auto-instrumentation's) is left as it is."""
    global _configured
    if _configured:
        return
    _configured = True
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return  # the API's no-op provider: incoming trace context still passes through
    detected = Resource.create()
    name = detected.attributes.get(SERVICE_NAME, "")
    if not os.environ.get("OTEL_SERVICE_NAME") and str(name).startswith("unknown_service"):
        detected = detected.merge(Resource({SERVICE_NAME: f"lapor-{service}"}))
    provider = TracerProvider(
        resource=detected.merge(Resource({"service.namespace": "lapor"})),
    )
    if exporting():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info("traces exported over OTLP", service=service)
    trace.set_tracer_provider(provider)


def shutdown_tracing() -> None:
    """Send what is left in the exporter's queue (a service stopping)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush(timeout_millis=5000)


def tracer() -> trace.Tracer:
    return _tracer


def trace_headers() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the current span, to write beside an event;
    empty outside any trace."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def context_of(headers: Mapping[str, str] | None) -> Context | None:
    """The trace context an event (or a request) carries in its headers, if any."""
    if not headers:
        return None
    return _propagator.extract(headers, getter=_getter)


def trace_id_of(headers: Mapping[str, str] | None) -> str | None:
    """The trace id (32 hex digits) in ``headers``' ``traceparent``, or None."""
    ctx = context_of(headers)
    if ctx is None:
        return None
    span_context = trace.get_current_span(ctx).get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def _event_attributes(
    consumer: str, subject: str, seq: int | None, event_type: str | None, complaint_id: str | None
) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "messaging.system": "nats",
        "messaging.operation.type": "process",
        "messaging.destination.name": subject,
        "messaging.consumer.group.name": consumer,
    }
    if seq is not None:
        attributes["lapor.log_sequence"] = seq
    if event_type:
        attributes["lapor.event_type"] = event_type
    if complaint_id:
        attributes["lapor.complaint_id"] = complaint_id
    return attributes


@contextmanager
def consuming(
    consumer: str,
    subject: str,
    headers: Mapping[str, str] | None,
    *,
    seq: int | None = None,
    event_type: str | None = None,
    complaint_id: str | None = None,
) -> Iterator[Span]:
    """The span of a consumer handling one event, continuing the event's trace (a new
    trace if it carries none); current while the handler runs, so what it appends carries
    the trace on. An exception is recorded on the span and raised on."""
    with _tracer.start_as_current_span(
        f"{consumer} {event_type or 'process'}",
        context=context_of(headers),
        kind=SpanKind.CONSUMER,
        attributes=_event_attributes(consumer, subject, seq, event_type, complaint_id),
    ) as span:
        yield span


def record_applied(
    consumer: str,
    events: Iterable[tuple[str, Mapping[str, str] | None, int, str | None, str | None]],
    start_ns: int,
    *,
    error: str | None = None,
) -> None:
    """One span per event a read model applied together in one transaction (``events``:
    subject, headers, sequence, event type, complaint), from ``start_ns`` to now, each in
    its event's trace; ``error``: the span of an event it could not apply."""
    end_ns = time.time_ns()
    for subject, headers, seq, event_type, complaint_id in events:
        span = _tracer.start_span(
            f"{consumer} {event_type or 'process'}",
            context=context_of(headers),
            kind=SpanKind.CONSUMER,
            attributes=_event_attributes(consumer, subject, seq, event_type, complaint_id),
            start_time=start_ns,
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=end_ns)
