"""Observability on real NATS JetStream and PostgreSQL, across the four services.

* One trace follows a complaint: the caller's ``traceparent`` is continued by intake,
  written into ``complaint.received``'s headers, continued by the router, whose
  ``complaint.routed`` carries the same trace id, and by every read model (tracker,
  analytics) and the agency fan-out, whose handling spans are in that trace; the audit's
  hash chain still verifies.
* ``/health/metrics`` counts the traffic (requests by route template, events handled per
  consumer) and samples JetStream (each consumer's pending messages, each read model's
  checkpoint age); a poison message shows as a dead letter and as a read model falling
  behind. ``/metrics`` stays the analytics API's.
* ``lapor serve`` with ``LAPOR_LOG_FORMAT=json`` writes nothing but JSON lines, uvicorn's
  and FastStream's included, with the trace id inside a trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import httpx
import nats
import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from lapor.analytics.app import create_app as analytics_app
from lapor.devtools.infra import free_port
from lapor.devtools.testing import ROAD, eventually, serving
from lapor.intake.app import create_app as intake_app
from lapor.ops.audit import verify
from lapor.router.app import create_app as router_app
from lapor.services import observability, tracing
from lapor.services.eventstore import EventStore
from lapor.services.settings import Settings
from lapor.shared.envelope import envelope
from lapor.shared.events import ComplaintReceived
from lapor.tracker.app import create_app as tracker_app

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT}-01"
WASTE = {
    "title": "Sampah menumpuk di TPS Jl. Merdeka",
    "body": "Sampah tidak diangkut sejak seminggu, bau menyengat sampai ke rumah warga.",
    "category": "sampah",
}


@dataclass
class System:
    intake: httpx.AsyncClient
    router: httpx.AsyncClient
    tracker: httpx.AsyncClient
    analytics: httpx.AsyncClient

    def each(self) -> dict[str, httpx.AsyncClient]:
        return {
            "intake": self.intake,
            "router": self.router,
            "tracker": self.tracker,
            "analytics": self.analytics,
        }


@contextlib.asynccontextmanager
async def system(settings: Settings) -> AsyncIterator[System]:
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(serving(make(settings)))
            for make in (intake_app, router_app, tracker_app, analytics_app)
        ]
        yield System(*clients)


@contextlib.asynccontextmanager
async def jetstream(settings: Settings) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(settings.nats_url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans this test makes (an exporter on the process's tracer provider)."""
    tracing.configure_tracing("tests")
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


async def stored(js: JetStreamContext, stream: str, subject: str):
    try:
        return await js.get_msg(stream, subject=subject)
    except NotFoundError:
        return None


def span_id_of(headers: dict[str, str]) -> str:
    return headers["traceparent"].split("-")[2]


async def test_one_trace_follows_a_complaint_from_intake_across_router_tracker_and_analytics(
    settings, spans
):
    subjects = settings.subjects
    async with system(settings) as s, jetstream(settings) as js:
        accepted = await s.intake.post(
            "/complaints", json=ROAD, headers={"traceparent": TRACEPARENT}
        )
        assert accepted.status_code == 202
        tid = accepted.json()["tracking_id"]
        other = (await s.intake.post("/complaints", json=WASTE)).json()["tracking_id"]

        async def log_event(complaint: str, event_type: str):
            subject = subjects.complaint(complaint, event_type)
            return await stored(js, subjects.events_stream, subject)

        received = await log_event(tid, "complaint.received")
        routed = await eventually(lambda: log_event(tid, "complaint.routed"))
        disposed = await eventually(lambda: log_event(tid, "complaint.disposed"))
        assigned = await eventually(
            lambda: stored(
                js, subjects.agency_stream, subjects.agency("dpupr", "agency.complaint_assigned")
            )
        )
        # The trace is in the headers, the same from intake to the agency's copy.
        for msg in (received, routed, disposed, assigned):
            assert tracing.trace_id_of(msg.headers) == TRACE_ID, msg.headers
        # Another submission is another trace.
        other_received = await log_event(other, "complaint.received")
        assert tracing.trace_id_of(other_received.headers) not in (None, TRACE_ID)

        expected = {
            "router complaint.received",
            "agency_fanout complaint.disposed",
            "tracker_status complaint.received",
            "tracker_status complaint.routed",
            "analytics_completion complaint.received",
            "analytics_facts complaint.routed",
        }

        def in_trace() -> list:
            return [
                x
                for x in spans.get_finished_spans()
                if format(x.context.trace_id, "032x") == TRACE_ID
            ]

        async def handled() -> set[str] | None:
            names = {x.name for x in in_trace()}
            return names if expected <= names else None

        await eventually(handled)

    found = in_trace()
    by_name = {x.name: x for x in found}
    server = by_name["POST /complaints"]
    assert server.kind == trace.SpanKind.SERVER
    assert format(server.parent.span_id, "016x") == PARENT  # the caller's span
    submit = by_name["intake submit"]
    assert submit.parent.span_id == server.context.span_id
    assert submit.attributes["lapor.complaint_id"] == tid
    # complaint.received names intake's span; complaint.routed the router's.
    assert span_id_of(received.headers) == format(submit.context.span_id, "016x")
    router = by_name["router complaint.received"]
    assert router.parent.span_id == submit.context.span_id
    assert span_id_of(routed.headers) == format(router.context.span_id, "016x")
    tracker = by_name["tracker_status complaint.routed"]
    assert tracker.parent.span_id == router.context.span_id
    assert tracker.attributes["lapor.complaint_id"] == tid
    assert tracker.kind == trace.SpanKind.CONSUMER
    # The headers are outside the hash chain: the audit still finds the log intact.
    async with jetstream(settings) as js:
        assert (await verify(js, subjects.events_stream, subjects)).ok


def series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


async def scrape(s: System) -> dict[str, dict]:
    texts = {}
    for name, client in s.each().items():
        r = await client.get("/health/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        texts[name] = series(r.text)
    return texts


async def test_metrics_count_the_traffic_and_sample_the_consumers(settings):
    started = time.time()
    async with system(settings) as s, jetstream(settings) as js:
        before = await scrape(s)
        ids = []
        for complaint in (ROAD, WASTE, ROAD):
            r = await s.intake.post("/complaints", json=complaint)
            assert r.status_code == 202
            ids.append(r.json()["tracking_id"])
        assert (await s.tracker.get("/no/such/page/7K3MQ")).status_code == 404

        async def tracked() -> bool:
            for tid in ids:
                r = await s.tracker.get(f"/complaints/{tid}")
                if r.status_code != 200 or r.json()["status"] != "disposed":
                    return False
            r = await s.analytics.get("/metrics/completion")
            return r.json()["overall"]["received"] == len(ids)

        await eventually(tracked)
        last_seq = (await js.stream_info(settings.subjects.events_stream)).state.last_seq

        async def caught_up() -> dict | None:
            now = await scrape(s)
            ages = [
                value(now["tracker"], "lapor_projection_checkpoint_age_seconds", projection=p)
                for p in ("tracker.status",)
            ] + [
                value(now["analytics"], "lapor_projection_checkpoint_age_seconds", projection=p)
                for p in ("analytics.completion", "analytics.facts")
            ]
            pending = value(now["router"], "lapor_consumer_pending", consumer="agency_fanout")
            return now if ages == [0.0, 0.0, 0.0] and pending == 0 else None

        after = await eventually(caught_up)

        def delta(of: str, name: str, **labels: str) -> float:
            old = value(before[of], name, **labels) or 0.0
            return (value(after[of], name, **labels) or 0.0) - old

        # Requests, by route template.
        posted = {"service": "intake", "method": "POST", "route": "/complaints"}
        assert delta("intake", "lapor_http_requests_total", status="202", **posted) == 3
        assert delta("intake", "lapor_http_request_duration_seconds_count", **posted) == 3
        by_id = {"service": "tracker", "method": "GET", "route": "/complaints/{tracking_id}"}
        assert delta("tracker", "lapor_http_requests_total", status="200", **by_id) >= 3
        unmatched = {"service": "tracker", "method": "GET", "route": "unmatched"}
        assert delta("tracker", "lapor_http_requests_total", status="404", **unmatched) == 1
        assert not [k for k in after["tracker"] if "7K3MQ" in str(k)]  # no raw paths
        # Events handled, per consumer; nothing dead-lettered.
        handled = "lapor_events_handled_total"
        assert delta("router", handled, consumer="router", outcome="ok") == 3
        assert delta("router", handled, consumer="agency_fanout", outcome="ok") == last_seq
        assert delta("tracker", handled, consumer="tracker_status", outcome="ok") == last_seq
        for projection in ("analytics_completion", "analytics_facts"):
            assert delta("analytics", handled, consumer=projection, outcome="ok") == last_seq
        assert delta("router", "lapor_dead_letters_total", consumer="router") == 0
        # JetStream sampled at scrape time: every consumer of each service, caught up.
        for service, consumers in {
            "router": ("router", "router_rerouting", "agency_fanout"),
            "tracker": ("tracker_status",),
            "analytics": ("analytics_completion", "analytics_facts"),
        }.items():
            for consumer in consumers:
                assert value(after[service], "lapor_consumer_pending", consumer=consumer) == 0
                assert value(after[service], "lapor_consumer_ack_pending", consumer=consumer) == 0
        at = {"service": "tracker", "projection": "tracker.status"}
        assert value(after["tracker"], "lapor_projection_checkpoint", **at) == last_seq
        assert value(after["tracker"], "lapor_projection_stopped", **at) == 0
        # A read model that had applied nothing would be as old as the first event.
        behind = SimpleNamespace(
            health=SimpleNamespace(name="tracker.status", checkpoint=0), pool=None
        )
        age = await observability.checkpoint_age(js, settings.subjects, behind)
        assert 0 < age < time.time() - started + 1
        # The analytics API keeps /metrics for its figures.
        figures = await s.analytics.get("/metrics", params={"by": "opd"})
        assert figures.status_code == 200 and figures.headers["content-type"].startswith(
            "application/json"
        )


async def test_a_poison_message_is_counted_as_a_dead_letter_and_a_read_model_behind(settings):
    async with system(settings) as s, jetstream(settings) as js:
        before = await scrape(s)
        subject = settings.subjects.complaint("POIS0-N0000", "complaint.received")
        tracing.configure_tracing("tests")
        with tracing.tracer().start_as_current_span("poisoner"):
            headers = tracing.trace_headers()
        stream = settings.subjects.events_stream
        await js.publish(subject, b"{not json", stream=stream, headers=headers)

        def delta(now: dict, of: str, name: str, **labels: str) -> float:
            old = value(before[of], name, **labels) or 0.0
            return (value(now[of], name, **labels) or 0.0) - old

        async def parked() -> dict | None:
            now = await scrape(s)
            counted = delta(now, "router", "lapor_dead_letters_total", consumer="router")
            status = {"projection": "tracker.status"}
            age = value(now["tracker"], "lapor_projection_checkpoint_age_seconds", **status)
            # The age is above 0 as soon as the poison is in the log; stopped, once the
            # projection has come to it (and counted its retry).
            at = {"service": "tracker", **status}
            stopped = value(now["tracker"], "lapor_projection_stopped", **at)
            return now if counted == 1 and age and age > 0 and stopped == 1 else None

        after = await eventually(parked)
        handled = "lapor_events_handled_total"
        dead = {"consumer": "router", "outcome": "dead_lettered"}
        assert delta(after, "router", handled, **dead) == 1
        fanout = {"consumer": "agency_fanout"}
        assert delta(after, "router", "lapor_dead_letters_total", **fanout) == 1
        retried = {"consumer": "tracker_status", "outcome": "retried"}
        assert delta(after, "tracker", handled, **retried) >= 1
        at = {"service": "tracker", "projection": "tracker.status"}
        assert value(after["tracker"], "lapor_projection_stopped", **at) == 1
        # The dead letter stays in the poison's trace.
        letter = await js.get_msg(
            settings.subjects.dead_letter_stream, subject=settings.subjects.dead_letter("router")
        )
        assert tracing.trace_id_of(letter.headers) == tracing.trace_id_of(headers)


# --- JSON logs of a running service --------------------------------------------------------


def service_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    assert settings.nats_url and settings.database_url and settings.auth_secret
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAPOR_", "OTEL_"))}
    env.update(
        NATS_URL=settings.nats_url,
        DATABASE_URL=settings.database_url,
        LAPOR_SUBJECT_ROOT=settings.subject_root,
        LAPOR_AUTH_SECRET=settings.auth_secret.get_secret_value(),
        LAPOR_DATA_DIR=str(data_dir),
        LAPOR_LOG_FORMAT="json",
        # DEBUG lets FastStream's own lines through (one per message), to be seen as JSON.
        LAPOR_LOG_LEVEL="DEBUG",
    )
    return env


def lapor_command() -> str:
    return str(Path(sys.executable).with_name("lapor"))


@contextlib.contextmanager
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A stand-in OTLP/HTTP collector on the loopback: (its URL, what was posted to it)."""
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


async def test_a_running_service_logs_nothing_but_json_lines_and_exports_its_spans(
    settings, tmp_path
):
    port = free_port()
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with contextlib.ExitStack() as stack:
        endpoint, exported = stack.enter_context(collector())
        env = service_env(settings, tmp_path)
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_BSP_SCHEDULE_DELAY="200")
        stdout, stderr = stack.enter_context(out.open("wb")), stack.enter_context(err.open("wb"))
        proc = await asyncio.create_subprocess_exec(
            lapor_command(),
            *("serve", "router", "--port", str(port), "--access-log"),
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
        trace_id = await served_and_stopped(settings, proc, port, err)
    # The router's spans went to the collector, in the complaint's trace.
    paths = {path for path, _ in exported}
    assert paths == {"/v1/traces"}, paths
    assert any(bytes.fromhex(trace_id) in body for _, body in exported)
    assert any(b"lapor-router" in body for _, body in exported)  # service.name
    check_json_lines(out, err, trace_id)


async def served_and_stopped(
    settings: Settings, proc: asyncio.subprocess.Process, port: int, err: Path
) -> str:
    """Route a complaint of a trace of ours through the running router, scrape it, send
    it garbage, and stop it; the trace id."""
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

            async def ready() -> bool:
                assert proc.returncode is None, f"lapor serve exited; see {err}"
                try:
                    return (await client.get("/health/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, within=60, interval=0.2)
            # A complaint to route, in a trace of ours.
            tracing.configure_tracing("tests")
            async with jetstream(settings) as js:
                store = EventStore(js, settings.subjects)
                received = ComplaintReceived(
                    title="Lampu jalan mati",
                    body="Lampu jalan di Jl. Gajah Mada mati sejak lama.",
                    category="jalan",
                )
                with tracing.tracer().start_as_current_span("test submit") as span:
                    env = envelope(
                        received, complaint_id="7K3MQ-9X2AB", correlation_id=uuid.uuid4()
                    )
                    await store.append(env, 0)
                trace_id = format(span.get_span_context().trace_id, "032x")

                async def routed():
                    subject = settings.subjects.complaint("7K3MQ-9X2AB", "complaint.routed")
                    return await stored(js, settings.subjects.events_stream, subject)

                await eventually(routed)
            await client.get("/health/metrics")
            # Not HTTP at all: uvicorn's error log says so.
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x16\x03\x01 not http\r\n\r\n")
            await writer.drain()
            writer.close()

            def seen() -> list[dict]:
                return [json.loads(line) for line in err.read_text().splitlines() if line]

            async def complete() -> list[dict] | None:
                lines = seen()
                loggers = {line.get("logger") for line in lines}
                wanted = {"uvicorn.error", "uvicorn.access"}
                has_faststream = any(str(name).startswith("faststream") for name in loggers)
                return lines if wanted <= loggers and has_faststream else None

            await eventually(complete, within=15, interval=0.2)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    return trace_id


def check_json_lines(out: Path, err: Path, trace_id: str) -> None:
    assert out.read_text() == ""  # FastStream's own handler wrote to stdout
    raw = [line for line in err.read_text().splitlines() if line.strip()]
    lines = []
    for line in raw:
        try:
            lines.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
    assert all(isinstance(line, dict) and "event" in line and "level" in line for line in lines)
    routed_lines = [line for line in lines if line["event"] == "complaint routed"]
    assert routed_lines and routed_lines[0]["trace_id"] == trace_id
    access = [line for line in lines if line.get("logger") == "uvicorn.access"]
    assert any(line["path"] == "/health/metrics" and line["status"] == 200 for line in access)
    assert any(line["event"] == "service stopped" for line in lines)


async def test_the_workers_behind_one_port_count_together(settings, tmp_path):
    """``lapor serve intake --workers 2``: whichever worker answers a scrape counts the
    requests of both."""
    port = free_port()
    err = tmp_path / "stderr"
    with err.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            lapor_command(),
            *("serve", "intake", "--port", str(port), "--workers", "2"),
            env=service_env(settings, tmp_path),
            stdout=stderr,
            stderr=stderr,
        )
    posted = ("lapor_http_requests_total", at_labels("intake", "POST", "/complaints", "202"))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

            async def ready() -> bool:
                assert proc.returncode is None, f"lapor serve exited; see {err}"
                try:
                    return (await client.get("/health/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, within=60, interval=0.2)
            for _ in range(8):  # new connections: spread over both workers
                async with httpx.AsyncClient(timeout=5) as one:
                    r = await one.post(f"http://127.0.0.1:{port}/complaints", json=WASTE)
                    assert r.status_code == 202
            counts = []
            for _ in range(6):
                async with httpx.AsyncClient(timeout=5) as one:
                    text = (await one.get(f"http://127.0.0.1:{port}/health/metrics")).text
                counts.append(series(text).get(posted))
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    assert counts == [8.0] * 6, counts


def at_labels(service: str, method: str, route: str, status: str) -> tuple:
    labels = {"service": service, "method": method, "route": route, "status": status}
    return tuple(sorted(labels.items()))
