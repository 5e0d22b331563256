"""Waiting that shutdown can always interrupt."""

import asyncio
import contextlib


async def woken_or_after(event: asyncio.Event, seconds: float) -> None:
    """Wait until `event` is set or `seconds` have passed, then clear it.

    `asyncio.timeout`, not `asyncio.wait_for`: on Python 3.11 the latter returns normally when
    the event is set just as the task is cancelled, swallowing the cancellation, and a loop
    built on it never stops.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    event.clear()
