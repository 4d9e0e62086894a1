"""One shape for every error a service answers, the request size limit, and an OpenAPI
that documents both.

Every error body is ``{"detail": "...", "errors": [{"field": "...", "reason": "..."}]}``:
``errors`` names each bad input on a ``422`` (and the body on a ``413``) and is empty
otherwise; a ``500`` adds the ``correlation_id`` to quote. The input itself is never echoed
(it may hold personal data). Some routes document a richer body of their own (the
tracker's ``409`` adds the complaint's status and allowed actions).

A body that cannot be parsed at all (not JSON, not UTF-8, nested deeper than the parser
goes) is a ``422`` with field ``body``, like any other invalid input; FastAPI would answer
the last two with a bare ``400``: the client sent something wrong either way, and one
status lets it handle all of it in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lapor.services.auth import auth_secret_of, authenticated

log = structlog.get_logger(__name__)

INVALID = "invalid request"


class FieldError(BaseModel):
    field: str = Field(
        description="The input: a dotted body path (location.lat), a parameter "
        "or header name, or `body` for the body as a whole"
    )
    reason: str


class ErrorBody(BaseModel):
    """What every error answers (the OpenAPI names it for each status a route can give)."""

    detail: str
    errors: list[FieldError] = Field(description="Each bad input (422, 413); empty otherwise")
    correlation_id: str | None = Field(
        default=None, description="On a 500: quote it, the logs of the request carry it"
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {
        "model": ErrorBody,
        "description": "The body is larger than LAPOR_MAX_REQUEST_BYTES (a multipart body "
        "with files, where a route takes them: than the complaint and its files may be)",
    },
    500: {"model": ErrorBody, "description": "Unexpected error; quote its correlation_id"},
}
"""The errors every route can give (``include_router(..., responses=ERROR_RESPONSES)``)."""

BEARER_RESPONSES: dict[int, str] = {
    401: "No bearer token, or an invalid or expired one",
    403: "The token's role or unit may not do this",
    503: "Authentication is not configured (no LAPOR_AUTH_SECRET)",
}
"""What a route that takes an officer's or admin's token can answer besides its own."""
SECRET_RESPONSES: dict[int, str] = {503: BEARER_RESPONSES[503]}
"""What a route that checks a reporter secret can answer besides its own."""


def error_body(detail: str, errors: list[dict[str, str]] | None = None, **extra: Any) -> dict:
    return {"detail": detail, "errors": errors or [], **extra}


def invalid(field: str, reason: str, where: str = "query") -> RequestValidationError:
    """A 422 naming one input, for checks a type annotation cannot express:
    ``raise invalid("as_of", "must be in the past")``."""
    return RequestValidationError([{"loc": (where, field), "msg": reason, "type": "value_error"}])


# --- the request size limit --------------------------------------------------------------


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "request body too large")
        self.field_errors = [{"field": "body", "reason": f"larger than {limit} bytes"}]


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is refused with ``413``.

    A declared ``Content-Length`` over the limit is refused before the app runs; a body
    without one (chunked) is counted while the app reads it, and reading past the limit
    raises ``BodyTooLarge``, so the app stops within one chunk of the limit. Plain
    ASGI, like ``Correlation``: ``@app.middleware`` would cost throughput on every request.
    """

    def __init__(self, app: ASGIApp, limit: int, multipart_limit: int | None = None) -> None:
        self.app = app
        self.limit = limit
        self.multipart_limit = multipart_limit
        """A larger limit for ``multipart/form-data`` bodies (files), where a service
        takes them; ``None``: the one limit for every body."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.limit
        if self.multipart_limit is not None and headers.get("content-type", "").lower().startswith(
            "multipart/form-data"
        ):
            limit = self.multipart_limit
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            # Normally the exception handler answers it; this is for a read outside its reach.
            if started:
                raise
            await _too_large(limit)(scope, receive, send)


def _too_large(limit: int) -> JSONResponse:
    exc = BodyTooLarge(limit)
    return JSONResponse(error_body(exc.detail, exc.field_errors), status_code=413)


# --- the handlers ------------------------------------------------------------------------


def install_error_handlers(app: FastAPI) -> None:
    """Every error answers ``ErrorBody``; nothing answers a traceback."""
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [field_error(e) for e in exc.errors()]
    return JSONResponse(error_body(INVALID, errors), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        # FastAPI's answer to a body json.loads could not even start on (see the docstring).
        errors = [{"field": "body", "reason": _unparsable(exc.__cause__)}]
        return JSONResponse(error_body(INVALID, errors), status_code=422)
    errors = getattr(exc, "field_errors", None)
    return JSONResponse(
        error_body(str(exc.detail), errors), status_code=exc.status_code, headers=exc.headers
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", path=request.url.path)
    correlation_id = getattr(request.state, "correlation_id", None)
    return JSONResponse(
        error_body("internal error", correlation_id=correlation_id), status_code=500
    )


def _unparsable(cause: BaseException) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return "not UTF-8"
    if isinstance(cause, RecursionError):
        return "nested too deeply"
    return "not valid JSON"


def field_error(error: Mapping[str, Any]) -> dict[str, str]:
    """A pydantic/FastAPI error as ``{field, reason}``."""
    if error.get("type") == "json_invalid":
        # FastAPI puts the character position where the field would be.
        position = error["loc"][-1]
        problem = (error.get("ctx") or {}).get("error", "")
        return {"field": "body", "reason": f"not valid JSON: {problem} (character {position})"}
    return {"field": _field(error["loc"]), "reason": error["msg"]}


def _field(loc: tuple) -> str:
    """``("body", "location", "lat")`` -> ``location.lat``; the request part is dropped
    (the body as a whole is ``body``)."""
    if loc == ("body",):
        return "body"
    parts = loc[1:] if loc and loc[0] in ("body", "header", "query", "path") else loc
    return ".".join(str(p) for p in parts)


# --- the OpenAPI -------------------------------------------------------------------------


def document_errors(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI tell the truth about errors:

    * a ``422`` is ``ErrorBody``, not FastAPI's ``HTTPValidationError``;
    * an error status a route declares without a body (``{"description": ...}``) has
      ``ErrorBody``, since that is what every ``HTTPException`` answers;
    * a route that takes a bearer token (``authenticated``) or a reporter's secret
      (``auth_secret_of``) documents what those answer (``BEARER_RESPONSES``).
    """
    generate = app.openapi
    amended: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = generate()  # cached by FastAPI until the routes change: amend each once
        if not amended or amended[0] is not schema:
            _amend(schema, app)
            amended[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _amend(schema: dict[str, Any], app: FastAPI) -> None:
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    # Routers are included lazily (FastAPI 0.16x): their routes are reached through contexts.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        implied = {**SECRET_RESPONSES} if _depends_on(route.dependant, auth_secret_of) else {}
        if _depends_on(route.dependant, authenticated):
            implied.update(BEARER_RESPONSES)
        for method in route.methods:
            responses = schema["paths"][route.path_format][method.lower()]["responses"]
            for code, description in implied.items():
                responses.setdefault(str(code), {"description": description})
            for code, response in responses.items():
                is_error = code.isdigit() and int(code) >= 400
                if is_error and (code == "422" or "content" not in response):
                    response["content"] = {"application/json": {"schema": ref}}
                if code == "422" and response.get("description") == "Validation Error":
                    response["description"] = "Invalid input: each bad field and why"


def _depends_on(dependant: Dependant, call: Any) -> bool:
    return any(d.call is call for d in _all_dependencies(dependant))


def _all_dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _all_dependencies(sub)
