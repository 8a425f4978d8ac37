"""Decoding register values into the numbers a profile describes (pure).

The bit-level conversion is pymodbus's own (``convert_from_registers``); this module adds the
profile's data types, byte order (ABCD/CDAB/BADC/DCBA), scale, bit fields, and the validity
rules: a value that is not finite, equals the profile's ``nan_value`` or lies outside
``min``..``max`` is *left out* with a reason (unknown is not zero), never published as a number
and never costs the other values of the same read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pymodbus.client.mixin import ModbusClientMixin

from gateway.modbus.profile import REGISTER_WIDTH, ByteOrder, DataType, DeviceProfile, RegisterSpec

RegisterImage = Mapping[tuple[int, int], int]
"""Raw values read from a device, keyed by (function code, address): a 16-bit register for
functions 3/4, 0 or 1 for a coil/discrete input (functions 1/2)."""

_DATATYPE = ModbusClientMixin.DATATYPE
PYMODBUS_TYPE: dict[str, ModbusClientMixin.DATATYPE] = {
    "u16": _DATATYPE.UINT16,
    "s16": _DATATYPE.INT16,
    "u32": _DATATYPE.UINT32,
    "s32": _DATATYPE.INT32,
    "u64": _DATATYPE.UINT64,
    "s64": _DATATYPE.INT64,
    "float32": _DATATYPE.FLOAT32,
    "float64": _DATATYPE.FLOAT64,
    "string": _DATATYPE.STRING,
}
_UNSIGNED: dict[DataType, DataType] = {"s16": "u16", "s32": "u32", "s64": "u64",
                                       "float32": "u32", "float64": "u64"}


@dataclass(frozen=True, slots=True)
class Rejected:
    """A value that was read but is not published: ``reason`` is ``not_finite``,
    ``not_available`` (the profile's ``nan_value``) or ``out_of_range``."""

    field: str
    reason: str
    raw: str


def _swap_bytes(raw: list[int]) -> list[int]:
    return [((w & 0xFF) << 8) | (w >> 8) for w in raw]


def _in_wire_order(profile: DeviceProfile, reg: RegisterSpec, raw: list[int]) -> tuple[list[int],
                                                                                      str]:
    return _ordered(profile.byte_order_of(reg), raw)


def _ordered(order: ByteOrder, raw: list[int]) -> tuple[list[int], str]:
    """``raw`` with bytes swapped as ``order`` says, and the word order for pymodbus:
    ABCD big/no swap, CDAB little/no swap, BADC big/swap, DCBA little/swap."""
    if order in ("BADC", "DCBA"):
        raw = _swap_bytes(raw)
    return raw, "big" if order in ("ABCD", "BADC") else "little"


def width(data_type: DataType, length: int = 1) -> int:
    """Registers a value of ``data_type`` occupies (``length`` for a string)."""
    return length if data_type == "string" else REGISTER_WIDTH[data_type]


def decode_words(data_type: DataType, order: ByteOrder, raw: list[int]) -> int | float | str:
    """The value of ``raw`` registers (address order) read as ``data_type`` in byte order
    ``order``, unscaled: the same conversion profiles use, for ad-hoc access
    (``lykta commission modbus read``). ``bit``/``bool`` give the register's truth value."""
    if data_type in ("bit", "bool"):
        return int(bool(raw[0]))
    words, word_order = _ordered(order, raw)
    if data_type == "string":
        data = b"".join(w.to_bytes(2, "big") for w in words)
        return data.split(b"\0", 1)[0].decode("ascii", errors="replace").strip()
    value = ModbusClientMixin.convert_from_registers(
        words, PYMODBUS_TYPE[data_type], word_order=word_order  # type: ignore[arg-type]
    )
    assert isinstance(value, int | float)
    return value


def encode_words(data_type: DataType, order: ByteOrder, value: float | str,
                 length: int = 1) -> list[int]:
    """The registers that :func:`decode_words` reads back as ``value`` (a string is padded
    with NULs to ``length`` registers). Integers must fit the type (ValueError otherwise)."""
    if data_type in ("bit", "bool"):
        return [1 if value else 0]
    if data_type == "string":
        data = str(value).encode("ascii")[: 2 * length].ljust(2 * length, b"\0")
        words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
        return _swap_bytes(words) if order in ("BADC", "DCBA") else words
    if isinstance(value, str):
        raise ValueError(f"{data_type}: needs a number, not {value!r}")
    if not data_type.startswith("float"):
        if value != int(value):
            raise ValueError(f"{data_type}: {value} is not a whole number")
        value = int(value)
        bits = 16 * REGISTER_WIDTH[data_type]
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if data_type.startswith("s") \
            else (0, (1 << bits) - 1)
        if not lo <= value <= hi:
            raise ValueError(f"{data_type}: {value} is outside {lo}..{hi}")
    words = ModbusClientMixin.convert_to_registers(
        value, PYMODBUS_TYPE[data_type],
        word_order="big" if order in ("ABCD", "BADC") else "little",
    )
    return _swap_bytes(words) if order in ("BADC", "DCBA") else words


def _raw_integer(profile: DeviceProfile, reg: RegisterSpec, raw: list[int]) -> int:
    """The raw bit pattern as an unsigned integer (for comparing with ``nan_value``)."""
    words, word_order = _in_wire_order(profile, reg, raw)
    kind = _UNSIGNED.get(reg.type, reg.type)
    value = ModbusClientMixin.convert_from_registers(
        words, PYMODBUS_TYPE[kind], word_order=word_order  # type: ignore[arg-type]
    )
    assert isinstance(value, int)
    return value


def decode_register(profile: DeviceProfile, reg: RegisterSpec, raw: list[int]) -> float:
    """Scaled value of ``reg`` from its ``raw`` registers (in address order); no validity
    checks (see :func:`decode_checked`)."""
    if len(raw) != reg.count:
        raise ValueError(f"{reg.field}: needs {reg.count} registers, got {len(raw)}")
    if reg.type == "bool":
        return float(bool(raw[0]))
    if reg.type == "bit":
        assert reg.bit is not None
        return float((raw[0] >> reg.bit) & 1)
    if reg.type == "string":
        raise ValueError(f"{reg.field}: a string has no numeric value (use decode_text)")
    words, word_order = _in_wire_order(profile, reg, raw)
    value = ModbusClientMixin.convert_from_registers(
        words, PYMODBUS_TYPE[reg.type], word_order=word_order  # type: ignore[arg-type]
    )
    assert isinstance(value, int | float)
    return float(value) * reg.scale


def decode_text(profile: DeviceProfile, reg: RegisterSpec, raw: list[int]) -> str:
    """The ASCII text of a ``string`` register span (trailing NULs and spaces removed)."""
    return str(decode_words("string", profile.byte_order_of(reg), raw))


def encode_register(profile: DeviceProfile, reg: RegisterSpec, value: float) -> list[int]:
    """The raw registers that decode to ``value`` (the simulator's side of the same rules).
    A non-finite ``value`` of a float type is encoded as that IEEE value (a meter's NaN)."""
    if reg.type == "bool":
        return [1 if value else 0]
    if reg.type == "bit":
        assert reg.bit is not None
        return [(1 << reg.bit) if value else 0]
    if reg.type == "string":
        raise ValueError(f"{reg.field}: encode text with encode_text")
    raw: float = value / reg.scale if math.isfinite(value) else value
    if not reg.type.startswith("float"):
        raw = round(raw)
    order = profile.byte_order_of(reg)
    words = ModbusClientMixin.convert_to_registers(
        raw, PYMODBUS_TYPE[reg.type],
        word_order="big" if order in ("ABCD", "BADC") else "little",
    )
    return _swap_bytes(words) if order in ("BADC", "DCBA") else words


def encode_text(profile: DeviceProfile, reg: RegisterSpec, text: str) -> list[int]:
    """The registers of ``text`` padded with NULs to the field's length."""
    return encode_words("string", profile.byte_order_of(reg), text, reg.count)


def _keys(reg: RegisterSpec) -> list[tuple[int, int]]:
    return [(reg.function, reg.address + i) for i in range(reg.count)]


def decode_checked(profile: DeviceProfile,
                   image: RegisterImage) -> tuple[dict[str, float], list[Rejected]]:
    """Every numeric field whose registers are all in ``image`` and whose value is valid, and
    the fields that were read but rejected (with the reason). Fields of failed reads are
    simply absent."""
    values: dict[str, float] = {}
    rejected: list[Rejected] = []
    for reg in profile.registers:
        if not reg.numeric:
            continue
        keys = _keys(reg)
        if not all(k in image for k in keys):
            continue
        raw = [image[k] for k in keys]
        if reg.nan_value is not None and reg.type not in ("bit", "bool") \
                and _raw_integer(profile, reg, raw) == reg.nan_value:
            rejected.append(Rejected(reg.field, "not_available", hex(reg.nan_value)))
            continue
        value = decode_register(profile, reg, raw)
        if not math.isfinite(value):
            rejected.append(Rejected(reg.field, "not_finite", repr(value)))
            continue
        if (reg.min is not None and value < reg.min) or (reg.max is not None and value > reg.max):
            rejected.append(Rejected(reg.field, "out_of_range", repr(value)))
            continue
        if reg.precision is not None:
            value = round(value, reg.precision)
        values[reg.field] = value
    return values, rejected


def decode_values(profile: DeviceProfile, image: RegisterImage) -> dict[str, float]:
    """The valid numeric fields in ``image`` (see :func:`decode_checked`)."""
    return decode_checked(profile, image)[0]


def decode_texts(profile: DeviceProfile, image: RegisterImage) -> dict[str, str]:
    """Every string field whose registers are all in ``image``."""
    return {reg.field: decode_text(profile, reg, [image[k] for k in _keys(reg)])
            for reg in profile.registers
            if not reg.numeric and all(k in image for k in _keys(reg))}
