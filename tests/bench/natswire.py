"""A lean JetStream publisher for filling the benchmark's log fast.

nats-py's ``publish_async`` costs ~60 us of this driver's CPU per message (a semaphore
under ``asyncio.wait_for``, a future and a callback, a reply inbox, the headers encoded
from a dict, then a ``PubAck`` parsed from JSON): the log grew at ~17,000 events/s, one
core busy with the client while nats-server idled. This publisher speaks just enough of
the NATS protocol (``CONNECT``, ``SUB``, ``HPUB``, ``PING``/``PONG``, ``MSG``) to append
prepared messages with a bounded number of acknowledgements outstanding: every publish
asks for the stream's acknowledgement on one reply subject, and the acknowledgements are
counted, not matched (they come back in publish order on one connection); one carrying an
``error`` (or a no-responders status) fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from urllib.parse import unquote, urlsplit

CRLF = b"\r\n"
STALLED_SECONDS = 60


class PublishError(RuntimeError):
    """JetStream refused a message (its first refusal)."""


class LeanPublisher:
    """``async with LeanPublisher(url) as pub: await pub.publish(...)``; at the end
    ``await pub.flush()`` waits for every acknowledgement."""

    def __init__(self, url: str, window: int = 8192, buffer_bytes: int = 256 * 1024) -> None:
        self.url = url
        self.window = window
        self.buffer_bytes = buffer_bytes
        self.sent = 0
        self.acked = 0
        self.error: str | None = None
        self._inbox = f"_INBOX.bench{secrets.token_hex(8)}".encode()
        self._out = bytearray()
        self._room = asyncio.Event()
        self._progress = asyncio.Event()

    async def __aenter__(self) -> LeanPublisher:
        parts = urlsplit(self.url)
        self._reader, self._writer = await asyncio.open_connection(
            parts.hostname or "127.0.0.1", parts.port or 4222, limit=2**20
        )
        info = await self._reader.readline()
        if not info.startswith(b"INFO "):
            raise ConnectionError(f"not a NATS server: {info[:80]!r}")
        connect = {
            "verbose": False,
            "pedantic": False,
            "headers": True,
            "no_responders": True,
            "protocol": 1,
            "lang": "python-bench",
            "version": "0",
        }
        if parts.username:
            connect["user"] = unquote(parts.username)
            connect["pass"] = unquote(parts.password or "")
        self._writer.write(b"CONNECT " + json.dumps(connect).encode() + CRLF + b"PING" + CRLF)
        self._writer.write(b"SUB " + self._inbox + b" 1" + CRLF)
        await self._writer.drain()
        while True:  # the PONG to our PING: the server took CONNECT
            line = await self._reader.readline()
            if line.startswith(b"-ERR") or not line:
                raise ConnectionError(f"NATS refused the connection: {line.strip()!r}")
            if line.startswith(b"PONG"):
                break
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self._task
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def publish(self, subject: bytes, headers: bytes, payload: bytes) -> None:
        """Queue one message: ``headers`` is the whole header block (``NATS/1.0`` line,
        ``Name: value`` lines, blank line). Waits while the window of unacknowledged
        messages is full."""
        self._out += b"HPUB %s %s %d %d\r\n%s%s\r\n" % (
            subject,
            self._inbox,
            len(headers),
            len(headers) + len(payload),
            headers,
            payload,
        )
        self.sent += 1
        if len(self._out) >= self.buffer_bytes:
            await self._send()
        while self.sent - self.acked > self.window:
            if self.error:
                raise PublishError(self.error)
            self._room.clear()
            await self._send()
            try:
                await asyncio.wait_for(self._room.wait(), STALLED_SECONDS)
            except TimeoutError:
                raise PublishError(
                    f"no acknowledgement for {STALLED_SECONDS} s ({self.acked:,} of {self.sent:,})"
                ) from None

    async def flush(self) -> None:
        """Send what is buffered and wait until every message is acknowledged (or one is
        refused, or the connection is lost, or nothing is acknowledged for a minute)."""
        await self._send()
        while self.acked < self.sent and not self.error:
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), STALLED_SECONDS)
            except TimeoutError:
                raise PublishError(
                    f"{self.sent - self.acked:,} of {self.sent:,} messages not acknowledged "
                    f"after {STALLED_SECONDS} s without progress"
                ) from None
        if self.error:
            raise PublishError(self.error)

    async def _send(self) -> None:
        if self._out:
            self._writer.write(bytes(self._out))
            self._out.clear()
        await self._writer.drain()

    def _ack(self, payload: bytes) -> None:
        if b'"error"' in payload and self.error is None:
            self.error = payload.decode(errors="replace")
        self.acked += 1

    async def _read(self) -> None:
        try:
            await self._read_acks()
        except BaseException as e:
            if self.error is None:
                self.error = f"connection lost: {e!r}"
            raise
        finally:
            self._room.set()
            self._progress.set()

    async def _read_acks(self) -> None:
        buf = b""
        need = -1  # bytes of the payload being read (+ CRLF), or -1 for a control line
        status = False  # the payload being read is an HMSG's (a status, not an ack)
        while True:
            chunk = await self._reader.read(2**20)
            if not chunk:
                raise ConnectionError("nats-server closed the connection")
            buf = buf + chunk if buf else chunk
            at = 0
            size = len(buf)
            while True:
                if need >= 0:
                    if size - at < need:
                        break
                    body = buf[at : at + need - 2]
                    at += need
                    need = -1
                    if status:
                        if self.error is None:
                            self.error = body.decode(errors="replace").strip()
                        self.acked += 1
                    else:
                        self._ack(body)
                    continue
                end = buf.find(CRLF, at)
                if end < 0:
                    break
                line = buf[at:end]
                at = end + 2
                if line.startswith(b"MSG "):
                    need = int(line[line.rfind(b" ") + 1 :]) + 2
                    status = False
                elif line.startswith(b"HMSG "):
                    need = int(line[line.rfind(b" ") + 1 :]) + 2
                    status = True
                elif line == b"PING":
                    self._writer.write(b"PONG" + CRLF)
                elif line.startswith(b"-ERR"):
                    self.error = line.decode(errors="replace")
            buf = buf[at:]
            self._progress.set()
            if self.sent - self.acked <= self.window // 2 or self.error:
                self._room.set()
