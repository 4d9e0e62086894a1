"""The chassis' HTTP metrics and logs, without servers: requests are counted and timed by
route template, a request continues the caller's trace, and every line of a process is
one JSON object in json mode, whoever logged it (structlog, uvicorn, FastStream, asyncio,
warnings), with the trace id inside a trace.

Nothing here runs a lifespan, so nothing connects to NATS or PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import structlog
from fastapi import APIRouter, HTTPException
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from lapor.services import tracing
from lapor.services.logging import configure_logging
from lapor.services.runtime import create_service
from lapor.services.settings import Settings

SETTINGS = Settings(
    nats_url="nats://127.0.0.1:1",
    database_url="postgresql://nowhere/none",
    auth_secret="unit-test-secret",
    log_format="console",
)
SERVICE = "obsunit"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"

probe = APIRouter()


@probe.get("/things/{thing_id}")
async def get_thing(thing_id: str) -> dict[str, str]:
    if thing_id == "missing":
        raise HTTPException(404, "no such thing")
    if thing_id == "broken":
        raise RuntimeError("broken on purpose")
    return {"id": thing_id}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans this test makes (an exporter on the process's tracer provider)."""
    tracing.configure_tracing(SERVICE)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # later spans are no longer kept


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_service(SERVICE, SETTINGS, routers=[probe], database=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one series name in an exposition, by their labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def at(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


async def test_requests_are_counted_and_timed_by_route_template(client):
    before = (await client.get("/health/metrics")).text
    for thing in ("a1", "b2", "c3", "missing"):
        await client.get(f"/things/{thing}")
    assert (await client.get("/things/broken")).status_code == 500
    await client.get("/no/such/path/x1")
    await client.get("/no/such/path/x2")
    after = (await client.get("/health/metrics")).text

    def delta(name: str, **labels: str) -> float:
        key = at(service=SERVICE, **labels)
        return samples(after, name).get(key, 0.0) - samples(before, name).get(key, 0.0)

    total = "lapor_http_requests_total"
    route = "/things/{thing_id}"
    assert delta(total, method="GET", route=route, status="200") == 3
    assert delta(total, method="GET", route=route, status="404") == 1
    assert delta(total, method="GET", route=route, status="500") == 1
    assert delta(total, method="GET", route="unmatched", status="404") == 2
    # The raw paths never become labels.
    assert not [k for k in samples(after, total) if any("a1" in v or "x1" in v for _, v in k)]
    count = "lapor_http_request_duration_seconds_count"
    assert delta(count, method="GET", route=route) == 5
    inf = "lapor_http_request_duration_seconds_bucket"
    assert delta(inf, method="GET", route=route, le="+Inf") == 5
    assert delta("lapor_http_request_duration_seconds_sum", method="GET", route=route) > 0
    # The scrape itself is a request like any other.
    assert delta(total, method="GET", route="/health/metrics", status="200") == 1


async def test_a_request_continues_the_callers_trace(client, spans):
    traceparent = f"00-{TRACE_ID}-{PARENT}-01"
    await client.get("/things/t1", headers={"traceparent": traceparent})
    await client.get("/things/t2")
    server = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert [s.name for s in server] == ["GET /things/{thing_id}"] * 2
    continued, fresh = server
    assert format(continued.context.trace_id, "032x") == TRACE_ID
    assert continued.parent is not None and format(continued.parent.span_id, "016x") == PARENT
    assert continued.attributes["http.response.status_code"] == 200
    assert format(fresh.context.trace_id, "032x") != TRACE_ID and fresh.parent is None


def test_the_trace_headers_of_the_current_span_are_what_an_event_carries(spans):
    assert tracing.trace_headers() == {}
    with tracing.tracer().start_as_current_span("outer") as span:
        headers = tracing.trace_headers()
    context = span.get_span_context()
    flags = f"{int(context.trace_flags):02x}"
    assert headers["traceparent"] == f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags}"
    assert tracing.trace_id_of(headers) == f"{context.trace_id:032x}"
    # A consumer continues it, whatever the case of the header's name.
    with tracing.consuming("c", "s", {"Traceparent": headers["traceparent"]}) as child:
        assert child.get_span_context().trace_id == context.trace_id
        assert tracing.trace_headers()["traceparent"] != headers["traceparent"]
    assert child.parent is not None and child.parent.span_id == context.span_id


def json_lines(err: str) -> list[dict]:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # every line, or this fails


def test_every_line_is_json_whoever_logged_it(capsys, spans):
    configure_logging("INFO", "json")
    try:
        capsys.readouterr()
        structlog.get_logger("lapor.test").info("own line", complaint_id="7K3MQ-9X2AB")
        with tracing.tracer().start_as_current_span("handling") as span:
            structlog.get_logger("lapor.test").warning("inside a trace")
            logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "10.0.0.7:5555", "GET", "/complaints/X", "1.1", 200
        )
        logging.getLogger("faststream.nats").error("subscriber failed", extra={"subject": "a.b"})
        logging.getLogger("faststream").warning("faststream's own")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("asyncio").exception("Task exception was never retrieved")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            # pytest records warnings itself: hand them to logging again, as a service does.
            logging.captureWarnings(False)
            logging.captureWarnings(True)
            warnings.warn("deprecated thing", UserWarning, stacklevel=1)
        out, err = capsys.readouterr()
    finally:
        configure_logging("INFO", "console")
        logging.captureWarnings(False)
    assert out == ""
    lines = json_lines(err)
    by_event = {line["event"]: line for line in lines}
    assert by_event["own line"]["complaint_id"] == "7K3MQ-9X2AB"
    assert by_event["own line"]["level"] == "info" and "timestamp" in by_event["own line"]
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert by_event["inside a trace"]["trace_id"] == trace_id
    invalid = by_event["Invalid HTTP request received."]
    assert invalid["logger"] == "uvicorn.error" and invalid["trace_id"] == trace_id
    access = next(line for line in lines if line.get("logger") == "uvicorn.access")
    assert (access["method"], access["path"], access["status"]) == ("GET", "/complaints/X", 200)
    assert by_event["subscriber failed"]["subject"] == "a.b"
    assert by_event["faststream's own"]["level"] == "warning"
    assert "ValueError: boom" in by_event["Task exception was never retrieved"]["exception"]
    assert any(line.get("logger") == "py.warnings" for line in lines)


def test_faststream_per_message_lines_stay_quiet_unless_debugging(capsys):
    try:
        configure_logging("INFO", "json")
        capsys.readouterr()
        logging.getLogger("faststream.nats").info("Received")
        assert capsys.readouterr().err == ""
        configure_logging("DEBUG", "json")
        logging.getLogger("faststream.nats").debug("Received")
        assert json_lines(capsys.readouterr().err)[0]["logger"] == "faststream.nats"
    finally:
        configure_logging("INFO", "console")
