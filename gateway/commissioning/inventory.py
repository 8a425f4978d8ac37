"""What each bus unit is (pure sequences): D4i luminaire information, device types, firmware,
control device instances and their event scheme.

Memory is read in contiguous runs (one DTR1/DTR0 set-up, then READ MEMORY LOCATION, which
advances DTR0 itself) and decoded with python-dali's memory value classes
(``MemoryValue.from_list``), so the decoding is the library's, and the bus time is the least
that returns these values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dali import address as dali_address
from dali.device import general as dev
from dali.device.occupancy import QueryReportTimer, SetReportTimer
from dali.device.sequences import SetEventSchemes
from dali.exceptions import DALISequenceError
from dali.gear import general as gear
from dali.memory import info, oem
from dali.memory.location import FlagValue, MemoryValue
from dali.sequences import QueryDeviceTypes

from gateway.commissioning.addressing import Sequence, answer

LUMINAIRE_INFO: dict[str, type[MemoryValue]] = {
    "gtin": oem.ManufacturerGTIN,
    "luminaire_id": oem.LuminaireID,
    "year": oem.YearOfManufacture,
    "week": oem.WeekOfManufacture,
    "rated_power_w": oem.InputPowerNominal,
    "light_output_lm": oem.LightOutputNominal,
}
"""D4i luminaire information (memory bank 1, DiiA Part 251) the report carries."""

BANK1_RUNS = ((0x03, 0x16), (0x1D, 0x1F))
"""Bank 1 locations read: GTIN .. nominal input power, then nominal light output."""

INSTANCE_TYPES = {1: "push_button", 2: "absolute_input", 3: "occupancy", 4: "light",
                  5: "colour", 6: "general_purpose"}
"""Part 103 instance types (Parts 301-306) by number."""


def read_runs(short: int, bank: int, runs: Iterable[tuple[int, int]], *,
              device: bool = False) -> Sequence:
    """Read memory ``bank`` locations ``start..end`` (inclusive) for each run; returns a list
    indexed by location (None where not read or not implemented). Stops at the first location
    that gets no answer: the bank (or the rest of it) is not implemented."""
    mod: Any = dev if device else gear
    addr = dali_address.DeviceShort(short) if device else dali_address.GearShort(short)
    contents: list[int | None] = [None] * 256
    yield mod.DTR1(bank)
    for start, end in runs:
        yield mod.DTR0(start)
        for location in range(start, end + 1):
            r = yield mod.ReadMemoryLocation(addr)
            if r is None or r.raw_value is None or r.raw_value.error:
                return contents
            contents[location] = r.raw_value.as_integer
    return contents


def _value(cls: type[MemoryValue], contents: list[int | None]) -> Any:
    try:
        value = cls.from_list(contents)
    except Exception:  # noqa: BLE001 - a location missing or a malformed value: unknown
        return None
    if isinstance(value, FlagValue):
        return None  # MASK / invalid: the luminaire does not say
    return value


def luminaire_info(short: int) -> Sequence:
    """D4i luminaire information of gear ``short`` from memory bank 1 (empty dict without
    bank 1), plus its GTIN and firmware version from bank 0."""
    bank0 = yield from read_runs(short, 0, [(0x03, 0x0A)])
    out: dict[str, Any] = {}
    firmware = _value(info.FirmwareVersion, bank0)
    if firmware is not None:
        out["firmware"] = str(firmware)
    gtin = _value(info.GTIN, bank0)
    if gtin is not None:
        out["gear_gtin"] = int(gtin)
    bank1 = yield from read_runs(short, 1, BANK1_RUNS)
    for name, cls in LUMINAIRE_INFO.items():
        value = _value(cls, bank1)
        if value is not None:
            out[name] = value if isinstance(value, int | float | str) else str(value)
    return out


def device_types(short: int) -> Sequence:
    """The Part 2xx device types of gear ``short`` (python-dali's QueryDeviceTypes)."""
    try:
        return (yield from QueryDeviceTypes(dali_address.GearShort(short)))
    except DALISequenceError:
        return []


REPORT_TIMER_S = 30
"""The report timer (IEC 62386-303 tReport) set on every occupancy instance: a vacant sensor
repeats "nobody here" this often, so the gateway tells an empty street from a dead sensor
(adaptive classes need a sign of life within the window, minutes)."""


def control_device_info(short: int, *, scheme: dev.EventScheme = dev.EventScheme.device_instance
                        ) -> Sequence:
    """A DALI-2 control device's instances (type, event scheme set to ``scheme`` so that every
    event names its device and instance; an occupancy instance's report timer set to
    :data:`REPORT_TIMER_S`) and its firmware. Returns a dict."""
    device = dali_address.DeviceShort(short)
    r = yield dev.QueryNumberOfInstances(device)
    count = r.raw_value.as_integer if answer(r) == "one" else 0
    instances = []
    for i in range(min(count, 32)):
        number = dali_address.InstanceNumber(i)
        t = yield dev.QueryInstanceType(device, number)
        kind = t.raw_value.as_integer if answer(t) == "one" else None
        set_to = yield from SetEventSchemes(device, number, scheme)
        entry: dict[str, Any] = {
            "instance": i,
            "type": INSTANCE_TYPES.get(kind, str(kind)) if kind is not None else None,
            "event_scheme": set_to.value.name if set_to is not None
            and answer(set_to) == "one" else None,
        }
        if kind == 3:  # occupancy: periodic reports while vacant (read back: None if ignored)
            yield dev.DTR0(REPORT_TIMER_S)
            yield SetReportTimer(device, number)
            got = yield QueryReportTimer(device, number)
            entry["report_timer_s"] = got.raw_value.as_integer if answer(got) == "one" else None
        instances.append(entry)
    bank0 = yield from read_runs(short, 0, [(0x03, 0x0A)], device=True)
    out: dict[str, Any] = {"instances": instances}
    firmware = _value(info.FirmwareVersion, bank0)
    if firmware is not None:
        out["firmware"] = str(firmware)
    return out
