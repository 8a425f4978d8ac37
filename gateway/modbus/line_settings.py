"""RS-485 line settings (pure): baud rate, data bits, parity, stop bits — which ones a scan
tries, in which order, and how long silence must last before a unit counts as absent.

A factory device keeps its maker's defaults until someone changes them: Eastron's SDM120 and
SDM220 leave the factory at 2400 8N1, the SDM630 and most RS-485 sensors at 9600 8N1, the Modbus
specification's default is 19200 8E1 and a Lykta cabinet line runs 9600 8E1. ``--baud auto``
tries :data:`AUTO_ORDER`, most likely first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.modbus.wire import char_time_s

BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
"""The baud rates a scan accepts."""

# the separator is one of " ", "-", "/", ":" (an unescaped "-" in the class would be the
# range space..slash and let "9600+8N1" or "9600.8N1" through)
_FORMAT = re.compile(r"^(\d+)(?:[ \-/:]?([78])([NEO])([12]))?$")


@dataclass(frozen=True, slots=True)
class LineSettings:
    """How characters go on the wire: ``9600 8E1`` is 9600 baud, 8 data bits, even parity, 1
    stop bit."""

    baudrate: int
    parity: str = "E"
    stopbits: int = 1
    bytesize: int = 8

    def __post_init__(self) -> None:
        if self.baudrate not in BAUD_RATES:
            raise ValueError(f"baud rate {self.baudrate}: use one of "
                             f"{', '.join(map(str, BAUD_RATES))}")
        if self.parity not in ("N", "E", "O"):
            raise ValueError(f"parity {self.parity!r}: use N, E or O")
        if self.stopbits not in (1, 2):
            raise ValueError(f"stop bits {self.stopbits}: use 1 or 2")
        if self.bytesize not in (7, 8):
            raise ValueError(f"data bits {self.bytesize}: use 7 or 8")

    def __str__(self) -> str:
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"

    @classmethod
    def parse(cls, text: str, *, parity: str = "E", stopbits: int = 1) -> LineSettings:
        """``"9600 8N1"``, ``"9600-8N1"`` or ``"9600"`` (then ``parity``/``stopbits``)."""
        m = _FORMAT.match(text.strip().upper())
        if m is None:
            raise ValueError(f"line settings {text!r}: write e.g. 9600 or 9600-8N1")
        if m.group(2) is None:
            return cls(int(m.group(1)), parity, stopbits)
        return cls(int(m.group(1)), m.group(3), int(m.group(4)), int(m.group(2)))

    @property
    def char_s(self) -> float:
        """Seconds one character takes."""
        return char_time_s(self.baudrate, self.parity, self.stopbits, self.bytesize)

    def silence_s(self, turnaround_s: float = 0.08) -> float:
        """How long to wait for an answer before the unit counts as absent: the request (8
        characters) and a short reply (up to 9) on the wire, the 3.5-character frame gaps, and
        the device's turnaround (real meters answer within a few tens of ms)."""
        return round((8 + 9 + 7) * self.char_s + turnaround_s, 3)


def _s(text: str) -> LineSettings:
    return LineSettings.parse(text)


AUTO_ORDER: tuple[LineSettings, ...] = tuple(_s(t) for t in (
    "9600-8N1",    # SDM630, most RS-485 sensors out of the box
    "9600-8E1",    # a Lykta cabinet line
    "2400-8N1",    # SDM120/SDM220 factory setting
    "19200-8E1",   # the Modbus specification's default
    "19200-8N1",
    "4800-8N1",
    "38400-8N1",
    "115200-8N1",
    "9600-8N2",    # "no parity needs two stop bits" devices
    "19200-8N2",
    "2400-8E1",
    "4800-8E1",
    "38400-8E1",
    "115200-8E1",
    "9600-8O1",
    "19200-8O1",
    "2400-8N2",
    "1200-8N1",
))
"""The line settings ``--baud auto`` tries, most likely first."""


def candidates(baud: str, *, parity: str = "E", stopbits: int = 1) -> list[LineSettings]:
    """The settings ``--baud`` names: ``auto`` (:data:`AUTO_ORDER`), or a comma-separated list
    of baud rates (with ``parity``/``stopbits``) and full settings (``2400-8N1``)."""
    if baud.strip().lower() == "auto":
        return list(AUTO_ORDER)
    out: list[LineSettings] = []
    for part in baud.split(","):
        if part.strip():
            s = LineSettings.parse(part, parity=parity, stopbits=stopbits)
            if s not in out:
                out.append(s)
    if not out:
        raise ValueError("--baud: give auto or at least one baud rate")
    return out


def parse_ids(text: str) -> list[int]:
    """Unit ids from ``"1-247"``, ``"1,2,5-9"``; each 1..247 (0 is broadcast: never answers)."""
    ids: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo_s, _, hi_s = part.partition("-")
        try:
            lo, hi = int(lo_s), int(hi_s or lo_s)
        except ValueError:
            raise ValueError(f"--ids {text!r}: write e.g. 1-247 or 1,2,10-20") from None
        if not 1 <= lo <= hi <= 247:
            raise ValueError(f"--ids {part!r}: unit ids are 1..247, low to high")
        ids.extend(i for i in range(lo, hi + 1) if i not in ids)
    if not ids:
        raise ValueError("--ids: no unit ids given")
    return ids
