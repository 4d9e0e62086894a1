"""Every error has one shape, the body size limit holds while streaming, and the OpenAPI of
each service documents the errors with the bodies they really have.

No servers: nothing here gets as far as the broker or the database (``create_service``
connects in its lifespan, which these requests do not run).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from lapor.services.auth import AuthenticatedActor
from lapor.services.runtime import CORRELATION_HEADER, create_service
from lapor.services.settings import Settings

LIMIT = 2048
SETTINGS = Settings(
    nats_url="nats://127.0.0.1:1",
    database_url="postgresql://nowhere/none",
    auth_secret="unit-test-secret",
    max_request_bytes=LIMIT,
    log_format="console",
)


class Note(BaseModel):
    text: str


probe = APIRouter()


@probe.post("/notes")
async def post_note(note: Note) -> dict[str, int]:
    return {"length": len(note.text)}


@probe.get("/boom")
async def boom() -> None:
    raise RuntimeError("a bug")


@probe.get("/teapot")
async def teapot() -> None:
    raise HTTPException(418, "short and stout", headers={"X-Spout": "1"})


@probe.get("/mine")
async def mine(actor: AuthenticatedActor) -> dict[str, str]:
    return {"role": actor.role}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_service("probe", SETTINGS, routers=[probe], database=False)
    # The 500 handler answers, then Starlette re-raises for the server to log: not ours.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as c:
        yield c


def body_error(reason: str) -> dict[str, Any]:
    return {"detail": "invalid request", "errors": [{"field": "body", "reason": reason}]}


JSON = {"content-type": "application/json"}


async def test_a_field_error_names_the_field(client: httpx.AsyncClient) -> None:
    r = await client.post("/notes", json={"text": 5})
    assert r.status_code == 422
    assert r.json() == {
        "detail": "invalid request",
        "errors": [{"field": "text", "reason": "Input should be a valid string"}],
    }


async def test_a_body_that_is_not_json_is_a_422_of_the_body(client: httpx.AsyncClient) -> None:
    r = await client.post("/notes", content=b'{"text": ', headers=JSON)
    assert r.status_code == 422
    body = r.json()
    assert [e["field"] for e in body["errors"]] == ["body"]
    assert body["errors"][0]["reason"].startswith("not valid JSON: ")


async def test_a_body_that_is_not_utf8_is_a_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/notes", content=b'{"text": "\xff\xfe"}', headers=JSON)
    assert (r.status_code, r.json()) == (422, body_error("not UTF-8"))


async def test_a_body_nested_too_deeply_is_a_422(client: httpx.AsyncClient) -> None:
    deep = b"[" * 1000 + b"]" * 1000  # within the size limit, past the parser's depth
    r = await client.post("/notes", content=deep, headers=JSON)
    assert (r.status_code, r.json()) == (422, body_error("nested too deeply"))


async def test_a_body_of_another_type_is_a_422_of_the_body(client: httpx.AsyncClient) -> None:
    r = await client.post("/notes", content=b"text=hello", headers={"content-type": "text/plain"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["body"]


async def test_http_errors_have_the_same_shape(client: httpx.AsyncClient) -> None:
    r = await client.get("/teapot")
    assert (r.status_code, r.json()) == (418, {"detail": "short and stout", "errors": []})
    assert r.headers["X-Spout"] == "1"
    assert (await client.get("/nowhere")).json() == {"detail": "Not Found", "errors": []}
    r = await client.delete("/notes")
    assert (r.status_code, r.json()["errors"]) == (405, [])
    r = await client.get("/mine")
    assert (r.status_code, r.json()["errors"]) == (401, [])
    assert r.headers["WWW-Authenticate"] == "Bearer"


async def test_an_unexpected_error_is_a_500_with_the_correlation_id(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/boom", headers={CORRELATION_HEADER: "trace-me"})
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error", "errors": [], "correlation_id": "trace-me"}
    assert "a bug" not in r.text and "Traceback" not in r.text


TOO_LARGE = {
    "detail": "request body too large",
    "errors": [{"field": "body", "reason": f"larger than {LIMIT} bytes"}],
}


async def test_a_declared_length_over_the_limit_is_refused_at_once(
    client: httpx.AsyncClient,
) -> None:
    note = {"text": "x" * LIMIT}
    r = await client.post("/notes", json=note, headers={CORRELATION_HEADER: "big"})
    assert (r.status_code, r.json()) == (413, TOO_LARGE)
    assert r.headers[CORRELATION_HEADER] == "big"
    # Any route: the limit is the service's, not the body model's.
    r = await client.request("GET", "/teapot", content=b"x" * (LIMIT + 1))
    assert r.status_code == 413


async def test_a_streamed_body_is_counted_while_it_is_read(client: httpx.AsyncClient) -> None:
    chunks_sent = 0

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        nonlocal chunks_sent
        yield b'{"text": "'
        for _ in range(100):
            chunks_sent += 1
            yield b"x" * 512
        yield b'"}'

    r = await client.post("/notes", content=chunks(), headers=JSON)
    assert (r.status_code, r.json()) == (413, TOO_LARGE)
    assert chunks_sent <= LIMIT // 512 + 1  # stopped reading at the limit


async def test_a_body_at_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    text = "x" * (LIMIT - len('{"text": ""}'))
    r = await client.post("/notes", content=f'{{"text": "{text}"}}'.encode(), headers=JSON)
    assert (r.status_code, r.json()) == (200, {"length": len(text)})


# --- the OpenAPI ----------------------------------------------------------------------


def openapi_of(service: str) -> dict[str, Any]:
    from importlib import import_module

    return import_module(f"lapor.{service}.app").create_app(SETTINGS).openapi()


def operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": op
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
    }


def body_schema(response: dict[str, Any]) -> dict[str, Any]:
    return response["content"]["application/json"]["schema"]


ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.mark.parametrize("service", ["intake", "tracker", "analytics"])
def test_every_documented_error_has_its_real_body(service: str) -> None:
    schema = openapi_of(service)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for name, op in operations(schema).items():
        responses = op["responses"]
        assert {"413", "500"} <= set(responses), name
        for code, response in responses.items():
            if int(code) >= 400:
                assert "schema" in response["content"]["application/json"], (name, code)
                if code == "409":
                    continue  # the conflict names the status and what is allowed instead
                if (name, code) == ("GET /health/ready", "503"):
                    # A probe's answer: which dependency is down, in the readiness shape.
                    assert body_schema(response) == {"$ref": "#/components/schemas/Readiness"}
                    continue
                assert body_schema(response) == ERROR_BODY, (name, code)


def test_routes_document_what_their_dependencies_answer() -> None:
    ops = operations(openapi_of("tracker"))
    assert {"401", "403", "503"} <= set(ops["GET /admin/complaints"]["responses"])
    assert "401" not in ops["GET /complaints"]["responses"]  # public
    reporter = ops["POST /complaints/{tracking_id}/confirmation"]["responses"]
    assert "401" not in reporter and {"403", "503"} <= set(reporter)
    conflict = body_schema(ops["POST /complaints/{tracking_id}/hold"]["responses"]["409"])
    assert conflict == {"$ref": "#/components/schemas/Conflict"}
    assert "422" not in ops["GET /health/live"]["responses"]  # takes nothing to be wrong


def test_the_error_body_schema_matches_what_is_sent() -> None:
    schema = openapi_of("intake")["components"]["schemas"]["ErrorBody"]
    assert schema["required"] == ["detail", "errors"]
    assert set(schema["properties"]) == {"detail", "errors", "correlation_id"}
