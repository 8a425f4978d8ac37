"""The gateway's configuration file (``gateway.toml``) and building a gateway from it.

See ``config/gateway.toml`` for an annotated example and the README's configuration reference.
"""

from __future__ import annotations

import contextlib
import csv
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from gateway.dali.driver import DaliLuminaireDriver, Luminaire
from gateway.modbus.poller import ModbusDevice, ModbusPoller, SerialLine, TcpEndpoint
from gateway.modbus.profile import PROFILE_DIR, load_profiles
from lykta.config import ConfigError, MqttConfig, Strict, load_config
from lykta.dali_bus import DaliBus


class DaliBusConfig(Strict):
    """One DALI bus and the interface that reaches it."""

    name: str = Field(min_length=1)
    transport: Literal["firmware-bridge", "lunatone"] = "firmware-bridge"
    url: str = Field(
        description="serial port or pyserial URL (firmware-bridge), or "
        "luba232:/dev/ttyUSB0 / scirs232:... (lunatone)"
    )
    baudrate: int = 115200
    budget_share: float = Field(0.5, gt=0, le=1, description="bus time for background reads")


class LuminaireConfig(Strict):
    """A luminaire as commissioned: its id, bus, DALI short address and groups."""

    id: str = Field(min_length=1)
    bus: str
    short_address: int = Field(ge=0, le=63)
    groups: list[int] = []


class ModbusDeviceConfig(Strict):
    """A Modbus device: unit id, profile name (file stem under the profile dir), interval."""

    id: str = Field(min_length=1)
    unit: int = Field(ge=0, le=247)
    profile: str
    interval_s: float = Field(10.0, gt=0)


class ModbusLineConfig(Strict):
    """A Modbus line: RTU on a serial port, or Modbus TCP."""

    name: str
    port: str | None = Field(None, description="serial port for RTU, e.g. /dev/ttyUSB1")
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    host: str | None = Field(None, description="Modbus TCP host")
    tcp_port: int = 502
    devices: list[ModbusDeviceConfig]

    @model_validator(mode="after")
    def _one_transport(self) -> ModbusLineConfig:
        if (self.port is None) == (self.host is None):
            raise ValueError("give either port (RTU) or host (TCP)")
        return self


class PresenceSensorConfig(Strict):
    """A presence sensor and where it stands along a zone's path: a DALI Part 303 occupancy
    sensor (``bus``, ``short_address``) or a Modbus presence sensor (``device``, the id of a
    ``kind = "presence"`` device under ``[[modbus.devices]]``)."""

    bus: str = ""
    short_address: int = Field(0, ge=0, le=63)
    device: str | None = None
    zone: str
    position_m: float = Field(ge=0)


class GatewayConfig(Strict):
    """Everything one cabinet's gateway needs."""

    site: str
    id: str
    state_dir: Path = Path("/var/lib/lykta/gateway")
    telemetry_interval_s: float = Field(10.0, gt=0)
    public_key_file: Path | None = Field(
        None,
        description="Ed25519 key programs must verify against; without it no program is trusted",
    )
    next_public_key_file: Path | None = Field(
        None,
        description="a second trusted key during a key rotation (programs and commands signed "
        "by either key are accepted); see docs/security.md",
    )
    latitude: float = Field(ge=-90, le=90, description="for the fail-safe astronomical clock")
    longitude: float = Field(ge=-180, le=180)
    sun_elevation_deg: float = -4.0
    fail_safe_level: int = Field(254, ge=1, le=254)
    mqtt: MqttConfig = MqttConfig()
    dali: list[DaliBusConfig] = []
    luminaires: list[LuminaireConfig] = []
    luminaires_file: Path | None = Field(
        None,
        description="inventory CSV (id, gateway, bus, "
        "short_address, group); rows of this gateway are used",
    )
    modbus: list[ModbusLineConfig] = []
    profile_dir: Path = PROFILE_DIR
    presence_sensors: list[PresenceSensorConfig] = []

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        buses = {b.name for b in self.dali}
        for i, lum in enumerate(self.luminaires):
            if lum.bus not in buses:
                raise ValueError(f"luminaires[{i}] ({lum.id}): no DALI bus {lum.bus!r}")
        devices = {d.id for m in self.modbus for d in m.devices}
        for i, s in enumerate(self.presence_sensors):
            if s.device is not None:
                if s.device not in devices:
                    raise ValueError(f"presence_sensors[{i}]: no Modbus device {s.device!r}")
            elif s.bus not in buses:
                raise ValueError(f"presence_sensors[{i}]: no DALI bus {s.bus!r}")
        return self

    def trusted_key_files(self) -> list[Path]:
        """The public keys programs and commands may be signed with (current, next)."""
        return [p for p in (self.public_key_file, self.next_public_key_file) if p is not None]

    def all_luminaires(self) -> list[LuminaireConfig]:
        """The luminaires listed inline plus this gateway's rows of ``luminaires_file``."""
        out = list(self.luminaires)
        if self.luminaires_file is not None:
            with open(self.luminaires_file, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    if row.get("gateway") != self.id:
                        continue
                    group = row.get("group") or ""
                    out.append(
                        LuminaireConfig(
                            id=row["id"],
                            bus=row["bus"],
                            short_address=int(row["short_address"]),
                            groups=[int(group)] if group else [],
                        )
                    )
        return out


def load_gateway_config(path: Path) -> GatewayConfig:
    """Load ``gateway.toml``; relative file names in it are relative to the file itself.
    Raises :class:`lykta.config.ConfigError` listing every problem."""
    cfg = load_config(path, GatewayConfig)
    base = Path(path).parent
    fix = {
        k: base / v
        for k in ("luminaires_file", "public_key_file", "next_public_key_file", "profile_dir")
        if (v := getattr(cfg, k)) is not None and not Path(v).is_absolute()
    }
    cfg = cfg.model_copy(update=fix)
    try:
        cfg.all_luminaires()
    except OSError as e:
        raise ConfigError(
            [f"{path}: luminaires_file: cannot read {e.filename}: {e.strerror}"]
        ) from None
    except (KeyError, ValueError) as e:
        raise ConfigError(
            [f"{path}: luminaires_file {cfg.luminaires_file}: bad row ({e})"]
        ) from None
    return cfg


class FieldOpenError(RuntimeError):
    """A configured field bus could not be opened (its adapter absent, the port wrong)."""


def _root_reason(e: BaseException) -> str:
    """The OS's words for the innermost cause of ``e`` (``No such file or directory``)."""
    reason = str(e)
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno is not None:
            reason = os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return reason


async def open_field(
    cfg: GatewayConfig, stack: contextlib.AsyncExitStack
) -> tuple[dict[str, DaliLuminaireDriver], list[ModbusPoller]]:
    """Open every DALI bus and Modbus line of ``cfg`` (closed when ``stack`` closes)."""
    from gateway.dali.board import BoardDaliBus  # the gateway reaches the board here
    from gateway.dali.lunatone import PythonDaliBus

    lums = cfg.all_luminaires()
    drivers: dict[str, DaliLuminaireDriver] = {}
    for b in cfg.dali:
        bus: DaliBus
        try:
            if b.transport == "firmware-bridge":
                bus = await stack.enter_async_context(
                    BoardDaliBus.open(b.url, name=b.name, baudrate=b.baudrate)
                )
            else:
                bus = await PythonDaliBus.open(b.url, name=b.name)
                stack.push_async_callback(bus.close)
        except OSError as e:
            raise FieldOpenError(
                f"DALI bus {b.name!r}: cannot open serial port {b.url}: {_root_reason(e)}"
            ) from e
        drivers[b.name] = DaliLuminaireDriver(
            bus,
            [
                Luminaire(x.id, x.short_address, frozenset(x.groups))
                for x in lums
                if x.bus == b.name
            ],
            budget_share=b.budget_share,
        )
    profiles = load_profiles(cfg.profile_dir)
    pollers = []
    for line in cfg.modbus:
        link = (
            SerialLine(line.port, line.baudrate, line.parity, line.stopbits)
            if line.port
            else TcpEndpoint(line.host or "", line.tcp_port)
        )
        devices = []
        for d in line.devices:
            if d.profile not in profiles:
                raise ValueError(
                    f"modbus {line.name}: device {d.id}: no profile {d.profile!r} "
                    f"in {cfg.profile_dir} (have {', '.join(sorted(profiles))})"
                )
            devices.append(ModbusDevice(d.id, d.unit, profiles[d.profile], d.interval_s))
        pollers.append(ModbusPoller(link, devices))  # FieldBusReader opens and closes them
    return drivers, pollers
