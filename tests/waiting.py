"""Waiting for something to become true in tests against real servers (polling, bounded)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], Awaitable[bool] | bool],
    within_s: float = 20.0,
    what: Callable[[], object] | None = None,
) -> None:
    """Wait until ``check()`` is true (polling); fail the test otherwise, saying ``what()``."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        got = check()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return
        if asyncio.get_running_loop().time() > deadline:
            seen = f": {what()}" if what is not None else ""
            raise AssertionError(f"condition not met within {within_s} s{seen}")
        await asyncio.sleep(0.05)
