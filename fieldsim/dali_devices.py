"""Simulated DALI-2 control devices and D4i luminaire information for the simulated bus.

:class:`SimulatedControlDevice` is a Part 103 control device (24-bit frames, its own short
address space) built on python-dali's fake ``Device``, with occupancy (Part 303) and light
sensor (Part 304) instances, each with its own event scheme. :func:`fill_luminaire_info`
writes a D4i luminaire's memory bank 1 (GTIN, luminaire id, year/week, rated power, light
output) the way a luminaire maker does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dali import address as dali_address
from dali.command import Command
from dali.device.occupancy import QueryReportTimer, SetReportTimer
from dali.frame import Frame
from dali.tests import fakes

__all__ = ["ControlDeviceSpec", "SimulatedControlDevice", "fill_luminaire_info"]


@dataclass(frozen=True, slots=True)
class ControlDeviceSpec:
    """One simulated control device: short address (None = unaddressed), instance types
    (3 occupancy, 4 light sensor) and random address."""

    short_address: int | None = None
    instance_types: tuple[int, ...] = (3, 4)
    random_address: int | None = None


class SimulatedControlDevice(fakes.Device):
    """A DALI-2 input device answering 24-bit commands (python-dali's fake, with its own
    instances and a seeded random address generator)."""

    def __init__(self, spec: ControlDeviceSpec, rng: random.Random) -> None:
        short = None if spec.short_address is None else dali_address.DeviceShort(
            spec.short_address)
        super().__init__(shortaddr=short)
        self._rng = rng
        self._report_timer: dict[int, int] = {}
        # python-dali keeps the instances on the class; every device needs its own
        self._instances = [fakes.Device.Instance(inst_type=t, scheme=0)
                           for t in spec.instance_types]
        if spec.random_address is not None:
            self.randomaddr = Frame(24, spec.random_address)

    @property
    def short_address(self) -> int | None:
        """The short address as a number (None when unaddressed)."""
        return None if self.shortaddr is None else self.shortaddr.address

    def event_schemes(self) -> list[int]:
        """The event scheme of each instance."""
        return [i.scheme for i in self._instances]

    def report_timers(self) -> list[int | None]:
        """The Part 303 report timer (s) of each occupancy instance (None: another type)."""
        return [self._report_timer.get(n, 0) if i.inst_type == 3 else None
                for n, i in enumerate(self._instances)]

    def send(self, cmd: Command) -> int | None:
        """The fake's answer, plus the Part 303 report timer (python-dali's fake lacks it)."""
        instance = getattr(cmd, "instance", None)  # python-dali sets it untyped
        if isinstance(cmd, SetReportTimer | QueryReportTimer) and self.valid_address(cmd) \
                and isinstance(instance, dali_address.InstanceNumber):
            n = instance.value
            if n >= len(self._instances) or self._instances[n].inst_type != 3:
                return None
            if isinstance(cmd, SetReportTimer):
                self._report_timer[n] = self.dtr0
                return None
            return self._report_timer.get(n, 0)
        reply: int | None = super().send(cmd)
        return reply

    def _next_random_address(self) -> int:
        return self._rng.randrange(0, 0x1000000)


def fill_luminaire_info(gear: fakes.Gear, serial: int, *, rated_power_w: float = 40.0,
                        gtin: int = 7350000000017, year: int = 25, week: int = 14,
                        light_output_lm: int = 4800) -> None:
    """Write D4i memory bank 1 of ``gear``: manufacturer GTIN, luminaire id ``serial``,
    year and week of manufacture, nominal input power and light output."""
    contents = gear.memory_banks[1].contents
    for start, value, length in ((0x03, gtin, 6), (0x09, serial, 8), (0x13, year, 1),
                                 (0x14, week, 1), (0x15, round(rated_power_w), 2),
                                 (0x1D, light_output_lm, 3)):
        for i, byte in enumerate(value.to_bytes(length, "big")):
            contents[start + i] = byte
