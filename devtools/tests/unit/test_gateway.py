"""The one address (``lapor.devtools.gateway``) in front of stand-in services, each a real
uvicorn server on its own port, the gateway too: routes, headers, the client's address,
bodies streamed both ways, ``/docs`` behind the prefix, a service that is down."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from lapor.devtools.commands.run import gateway_port
from lapor.devtools.gateway import Gateway, routes
from lapor.services.discovery import installed_services
from lapor.services.docs import install_docs

RELEASE = threading.Event()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            proxy_headers=False,  # as lapor.devtools.gateway.main runs it
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


def api(name: str) -> FastAPI:
    app = FastAPI(title=name, docs_url=None, redoc_url=None)
    install_docs(app)

    @app.get("/echo/{rest:path}")
    async def echo(rest: str, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "service": name,
                "path": request.url.path,
                "rest": rest,
                "query": request.url.query,
                "headers": dict(request.headers),
                "client": request.client.host if request.client else None,
            }
        )

    @app.post("/upload")
    async def upload(request: Request) -> JSONResponse:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return JSONResponse({"size": size}, status_code=202)

    @app.get("/exports/slow.csv")
    async def slow() -> StreamingResponse:
        async def rows():
            yield b"first\n"
            # The test reads the first row before this ends.
            await asyncio.to_thread(RELEASE.wait, 10)
            yield b"second\n"

        return StreamingResponse(rows(), media_type="text/csv")

    @app.get("/open311/v2/services.json")
    async def services() -> JSONResponse:
        return JSONResponse([{"service_code": "jalan"}])

    @app.get("/")
    async def home() -> PlainTextResponse:
        return PlainTextResponse(f"home of {name}")

    return app


@pytest.fixture(scope="module")
def front() -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        upstreams = {
            name: stack.enter_context(serving(api(name)))
            for name in ("intake", "tracker", "open311", "portal")
        }
        upstreams["router"] = f"http://127.0.0.1:{free_port()}"  # down
        yield stack.enter_context(serving(Gateway(upstreams)))


def test_routes_longest_prefix_first_with_the_portal_last():
    table = routes({"portal": "p", "open311": "o", "tracker": "t"})
    assert [(r.prefix, r.upstream, r.strip) for r in table] == [
        ("/api/open311", "o", True),
        ("/api/tracker", "t", True),
        ("/api/portal", "p", True),
        ("/open311", "o", False),
        ("", "p", False),
    ]
    assert not table[1].matches("/api/trackers/x")


def test_the_one_port_moves_with_the_services(monkeypatch):
    monkeypatch.delenv("LAPOR_GATEWAY_PORT", raising=False)
    services = installed_services()
    lowest = min(s.port for s in services.values())
    assert gateway_port(services, None) == 8000
    assert gateway_port(services, lowest + 1000) == 9000
    assert gateway_port(services, None, 7000) == 7000
    monkeypatch.setenv("LAPOR_GATEWAY_PORT", "7100")
    assert gateway_port(services, lowest + 1000) == 7100


def test_the_portal_is_in_front_and_apis_under_their_prefix(front):
    r = httpx.get(f"{front}/")
    assert (r.status_code, r.text) == (200, "home of portal")
    r = httpx.get(f"{front}/api/tracker/echo/complaints/7K3MQ?status=received&x=%2F")
    body = r.json()
    assert body["service"] == "tracker"
    assert body["path"] == "/api/tracker/echo/complaints/7K3MQ"  # as the client sees it
    assert body["rest"] == "complaints/7K3MQ"
    assert body["query"] == "status=received&x=%2F"
    assert httpx.get(f"{front}/open311/v2/services.json").json() == [{"service_code": "jalan"}]
    assert httpx.get(f"{front}/api/intake/").text == "home of intake"


def test_headers_and_the_clients_address_reach_the_service(front):
    sent = {
        "Authorization": "Bearer abc.def.ghi",
        "Idempotency-Key": "3f1c2a9e-demo",
        "X-Reporter-Secret": "s3cret",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Prefix": "/evil",
    }
    headers = httpx.get(f"{front}/api/tracker/echo/x", headers=sent).json()["headers"]
    for name in ("Authorization", "Idempotency-Key", "X-Reporter-Secret", "traceparent"):
        assert headers[name.lower()] == sent[name]
    assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert headers["x-forwarded-prefix"] == "/api/tracker"  # ours, never the client's
    assert headers["x-forwarded-host"] == front.removeprefix("http://")
    assert headers["x-forwarded-proto"] == "http"


def test_request_bodies_stream_through(front):
    def chunks():
        for _ in range(64):
            yield b"x" * 4096

    r = httpx.post(f"{front}/api/intake/upload", content=chunks())  # chunked, no length
    assert (r.status_code, r.json()) == (202, {"size": 64 * 4096})
    r = httpx.post(f"{front}/api/intake/upload", content=b"y" * 1000)
    assert r.json() == {"size": 1000}


def test_responses_stream_without_waiting_for_the_end(front):
    RELEASE.clear()
    with httpx.stream("GET", f"{front}/api/tracker/exports/slow.csv", timeout=5) as r:
        assert r.status_code == 200
        chunks = r.iter_bytes()
        assert next(chunks) == b"first\n"  # while the service is still writing
        RELEASE.set()
        assert b"".join(chunks) == b"second\n"


def test_docs_load_their_assets_from_behind_the_prefix(front):
    page = httpx.get(f"{front}/api/tracker/docs").text
    assert "/api/tracker/docs/static/swagger-ui-bundle.js" in page
    assert "/api/tracker/openapi.json" in page
    asset = httpx.get(f"{front}/api/tracker/docs/static/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    spec = httpx.get(f"{front}/api/tracker/openapi.json").json()
    assert spec["servers"] == [{"url": "/api/tracker"}]


def test_a_service_that_is_down_is_a_502_in_the_error_shape(front):
    r = httpx.get(f"{front}/api/router/health/ready")
    assert r.status_code == 502
    assert r.json()["errors"] == [] and "did not answer" in r.json()["detail"]


def test_docs_without_a_proxy_and_a_bad_prefix_stay_at_the_root():
    with serving(api("tracker")) as direct:
        assert '"/docs/static/swagger-ui-bundle.js"' in httpx.get(f"{direct}/docs").text
        page = httpx.get(f"{direct}/docs", headers={"X-Forwarded-Prefix": '/x"><script>'}).text
        assert "<script>/" not in page and '"/docs/static/swagger-ui.css"' in page
