"""The Modbus read planner (pure): from the registers a profile wants to the fewest read
transactions that respect the device's limits.

Rules every plan obeys (tested with hypothesis):

- every wanted register is read, with the function code it was asked for;
- no request reads more than ``max_registers`` registers;
- no request reads a register of a forbidden range;
- two wanted spans are joined into one request only if at most ``max_gap`` unwanted registers
  lie between them (gap fill, like Telegraf's ``max_insert``);
- by default (``objective="wire"``) among all plans that obey these rules the planner returns
  one with the least RTU wire time, and among those the fewest transactions: each transaction
  costs its ``13 + 2N`` characters (``13 + ceil(N/8)`` for coils and discrete inputs) plus two
  3.5-character silences, i.e. 10 registers' worth of overhead. Exact dynamic programming, not
  a heuristic; the benchmark checks it against a brute force.
- with ``objective="transactions"`` it returns one with the fewest transactions, and among those
  the fewest registers read.

Coils and discrete inputs (functions 1, 2) are planned the same way with bits for registers and
the protocol's 2000-bit limit per read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from gateway.modbus.profile import BIT_FUNCTIONS, MAX_READ_BITS, DeviceProfile, ForbiddenRange

REQUEST_OVERHEAD_CHARS = 13 + 7
"""Characters of one read transaction besides the data: 8 request + 5 response framing bytes,
plus two 3.5-character silences."""


def data_chars(function: int, count: int) -> int:
    """Characters the data of a reply of ``count`` registers (or bits) takes."""
    return -(-count // 8) if function in BIT_FUNCTIONS else 2 * count


def request_chars(function: int, count: int) -> int:
    """Characters (framing, data and both silences) of one read transaction."""
    return REQUEST_OVERHEAD_CHARS + data_chars(function, count)


def limit_for(function: int, max_registers: int) -> int:
    """The most registers (bits for functions 1, 2) one read of ``function`` may take."""
    return MAX_READ_BITS if function in BIT_FUNCTIONS else max_registers


class PlanError(ValueError):
    """The wanted registers cannot be read within the limits (names the registers)."""


@dataclass(frozen=True, slots=True, order=True)
class ReadRequest:
    """One read transaction: ``count`` registers from ``start`` with function ``function``."""

    function: int
    start: int
    count: int

    @property
    def end(self) -> int:
        """The last register read (inclusive)."""
        return self.start + self.count - 1


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """Registers ``start``..``start+count-1`` of ``function`` that must be read together."""

    function: int
    start: int
    count: int

    @property
    def end(self) -> int:
        """The last register (inclusive)."""
        return self.start + self.count - 1


def _units(spans: list[Span]) -> list[Span]:
    """Sorted spans without duplicates and without spans inside another one (those are read
    whenever their container is). What remains has increasing starts *and* ends, so the
    optimal plan groups consecutive units."""
    units: list[Span] = []
    for s in sorted(set(spans), key=lambda s: (s.function, s.start, -s.count)):
        if units and units[-1].function == s.function and s.end <= units[-1].end:
            continue
        units.append(s)
    return units


def _forbidden_hit(
    function: int, start: int, end: int, forbidden: Iterable[ForbiddenRange]
) -> bool:
    return any(f.function == function and start <= f.end and f.start <= end for f in forbidden)


def plan_reads(
    spans: Iterable[Span],
    *,
    max_registers: int,
    max_gap: int,
    forbidden: Iterable[ForbiddenRange] = (),
    objective: Literal["transactions", "wire"] = "wire",
) -> list[ReadRequest]:
    """Plan the reads covering ``spans`` (see the module docstring for the guarantees)."""
    if max_registers < 1:
        raise PlanError(f"max_registers must be at least 1, not {max_registers}")
    forbidden = tuple(forbidden)
    units = _units(list(spans))
    for u in units:
        if u.count > limit_for(u.function, max_registers):
            raise PlanError(
                f"registers {u.start:#06x}..{u.end:#06x} (function {u.function}) "
                f"must be read together but exceed max_registers={max_registers}"
            )
        if _forbidden_hit(u.function, u.start, u.end, forbidden):
            raise PlanError(
                f"registers {u.start:#06x}..{u.end:#06x} (function {u.function}) "
                "lie in a forbidden range"
            )
    n = len(units)
    # best[i]: (cost, next index) for covering units[i:], cost compared as a tuple
    best: list[tuple[tuple[int, int, int], int]] = [((0, 0, 0), n)] * (n + 1)
    for i in range(n - 1, -1, -1):
        first = units[i]
        limit = limit_for(first.function, max_registers)
        choice: tuple[tuple[int, int, int], int] | None = None
        end = first.end
        for j in range(i, n):
            u = units[j]
            if u.function != first.function:
                break
            if j > i:
                if u.start - end - 1 > max_gap:
                    break
                if _forbidden_hit(u.function, end + 1, u.start - 1, forbidden):
                    break
            end = max(end, u.end)
            if end - first.start + 1 > limit:
                break
            rest = best[j + 1][0]
            regs = end - first.start + 1
            chars = request_chars(first.function, regs)
            if objective == "wire":
                cost = (chars + rest[0], 1 + rest[1], regs + rest[2])
            else:
                cost = (1 + rest[0], regs + rest[1], chars + rest[2])
            if choice is None or cost < choice[0]:
                choice = (cost, j + 1)
        assert choice is not None  # a single unit is always feasible (checked above)
        best[i] = choice
    requests: list[ReadRequest] = []
    i = 0
    while i < n:
        nxt = best[i][1]
        start = units[i].start
        end = max(u.end for u in units[i:nxt])
        requests.append(ReadRequest(units[i].function, start, end - start + 1))
        i = nxt
    return requests


def profile_spans(profile: DeviceProfile) -> list[Span]:
    """The register spans a profile wants read."""
    return [Span(r.function, r.address, r.count) for r in profile.registers]


def plan_profile(
    profile: DeviceProfile,
    *,
    max_gap: int | None = None,
    objective: Literal["transactions", "wire"] = "wire",
) -> list[ReadRequest]:
    """Plan the reads for one poll of a device with this profile (``max_gap`` overrides the
    profile's gap-fill threshold)."""
    return plan_reads(
        profile_spans(profile),
        max_registers=profile.max_registers,
        max_gap=profile.max_gap if max_gap is None else max_gap,
        forbidden=profile.forbidden,
        objective=objective,
    )
