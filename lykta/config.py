"""Configuration shared by both roles: loading TOML into pydantic models with precise errors,
and the MQTT connection settings (TLS, per-gateway credentials) both sides use.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file that cannot be used; ``problems`` lists ``file: key.path: reason`` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(Strict):
    """TLS towards the broker. Production always sets ``ca_file``; client certificates
    (``cert_file`` + ``key_file``) identify a gateway when the broker uses
    ``require_certificate`` / ``use_identity_as_username``."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class MqttConfig(Strict):
    """Where the broker is and how to authenticate. Each gateway has its own username (= its
    gateway id) and password; the broker ACL lets it write only below its own topics."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = Field(
        None, description="File holding the password (kept out of the config file)."
    )
    tls: TlsConfig | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)

    def password(self) -> str | None:
        """The password, read from ``password_file`` (stripped), or ``None``."""
        if self.password_file is None:
            return None
        return self.password_file.read_text().strip()


def load_config(path: Path, model: type[M]) -> M:
    """Load TOML ``path`` into ``model``; raise :class:`ConfigError` listing every problem."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: not valid TOML: {e}"]) from None
    return validate_config(data, model, str(path))


def validate_config(data: dict, model: type[M], source: str = "<config>") -> M:
    """Validate a parsed dict; errors name ``source`` and the dotted key path."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(
            [
                f"{source}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
                for err in e.errors()
            ]
        ) from None
