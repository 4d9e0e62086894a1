"""The one address of ``lapor run``: a small reverse proxy in front of the services, routing
the way the Ingress does in Kubernetes (development only; a cluster has its Ingress).

* ``/api/<name>/…`` → service ``name``, the prefix stripped and named in
  ``X-Forwarded-Prefix`` (the services' ``/docs`` build their URLs from it);
* ``/open311/…`` → open311, its paths kept;
* everything else → the portal.

Bodies stream both ways (an export is never held whole), every end-to-end header passes
(``Authorization``, ``Idempotency-Key``, ``X-Reporter-Secret``, ``traceparent``, …), and the
client's address is appended to ``X-Forwarded-For``. A service that does not answer is a
``502`` in the services' error shape.

``python -m lapor.devtools.gateway --port 8000 --upstream intake=http://127.0.0.1:8080 …``
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import httpx
from starlette.types import Message, Receive, Scope, Send

API_PREFIX = "/api"
KEPT = {"open311": "/open311"}
"""Services whose own paths already carry a prefix: mounted there, the path unchanged."""
FRONT = "portal"
"""The service at ``/``."""

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
SET_BY_US = {"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-prefix"}
PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")


@dataclass(frozen=True)
class Route:
    prefix: str
    """Matches the path equal to it or under it (``""``: everything)."""
    upstream: str
    strip: bool

    def matches(self, path: str) -> bool:
        return not self.prefix or path == self.prefix or path.startswith(self.prefix + "/")


def routes(upstreams: Mapping[str, str]) -> list[Route]:
    """Every service under ``/api/<name>``; open311 also at its own ``/open311``; the portal
    at ``/``. Longest prefix first."""
    found = [Route(f"{API_PREFIX}/{name}", url, strip=True) for name, url in upstreams.items()]
    found += [Route(KEPT[n], url, strip=False) for n, url in upstreams.items() if n in KEPT]
    if FRONT in upstreams:
        found.append(Route("", upstreams[FRONT], strip=False))
    return sorted(found, key=lambda r: len(r.prefix), reverse=True)


class Gateway:
    """The ASGI app. ``transport`` is for tests (the upstreams in process)."""

    def __init__(
        self,
        upstreams: Mapping[str, str],
        transport: httpx.AsyncBaseTransport | None = None,
        read_timeout: float | None = 600.0,
    ) -> None:
        self.routes = routes(upstreams)
        self._transport = transport
        self._timeout = httpx.Timeout(10.0, read=read_timeout)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=self._timeout,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._proxy(scope, receive, send)
        # websockets: none of the services has one

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _route(self, path: str) -> Route | None:
        return next((r for r in self.routes if r.matches(path)), None)

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        route = self._route(path)
        if route is None:
            await _error(send, 404, f"nothing is served at {path}")
            return
        raw_path: bytes = scope.get("raw_path") or path.encode()
        upstream_path = raw_path
        if route.strip:
            upstream_path = raw_path[len(route.prefix) :] or b"/"
        url = route.upstream.rstrip("/") + upstream_path.decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        request = self.client.build_request(
            scope["method"],
            url,
            headers=_request_headers(scope, route),
            content=_body(receive) if _has_body(scope) else None,
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as e:
            await _error(send, 502, f"{route.upstream} did not answer: {type(e).__name__}")
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k, v)
                        for k, v in response.headers.raw
                        if k.decode("latin-1").lower() not in HOP_BY_HOP
                    ],
                }
            )
            try:
                async for chunk in response.aiter_raw():
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError:
                pass  # the upstream broke off mid-body: end ours (the client sees it short)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


def _has_body(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key in (b"content-length", b"transfer-encoding"):
            return value != b"0"
    return scope["method"] not in ("GET", "HEAD", "DELETE", "OPTIONS")


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    """The client's body as it arrives, never whole in memory."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _request_headers(scope: Scope, route: Route) -> list[tuple[bytes, bytes]]:
    """The client's headers without hop-by-hop ones (and without ``X-Forwarded-*`` but its
    ``For`` chain, which we extend), plus where the request came from."""
    headers: list[tuple[bytes, bytes]] = []
    forwarded_for: list[str] = []
    host = ""
    for key, value in scope["headers"]:
        name = key.decode("latin-1").lower()
        if name == "host":
            host = value.decode("latin-1")
        if name == "x-forwarded-for":
            forwarded_for.append(value.decode("latin-1"))
        if name in HOP_BY_HOP or name in SET_BY_US:
            continue
        headers.append((key, value))
    client = scope.get("client")
    if client:
        forwarded_for.append(client[0])
    if forwarded_for:
        headers.append((b"x-forwarded-for", ", ".join(forwarded_for).encode("latin-1")))
    if host:
        headers.append((b"x-forwarded-host", host.encode("latin-1")))
    headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode("latin-1")))
    if route.strip and PREFIX.match(route.prefix):
        headers.append((b"x-forwarded-prefix", route.prefix.encode("latin-1")))
    return headers


async def _error(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail, "errors": []}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lapor-gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--upstream", action="append", default=[], metavar="NAME=URL", help="one per service"
    )
    args = parser.parse_args(argv)
    upstreams = dict(given.split("=", 1) for given in args.upstream)

    import uvicorn

    uvicorn.run(
        Gateway(upstreams),
        host=args.host,
        port=args.port,
        # We append the peer to X-Forwarded-For ourselves; uvicorn must not replace it.
        proxy_headers=False,
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
