"""The daemon's loops wait for their event or their interval, whichever comes first."""

from __future__ import annotations

import asyncio
import time

from maild.daemon import woken


def test_an_event_set_already_returns_without_waiting() -> None:
    async def scenario() -> float:
        event = asyncio.Event()
        event.set()
        began = time.monotonic()
        await woken(event, 5.0)
        return time.monotonic() - began

    assert asyncio.run(scenario()) < 0.1


def test_an_event_set_later_ends_the_wait_and_an_unset_one_ends_with_the_interval() -> None:
    async def scenario() -> tuple[float, float]:
        event = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, event.set)
        began = time.monotonic()
        await woken(event, 5.0)
        set_later = time.monotonic() - began
        began = time.monotonic()
        await woken(asyncio.Event(), 0.1)
        return set_later, time.monotonic() - began

    set_later, interval = asyncio.run(scenario())
    assert 0.04 < set_later < 2.0
    assert 0.09 < interval < 2.0
