"""A lean HTTP/1.1 keep-alive client for driving intake.

httpx.AsyncClient spends about 3 ms of CPU per request here at 1 connection and about
9 ms at 64 (its connection pool), so on a 2-core machine it, not the service, would set
the figure: it reached ~110 requests/s while intake sat half idle. This client writes a
prepared request on a persistent connection and reads the status line, the headers and
a Content-Length body, nothing more (~0.1 ms of CPU a request). It speaks just enough
HTTP/1.1 for uvicorn's answers to ``POST /complaints``.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit


class Response:
    __slots__ = ("body", "status_code")

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    def json(self) -> dict:
        return json.loads(self.body)


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, head: bytes, body: bytes) -> Response:
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        close = False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        data = await self.reader.readexactly(length) if length else b""
        if close:
            self.writer.close()
            raise ConnectionResetError("server closed the connection")
        return Response(status, data)

    def close(self) -> None:
        self.writer.close()


class LeanClient:
    """A pool of persistent connections to one host; ``post`` borrows one."""

    def __init__(self, base_url: str, connections: int) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.size = connections
        self._idle: asyncio.Queue[Connection | None] = asyncio.Queue()
        for _ in range(connections):
            self._idle.put_nowait(None)  # opened on first use

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            if conn is not None:
                conn.close()

    async def post(self, path: str, content: bytes, headers: dict[str, str]) -> Response:
        head = [f"POST {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"content-length: {len(content)}")
        raw_head = ("\r\n".join(head) + "\r\n\r\n").encode()
        conn = await self._idle.get()
        try:
            if conn is not None:
                try:
                    response = await conn.request(raw_head, content)
                    self._idle.put_nowait(conn)
                    return response
                except (ConnectionError, asyncio.IncompleteReadError):
                    # The server closed a kept-alive connection (uvicorn does after 5 s
                    # idle) before reading: send it again on a new one (the request
                    # carries an Idempotency-Key, so even a processed one is not doubled).
                    conn.close()
            conn = Connection(*await asyncio.open_connection(self.host, self.port))
            response = await conn.request(raw_head, content)
        except BaseException:
            if conn is not None:
                conn.close()
            self._idle.put_nowait(None)
            raise
        self._idle.put_nowait(conn)
        return response
