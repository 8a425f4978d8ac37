"""DALI bus time: how long a frame occupies the wire (IEC 62386-101 bit timing).

One source of truth for bus-time accounting: the budget scheduler, the planner's cost figures,
the benchmarks and the simulator's optional wire-time emulation all use these numbers.

DALI runs at 1200 bit/s with Manchester coding, so one half-bit ``Te`` is 416.7 µs. A 16-bit
forward frame is 1 start bit + 16 data bits + a 4 Te stop condition = 38 Te = 15.8 ms; a
24-bit frame is 50 Te = 20.8 ms; the 8-bit backward frame is 22 Te = 9.2 ms. With the settling
times between frames this gives the architecture's lower bounds: a command without reply takes
≥ 27.7 ms of bus time, a query ≥ 40.7 ms and a send-twice configuration command ≥ 55.3 ms.
"""

from __future__ import annotations

TE_S = 1 / 2400
"""Half a bit period at 1200 bit/s (Manchester: two half-bits per bit)."""

FORWARD_16_S = 38 * TE_S
"""A 16-bit forward frame on the wire, including the stop condition."""

FORWARD_24_S = 50 * TE_S
"""A 24-bit forward frame (control devices, event messages)."""

BACKWARD_S = 22 * TE_S
"""An 8-bit backward frame."""

COMMAND_S = 0.0277
"""Bus time of a 16-bit command without reply (frame plus settling before the next frame)."""

QUERY_S = 0.0407
"""Bus time of a 16-bit query: forward frame, reply window/backward frame, settling."""

SEND_TWICE_S = 0.0553
"""Bus time of a configuration command sent twice (both frames within 100 ms)."""

SEND_TWICE_WINDOW_S = 0.1
"""The second frame of a send-twice command must arrive within this time of the first."""

_EXTRA_24_S = FORWARD_24_S - FORWARD_16_S


def frame_bus_time(bits: int, *, is_query: bool, send_twice: bool = False) -> float:
    """Seconds of bus time one transaction takes: a ``bits``-bit forward frame (16 or 24),
    a query waits for the backward frame, ``send_twice`` repeats the forward frame."""
    if bits not in (16, 24):
        raise ValueError(f"DALI forward frames have 16 or 24 bits, not {bits}")
    extra = _EXTRA_24_S if bits == 24 else 0.0
    if send_twice:
        return SEND_TWICE_S + 2 * extra
    return (QUERY_S if is_query else COMMAND_S) + extra
