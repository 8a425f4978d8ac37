"""``controller.toml``: the controller's configuration (see ``config/controller.toml``).

Relative paths in the file are taken relative to the file's directory, so an example
configuration works from wherever it is started.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from controller.admission import IngestLimits
from controller.alarms import AlarmRules
from controller.influx_config import InfluxConfig
from lykta.config import MqttConfig, Strict, load_config
from lykta.contract.topics import check_id


class ControllerMqttConfig(MqttConfig):
    """The broker connection plus the controller's MQTT identity (see docs/controller.md,
    "Running several controllers")."""

    client_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]{1,128}$",
        description="MQTT client id; default lykta-controller-{site}-{instance id in state_dir}",
    )
    session_expiry_s: int = Field(
        300,
        ge=0,
        le=7 * 24 * 3600,
        description="how long the broker keeps this controller's session (and its share of "
        "the shared subscription) while it is away; gateways re-send what it never confirmed",
    )


class ApiConfig(Strict):
    """The HTTP API (FastAPI, OpenAPI at ``/docs`` and ``/openapi.json``)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    max_body_bytes: int = Field(
        8 << 20, ge=1024, description="larger request bodies are refused with 413"
    )
    inventory_dir: Path | None = Field(
        None,
        description="where an uploaded strategy may take its inventory from by file name "
        "(otherwise the inventory must be uploaded with it)",
    )
    incident_max_minutes: int = Field(
        240, ge=1, le=12 * 60, description="cap on an incident override's duration"
    )
    incident_default_minutes: int = Field(60, ge=1)
    maintenance_max_minutes: int = Field(
        12 * 60, ge=1, le=12 * 60, description="cap on a maintenance override's duration"
    )

    @model_validator(mode="after")
    def _default_within_cap(self) -> ApiConfig:
        if self.incident_default_minutes > self.incident_max_minutes:
            raise ValueError("incident_default_minutes exceeds incident_max_minutes")
        return self


class ProgramsConfig(Strict):
    """Program compilation, signing and distribution."""

    key_file: Path = Field(
        Path("program-signing.key"),
        description="Ed25519 private key (PEM); generated with its .pub on first start",
    )
    hours: float = Field(48.0, gt=0, le=336, description="window of each compiled program")
    refresh_margin_h: float = Field(
        24.0, gt=0, description="re-compile when the window ends within this"
    )
    strategy: Path | None = Field(
        None, description="strategy TOML uploaded and applied when the registry has none"
    )
    broker_acl_file: Path | None = Field(
        None,
        description="the broker's ACL file (readable here): on every apply, and whenever the "
        "file changes, its presence-neighbours block is compared with the applied strategy "
        "and alarm neighbour_acl_stale raised if a gateway may not read a neighbour",
    )

    @model_validator(mode="after")
    def _margin(self) -> ProgramsConfig:
        if self.refresh_margin_h >= self.hours:
            raise ValueError("refresh_margin_h must be below hours")
        return self


class ControllerConfig(Strict):
    """Everything ``lykta controller run`` needs."""

    site: str
    state_dir: Path = Field(
        Path("/var/lib/lykta/controller"), description="InfluxDB spool and default registry"
    )
    registry_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<state_dir>/registry.db"
    )
    tick_s: float = Field(10.0, gt=0, le=300, description="alarm silence checks, watchdog")
    command_ttl_s: int = Field(
        60, ge=1, le=3600, description="MQTT message expiry and expires_ts of commands"
    )
    mqtt: ControllerMqttConfig = ControllerMqttConfig()
    influx: InfluxConfig = InfluxConfig()
    programs: ProgramsConfig = ProgramsConfig()
    alarms: AlarmRules = AlarmRules()
    limits: IngestLimits = IngestLimits()
    api: ApiConfig = ApiConfig()

    @field_validator("mqtt", mode="before")
    @classmethod
    def _plain_mqtt(cls, v: object) -> object:
        # a plain MqttConfig (as the roles share it) gains the controller's defaults
        if isinstance(v, MqttConfig) and not isinstance(v, ControllerMqttConfig):
            return v.model_dump()
        return v

    @model_validator(mode="after")
    def _site_id(self) -> ControllerConfig:
        check_id(self.site, "site")
        return self

    def registry(self) -> str:
        """The registry URL in effect."""
        return self.registry_url or f"sqlite:///{self.state_dir / 'registry.db'}"

    def resolved(self, base: Path) -> ControllerConfig:
        """A copy whose relative paths are taken relative to ``base``."""

        def rel(p: Path | None) -> Path | None:
            return p if p is None or p.is_absolute() else base / p

        programs = self.programs.model_copy(
            update={
                "key_file": rel(self.programs.key_file),
                "strategy": rel(self.programs.strategy),
                "broker_acl_file": rel(self.programs.broker_acl_file),
            }
        )
        api = self.api.model_copy(update={"inventory_dir": rel(self.api.inventory_dir)})
        return self.model_copy(
            update={"state_dir": rel(self.state_dir), "programs": programs, "api": api}
        )


def load_controller_config(path: Path) -> ControllerConfig:
    """Load ``controller.toml``; raise :class:`lykta.config.ConfigError` naming every problem."""
    return load_config(path, ControllerConfig).resolved(Path(path).resolve().parent)
