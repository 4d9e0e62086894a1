"""Staying connected to NATS through its restarts.

nats-py gives up after 60 reconnect attempts two seconds apart: a service whose NATS was
away for more than two minutes (a node drained, a pod rescheduled) would stay
disconnected for ever, answering 503 until someone restarted it. A service reconnects for
ever instead, at most ``RECONNECT_WAIT_SECONDS`` apart, and says in its log when it lost
and regained the connection.

PostgreSQL needs no such option: the asyncpg pool replaces a connection it finds closed
when it is next acquired (see ``tests/test_reconnect.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from nats.aio.client import Client

log = structlog.get_logger(__name__)

RECONNECT_WAIT_SECONDS = 1
"""Between attempts to reach a NATS that is away: short, since on loopback or in a
cluster an attempt costs next to nothing."""

PING_INTERVAL_SECONDS = 10
MAX_OUTSTANDING_PINGS = 3
"""A server that vanished without closing the connection (a node lost, not a process
stopped) is noticed within half a minute, not nats-py's default four minutes."""


def nats_reconnect_options(service: str, client: Callable[[], Client]) -> dict[str, Any]:
    """Options for ``NatsBroker`` (nats-py's ``connect``): reconnect for ever, log the
    disconnects and the reconnects. ``client`` gives the connection once it exists."""

    async def disconnected() -> None:
        if client().is_closed:
            return  # our own shutdown, not a loss
        log.warning("nats connection lost; reconnecting", service=service)

    async def reconnected() -> None:
        log.info("nats connection back", service=service)

    return {
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": RECONNECT_WAIT_SECONDS,
        "ping_interval": PING_INTERVAL_SECONDS,
        "max_outstanding_pings": MAX_OUTSTANDING_PINGS,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
    }
