"""Sets of sequence numbers as coalesced inclusive ranges (the form :class:`Confirm` carries).

Pure functions; both the controller (which coalesces what it stored) and the gateway (which
drops what was confirmed) use them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def coalesce(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """``seqs`` (any order, repeats allowed) as sorted, disjoint, non-adjacent ranges
    ``(first, last)``, inclusive: ``[1, 2, 3, 7]`` -> ``[(1, 3), (7, 7)]``."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def members(ranges: Iterable[tuple[int, int]], *, limit: int | None = None) -> Iterator[int]:
    """Every number in ``ranges``; at most ``limit`` of them (a guard against a range like
    ``[0, 10**18]`` from a broken peer)."""
    n = 0
    for first, last in ranges:
        for s in range(first, last + 1):
            if limit is not None and n >= limit:
                return
            yield s
            n += 1
