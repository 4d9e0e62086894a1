"""Stopping a background task for certain.

On Python 3.11, ``asyncio.wait_for`` loses a cancellation that arrives just as the awaited
thing completes (fixed in 3.12); nats-py awaits through it when it subscribes, fetches and
requests. A task cancelled at that moment carries on, and whoever awaits it waits for ever
(seen: a router's rules watcher cancelled while it was still subscribing, and the service
never stopped). So the task is cancelled again until it is done.
"""

from __future__ import annotations

import asyncio

AGAIN_AFTER_SECONDS = 0.5


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling it again while it runs on."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=AGAIN_AFTER_SECONDS)
    if not task.cancelled():
        task.exception()  # retrieved: an error it ended with while stopping is not news
