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
    field = "voltage"
    function = 4                   # 3 = holding registers, 4 = input registers
    address = 0x0000
    type = "float32"               # u16 | s16 | u32 | s32 | float32
    scale = 1.0                    # value = raw * scale
    unit = "V"

Errors (:class:`ProfileError`) name the file and the key that is wrong.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DataType = Literal["u16", "s16", "u32", "s32", "float32"]
WordOrder = Literal["big", "little"]
FunctionCode = Literal[3, 4]
DeviceKind = Literal["meter", "presence", "lux"]

REGISTER_WIDTH: dict[str, int] = {"u16": 1, "s16": 1, "u32": 2, "s32": 2, "float32": 2}
"""16-bit registers each data type occupies."""

MAX_READ_REGISTERS = 125
"""The Modbus protocol limit for one read of holding/input registers (FC 3/4)."""


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
    scale: float = 1.0
    unit: str = ""
    measurement: str | None = None

    @property
    def count(self) -> int:
        """Number of 16-bit registers this value occupies."""
        return REGISTER_WIDTH[self.type]


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
    max_gap: int = Field(
        default=9,
        ge=0,
        le=MAX_READ_REGISTERS,
        description="read up to this many unneeded registers to join reads",
    )
    forbidden: tuple[ForbiddenRange, ...] = ()
    registers: tuple[RegisterSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> DeviceProfile:
        seen: set[str] = set()
        for i, reg in enumerate(self.registers):
            where = f"registers[{i}] ({reg.field})"
            if reg.field in seen:
                raise ValueError(f"{where}: field name used twice")
            seen.add(reg.field)
            if reg.address + reg.count - 1 > 0xFFFF:
                raise ValueError(f"{where}: runs past register 0xFFFF")
            if reg.count > self.max_registers:
                raise ValueError(f"{where}: {reg.count} registers exceed max_registers")
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
        return self

    def word_order_of(self, reg: RegisterSpec) -> WordOrder:
        """The word order for ``reg`` (its own, else the device default)."""
        return reg.word_order or self.word_order

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
