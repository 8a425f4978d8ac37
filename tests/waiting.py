"""Waiting for something to become true in tests against real servers (polling, bounded)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool] | bool], within_s: float = 20.0) -> None:
    """Wait until ``check()`` is true (polling); fail the test otherwise."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        got = check()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within_s} s")
        await asyncio.sleep(0.05)
