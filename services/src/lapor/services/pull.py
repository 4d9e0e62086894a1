"""Pulling a whole batch from a JetStream pull consumer in one step, with the core client.

nats-py's ``PullSubscription.fetch`` awaits every message of a batch on its own
(``_fetch_n`` calls ``next_msg``, each with its own ``wait_for``): measured at about two
thirds of a rebuild's CPU. A :class:`Puller` sends the same pull request nats-py sends (a
publish to ``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`` with a JSON body and a reply
inbox) and collects what the server delivers with a core subscription on that inbox whose
callback appends each message to a list; the waiting reader wakes up once, when the batch
is complete or the server ends the request with a status:

* ``404 No Messages`` / ``408 Request Timeout``: the request is over (what came is the
  batch, possibly empty);
* ``409`` (``Message Size Exceeds MaxBytes``, ``Consumer Deleted``, ``Exceeded
  MaxWaiting`` ...): over too; with nothing delivered it is raised as :class:`PullError`
  (a reader looping on it would otherwise spin);
* ``100`` (idle heartbeat): ignored;
* anything else: :class:`PullError`.

The messages are nats-py's own ``Msg`` objects (the core client builds them): their
``.metadata`` works and they are acknowledged as fetched ones are.

Each request is nats-py's first one in ``_fetch_n``: ``{"batch": n, "expires": ns,
"no_wait": true}``. Verified on nats-server 2.15: with messages waiting they are delivered
at once (then ``404`` if fewer than ``n``); on a quiet log the request lingers until the
first messages arrive and ends as soon as the consumer is at the end of the stream (a
partial batch, promptly), or with ``408`` at expiry. nats-py's second, lingering request
(without ``no_wait``) would hold a partial batch until the expiry, and ``no_wait`` without
``expires`` was seen to linger with no end when the consumer's ``max_ack_pending`` was
reached: every request here has an expiry.

Bounded in flight: one request per puller at a time. A request the server never ended
(the connection was lost meanwhile) is given up ``GRACE_SECONDS`` after its expiry; a
message that still comes for it is kept, in order, for the next pull rather than dropped
(a consumer without acknowledgements would never send it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

STATUS = "Status"
DESCRIPTION = "Description"
HEARTBEAT = "100"
ENDS_REQUEST = frozenset({"404", "408"})
GRACE_SECONDS = 1.0


class PullError(Exception):
    """The server ended a pull request with a status that is not a plain end of batch."""

    def __init__(self, status: str, description: str) -> None:
        super().__init__(f"pull request ended with {status} {description}".strip())
        self.status, self.description = status, description


class _Request:
    __slots__ = ("done", "reply", "status", "want")

    def __init__(self, reply: str, want: int, done: asyncio.Future[None]) -> None:
        self.reply, self.want, self.done = reply, want, done
        self.status: tuple[str, str] | None = None


class Puller:
    """One reader of one pull consumer: ``await pull(n, wait)`` returns the next batch
    (up to ``n`` messages in delivery order; empty when nothing came within ``wait``).
    Call :meth:`start` first and :meth:`close` at the end; not for concurrent pulls."""

    def __init__(self, nc: NATS, stream: str, consumer: str, *, prefix: str = "$JS.API") -> None:
        self.nc = nc
        self.stream, self.consumer = stream, consumer
        self._next = f"{prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = nc.new_inbox()
        self._sub: Subscription | None = None
        self._token = 0
        self._got: list[Msg] = []
        self._request: _Request | None = None

    @classmethod
    def of(cls, js: JetStreamContext, stream: str, consumer: str) -> Puller:
        """A puller on the connection and API prefix of ``js`` (nats-py keeps both only in
        private attributes; ``nc.jetstream(domain=...)`` and the like are honoured)."""
        return cls(js._nc, stream, consumer, prefix=js._prefix)

    async def start(self) -> Puller:
        # Each request replies to its own subject under the inbox, so that the end status
        # of a request given up cannot end the next one.
        self._sub = await self.nc.subscribe(f"{self._inbox}.*", cb=self._delivered)
        return self

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await sub.unsubscribe()

    async def pull(self, batch: int, wait: float, *, max_bytes: int | None = None) -> list[Msg]:
        """The next batch: up to ``batch`` messages, as soon as the server has any; an
        empty list when none came within ``wait`` seconds."""
        if self._sub is None:
            raise RuntimeError("the puller is not started")
        if batch < 1 or wait <= 0:
            raise ValueError("a pull needs a batch of at least one and a positive wait")
        if self._got:  # late deliveries of a request given up: they come first
            got, self._got = self._got, []
            return got
        self._token += 1
        request = _Request(
            f"{self._inbox}.{self._token}", batch, asyncio.get_running_loop().create_future()
        )
        body: dict[str, object] = {"batch": batch, "expires": int(wait * 1e9), "no_wait": True}
        if max_bytes is not None:
            body["max_bytes"] = max_bytes
        self._request = request
        try:
            await self.nc.publish(self._next, json.dumps(body).encode(), reply=request.reply)
            # asyncio.wait, not wait_for: it neither cancels the future nor loses a
            # cancellation of this task (Python 3.11's wait_for can).
            await asyncio.wait({request.done}, timeout=wait + GRACE_SECONDS)
        finally:
            self._request = None
        got, self._got = self._got, []
        if request.status is not None and not got:
            raise PullError(*request.status)
        return got

    async def _delivered(self, msg: Msg) -> None:
        headers = msg.headers
        status = headers.get(STATUS) if headers else None
        request = self._request
        if not status:
            self._got.append(msg)
            if request is not None and len(self._got) >= request.want:
                _finish(request)
            return
        if request is None or msg.subject != request.reply or status == HEARTBEAT:
            return  # the end of a request given up, or a heartbeat
        if status not in ENDS_REQUEST:
            assert headers is not None
            request.status = (status, headers.get(DESCRIPTION, ""))
        _finish(request)


def _finish(request: _Request) -> None:
    if not request.done.done():
        request.done.set_result(None)
