"""Decoding register values into the numbers a profile describes (pure).

The bit-level conversion is pymodbus's own (``convert_from_registers``); this module adds the
profile's data types, word order and scale, and tolerates partial reads.
"""

from __future__ import annotations

from collections.abc import Mapping

from pymodbus.client.mixin import ModbusClientMixin

from gateway.modbus.profile import DataType, DeviceProfile, RegisterSpec

RegisterImage = Mapping[tuple[int, int], int]
"""Raw register values read from a device, keyed by (function code, address)."""

_DATATYPE = ModbusClientMixin.DATATYPE
PYMODBUS_TYPE: dict[DataType, ModbusClientMixin.DATATYPE] = {
    "u16": _DATATYPE.UINT16,
    "s16": _DATATYPE.INT16,
    "u32": _DATATYPE.UINT32,
    "s32": _DATATYPE.INT32,
    "float32": _DATATYPE.FLOAT32,
}


def decode_register(profile: DeviceProfile, reg: RegisterSpec, raw: list[int]) -> float:
    """Scaled value of ``reg`` from its ``raw`` registers (in address order)."""
    if len(raw) != reg.count:
        raise ValueError(f"{reg.field}: needs {reg.count} registers, got {len(raw)}")
    value = ModbusClientMixin.convert_from_registers(
        raw, PYMODBUS_TYPE[reg.type], word_order=profile.word_order_of(reg)
    )
    assert isinstance(value, int | float)
    return float(value) * reg.scale


def encode_register(profile: DeviceProfile, reg: RegisterSpec, value: float) -> list[int]:
    """The raw registers that decode to ``value`` (the simulator's side of the same rules)."""
    raw = value / reg.scale if reg.scale else value
    if reg.type != "float32":
        raw = round(raw)
    return ModbusClientMixin.convert_to_registers(
        raw, PYMODBUS_TYPE[reg.type], word_order=profile.word_order_of(reg)
    )


def decode_values(profile: DeviceProfile, image: RegisterImage) -> dict[str, float]:
    """Every field whose registers are all in ``image``; fields of failed reads are left out."""
    values: dict[str, float] = {}
    for reg in profile.registers:
        keys = [(reg.function, reg.address + i) for i in range(reg.count)]
        if all(k in image for k in keys):
            values[reg.field] = decode_register(profile, reg, [image[k] for k in keys])
    return values
