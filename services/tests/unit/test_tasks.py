"""A background task is stopped for certain, even one that lost its first cancellation
(as ``asyncio.wait_for`` on Python 3.11 loses one that arrives as the awaited completes)."""

from __future__ import annotations

import asyncio

from lapor.services.tasks import cancel_and_wait


async def test_a_task_that_lost_its_cancellation_is_cancelled_again():
    lost = asyncio.Event()

    async def goes_on_after_a_lost_cancellation() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            lost.set()  # swallowed, as the race would
        await asyncio.sleep(60)

    task = asyncio.create_task(goes_on_after_a_lost_cancellation())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task), timeout=5)
    assert lost.is_set() and task.cancelled()


async def test_a_task_that_ended_with_an_error_or_none_at_all():
    async def fails() -> None:
        raise RuntimeError("ended on its own")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await cancel_and_wait(task)  # its error is not raised again here
    await cancel_and_wait(None)
