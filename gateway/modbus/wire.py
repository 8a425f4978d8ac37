"""Modbus RTU wire time (pure): what a read costs on an RS-485 line.

A read of N registers is an 8-byte request and a (5 + 2N)-byte response, (13 + 2N) characters,
plus the two 3.5-character silences that delimit RTU frames. A character is start bit, data
bits, parity bit (if any) and stop bits: at 9600 baud 8E1, 11 bits = 1.146 ms.
(The standard fixes the silence at 1.75 ms above 19200 baud; these figures use 3.5 characters
throughout, which is the conservative, rate-independent reading.)
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.modbus.planner import REQUEST_OVERHEAD_CHARS, ReadRequest, request_chars


def char_time_s(baudrate: int, parity: str = "N", stopbits: int = 1, bytesize: int = 8) -> float:
    """Seconds one character takes on the line."""
    if parity not in ("N", "E", "O"):
        raise ValueError(f"parity must be N, E or O, not {parity!r}")
    bits = 1 + bytesize + (0 if parity == "N" else 1) + stopbits
    return bits / baudrate


def read_chars(count: int) -> int:
    """Characters (including both silences) of one read of ``count`` registers."""
    return REQUEST_OVERHEAD_CHARS + 2 * count


def plan_chars(requests: Iterable[ReadRequest]) -> int:
    """Characters a whole plan takes on the wire."""
    return sum(request_chars(r.function, r.count) for r in requests)


def minimum_chars(wanted_registers: int, max_registers: int) -> int:
    """The floor for reading ``wanted_registers`` registers if they were all adjacent: the
    fewest transactions the per-request limit allows and not one register more."""
    transactions = -(-wanted_registers // max_registers)
    return transactions * REQUEST_OVERHEAD_CHARS + 2 * wanted_registers
