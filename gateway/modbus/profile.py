"""Declarative Modbus device profiles: which registers a device has and how to read them.

A profile is a TOML file (``config/profiles/<name>.toml``); a user adds a device by writing one,
not code. Example::

    name = "Eastron SDM120"
    kind = "meter"                 # meter | presence | lux: which contract message it feeds
    measurement = "energy_meter"   # default InfluxDB measurement of its fields
    max_registers = 80             # the device's limit per read request
    pause_s = 0.05                 # required silence between two requests to this device
    word_order = "big"             # 32-bit values: high word first (default)

    [[forbidden]]                  # never read these (side effects, exception replies)
    function = 4
    start = 0x0200
    end = 0x02FF

    [[registers]]
    field = "voltage_v"
    function = 4                   # 1 coils, 2 discrete inputs, 3 holding, 4 input registers
    address = 0x0000
    type = "float32"               # u16 s16 u32 s32 u64 s64 float32 float64 | bit | bool | string
    order = "ABCD"                 # byte order of multi-register values: ABCD CDAB BADC DCBA
    scale = 1.0                    # value = raw * scale
    nan_value = 0xFFFF             # the raw value the device sends for "not available"
    min = 0.0                      # values outside min..max are implausible: left out, counted
    max = 300.0
    precision = 2                  # decimals published (float noise like 123456.70000000001)
    unit = "V"                     # the field name ends in it: voltage_v (UNIT_SUFFIXES)

``[[settings]]`` lists registers the device is configured or identified through (line
settings, node address, a model code), in the same form as ``[[registers]]``: they are never
polled as readings; ``lykta commission modbus read|write`` and ``scan modbus`` use them.
``identify = { meter_code = "32" }`` says how ``lykta commission scan modbus`` recognises the
device: fields (of ``registers`` or ``settings``) and the value they hold on this model.

``type = "bit"`` takes bit ``bit`` (0 = least significant) of one register; ``type = "bool"`` is
a coil or discrete input (function 1 or 2); ``type = "string"`` spans ``length`` registers of
ASCII (identification only, never published as a reading).

Errors (:class:`ProfileError`) name the file and the key that is wrong.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DataType = Literal[
    "u16", "s16", "u32", "s32", "u64", "s64", "float32", "float64", "bit", "bool", "string"
]
WordOrder = Literal["big", "little"]
ByteOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]
FunctionCode = Literal[1, 2, 3, 4]
DeviceKind = Literal["meter", "presence", "lux"]

REGISTER_WIDTH: dict[str, int] = {
    "u16": 1, "s16": 1, "u32": 2, "s32": 2, "u64": 4, "s64": 4, "float32": 2, "float64": 4,
    "bit": 1, "bool": 1,
}
"""16-bit registers (or, for ``bool``, coils) each fixed-width data type occupies."""

BIT_FUNCTIONS = frozenset({1, 2})
"""Function codes that read single bits (coils, discrete inputs) instead of registers."""

MAX_READ_REGISTERS = 125
"""The Modbus protocol limit for one read of holding/input registers (FC 3/4)."""

MAX_READ_BITS = 2000
"""The Modbus protocol limit for one read of coils/discrete inputs (FC 1/2)."""

UNIT_SUFFIXES: dict[str, str] = {
    "V": "_v", "A": "_a", "W": "_w", "VA": "_va", "var": "_var", "Wh": "_wh", "kWh": "_kwh",
    "Hz": "_hz", "lx": "lux", "°C": "_c", "m": "_m", "km/h": "_kmh", "%": "_pct", "s": "_s",
}
"""How a field with a ``unit`` ends: the unit is in the name (``voltage_l1_v``, ``lux``), so an
InfluxDB field says what it holds (docs/data-model.md)."""


class ProfileError(ValueError):
    """A profile file is unreadable or invalid; the message names the file and key."""


class RegisterSpec(BaseModel):
    """One value the device provides: where it lives and how to turn it into a number."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    address: int = Field(ge=0, le=0xFFFF)
    function: FunctionCode = 4
    type: DataType = "u16"
    word_order: WordOrder | None = None
    order: ByteOrder | None = None
    bit: int | None = Field(default=None, ge=0, le=15)
    length: int | None = Field(default=None, ge=1, le=MAX_READ_REGISTERS)
    scale: float = 1.0
    nan_value: int | None = None
    min: float | None = None
    max: float | None = None
    precision: int | None = Field(default=None, ge=0, le=9)
    unit: str = ""
    measurement: str | None = None

    @model_validator(mode="after")
    def _sane(self) -> RegisterSpec:
        if not math.isfinite(self.scale) or self.scale == 0:
            raise ValueError(f"scale must be a finite, non-zero number, not {self.scale}")
        for name in ("min", "max"):
            bound = getattr(self, name)
            if bound is not None and not math.isfinite(bound):
                raise ValueError(f"{name} must be finite, not {bound}")
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        if (self.type == "bool") != (self.function in BIT_FUNCTIONS):
            raise ValueError("coils and discrete inputs (function 1, 2) have type 'bool', "
                             "and type 'bool' needs function 1 or 2")
        if (self.type == "bit") != (self.bit is not None):
            raise ValueError("type 'bit' needs 'bit' (0..15), and 'bit' needs type 'bit'")
        if (self.type == "string") != (self.length is not None):
            raise ValueError("type 'string' needs 'length' (registers), and only strings have one")
        if self.word_order is not None and self.order is not None:
            raise ValueError("give either word_order or order, not both")
        if self.unit:
            suffix = UNIT_SUFFIXES.get(self.unit)
            if suffix is None:
                raise ValueError(f"unknown unit {self.unit!r} (one of {', '.join(UNIT_SUFFIXES)})")
            if not self.field.endswith(suffix):
                raise ValueError(f"field {self.field!r} has unit {self.unit} but its name does "
                                 f"not end in {suffix!r} (units are in field names)")
        return self

    @property
    def count(self) -> int:
        """Number of 16-bit registers (coils for ``bool``) this value occupies."""
        if self.type == "string":
            assert self.length is not None
            return self.length
        return REGISTER_WIDTH[self.type]

    @property
    def numeric(self) -> bool:
        """Whether the value is a number published in readings (strings are not)."""
        return self.type != "string"


class ForbiddenRange(BaseModel):
    """Registers ``start``..``end`` (inclusive) of ``function`` must never be read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    function: FunctionCode
    start: int = Field(ge=0, le=0xFFFF)
    end: int = Field(ge=0, le=0xFFFF)

    @model_validator(mode="after")
    def _ordered(self) -> ForbiddenRange:
        if self.end < self.start:
            raise ValueError(f"end {self.end:#06x} is before start {self.start:#06x}")
        return self


class DeviceProfile(BaseModel):
    """A Modbus device model: its registers, per-request limit and required pause."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: DeviceKind
    measurement: str = Field(min_length=1)
    max_registers: int = Field(ge=1, le=MAX_READ_REGISTERS)
    pause_s: float = Field(default=0.0, ge=0, le=10)
    word_order: WordOrder = "big"
    order: ByteOrder | None = None
    max_gap: int = Field(
        default=9,
        ge=0,
        le=MAX_READ_REGISTERS,
        description="read up to this many unneeded registers to join reads",
    )
    forbidden: tuple[ForbiddenRange, ...] = ()
    registers: tuple[RegisterSpec, ...] = Field(min_length=1)
    settings: tuple[RegisterSpec, ...] = Field(
        default=(),
        description="configuration and identification registers (line settings, node "
        "address, model code): never polled as readings",
    )
    identify: dict[str, str] = Field(
        default_factory=dict,
        description="field -> expected text or number: how `lykta commission scan modbus` "
        "recognises this device by probing (a field whose value matches)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DeviceProfile:
        seen: set[str] = set()
        occupied: dict[tuple[int, int, int], str] = {}
        numbered = [(f"registers[{i}]", r) for i, r in enumerate(self.registers)]
        numbered += [(f"settings[{i}]", r) for i, r in enumerate(self.settings)]
        for label, reg in numbered:
            where = f"{label} ({reg.field})"
            if reg.field in seen:
                raise ValueError(f"{where}: field name used twice")
            seen.add(reg.field)
            if reg.address + reg.count - 1 > 0xFFFF:
                raise ValueError(f"{where}: runs past register 0xFFFF")
            if reg.count > self.max_registers:
                raise ValueError(f"{where}: {reg.count} registers exceed max_registers")
            if reg.type == "bit":
                key = (reg.function, reg.address, -1 - (reg.bit or 0))
                if key in occupied:
                    raise ValueError(f"{where}: bit {reg.bit} of register {reg.address:#06x} "
                                     f"is also read by {occupied[key]}")
                occupied[key] = reg.field
            else:
                # bit fields share their register with other bit fields, nothing else does
                for a in range(reg.address, reg.address + reg.count):
                    other = occupied.get((reg.function, a, 0))
                    if other is not None:
                        raise ValueError(f"{where}: register {a:#06x} of function "
                                         f"{reg.function} is also read by {other}")
                    occupied[(reg.function, a, 0)] = reg.field
            for fb in self.forbidden:
                if (
                    fb.function == reg.function
                    and reg.address <= fb.end
                    and fb.start <= reg.address + reg.count - 1
                ):
                    raise ValueError(
                        f"{where}: address {reg.address:#06x} lies in forbidden range "
                        f"{fb.start:#06x}..{fb.end:#06x} of function {fb.function}"
                    )
        for name, expected in self.identify.items():
            if name not in seen:
                raise ValueError(f"identify: no register or setting named {name!r}")
            spec = self.spec(name)
            if spec.numeric:
                try:
                    float(expected)
                except ValueError:
                    raise ValueError(f"identify: {name} is a number, not {expected!r}") from None
        return self

    def spec(self, name: str) -> RegisterSpec:
        """The register or setting called ``name`` (KeyError naming the profile if none)."""
        for reg in (*self.registers, *self.settings):
            if reg.field == name:
                return reg
        raise KeyError(f"{self.name}: no register or setting {name!r}")

    def byte_order_of(self, reg: RegisterSpec) -> ByteOrder:
        """The byte order for ``reg``: its own ``order``/``word_order``, else the device's
        (``word_order = "little"`` is CDAB, the common low-word-first layout)."""
        if reg.order is not None:
            return reg.order
        if reg.word_order is not None:
            return "ABCD" if reg.word_order == "big" else "CDAB"
        if self.order is not None:
            return self.order
        return "ABCD" if self.word_order == "big" else "CDAB"

    def measurement_of(self, reg: RegisterSpec) -> str:
        """The InfluxDB measurement ``reg`` goes to (its own, else the device default)."""
        return reg.measurement or self.measurement


def parse_profile(data: dict[str, object], *, source: str = "<profile>") -> DeviceProfile:
    """Validate a profile already parsed from TOML; errors name ``source`` and the key."""
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ProfileError(f"{source}: {problems}") from None


def load_profile(path: str | Path) -> DeviceProfile:
    """Read and validate one profile TOML file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc})") from None
    return parse_profile(data, source=str(path))


PROFILE_DIR = Path(__file__).resolve().parents[2] / "config" / "profiles"
"""The shipped profiles (``config/profiles`` in the source tree)."""


def load_profiles(directory: str | Path = PROFILE_DIR) -> dict[str, DeviceProfile]:
    """All ``*.toml`` profiles in ``directory``, keyed by file stem (e.g. ``"eastron_sdm630"``)."""
    directory = Path(directory)
    return {p.stem: load_profile(p) for p in sorted(directory.glob("*.toml"))}
