"""A service's background tasks always stop at shutdown, whatever they were waiting for."""

import asyncio

import pytest

from shared.service import Background
from shared.timing import woken_or_after


async def test_a_wait_woken_just_as_it_is_cancelled_is_cancelled() -> None:
    """Python 3.11's `wait_for` would return here as if woken, and its loop run on."""
    woken = asyncio.Event()
    waiting = asyncio.create_task(woken_or_after(woken, 60))
    await asyncio.sleep(0)  # the task now waits on the event
    woken.set()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_task_that_swallows_its_cancellation_is_still_stopped() -> None:
    cancellations = 0

    async def stubborn() -> None:
        nonlocal cancellations
        while True:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancellations += 1
                if cancellations > 1:
                    raise

    background = Background(stubborn)
    await background.start()
    await asyncio.sleep(0)
    async with asyncio.timeout(30):
        await background.stop()
    assert cancellations == 2
    assert all(task.done() for task in background.tasks)


async def test_tasks_asked_to_start_after_a_stop_do_not_start() -> None:
    """A SIGTERM during startup: the broker finishes starting after shutdown has run."""
    ran = asyncio.Event()

    async def tick() -> None:
        ran.set()

    background = Background(tick)
    await background.stop()
    await background.start()
    await asyncio.sleep(0)
    assert background.tasks == []
    assert not ran.is_set()
