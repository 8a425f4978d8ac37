"""Configuration shared by both roles: loading TOML into pydantic models with precise errors,
and the MQTT connection settings (TLS, per-gateway credentials) both sides use.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lykta.secrets import check_if_present, read_secret

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
        check_if_present(self.key_file, "private key")
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

    @model_validator(mode="after")
    def _private(self) -> MqttConfig:
        check_if_present(self.password_file, "broker password")
        return self

    def password(self) -> str | None:
        """The password, read from ``password_file`` (stripped), or ``None``; raises
        :class:`lykta.secrets.SecretFileError` when the file is readable by others."""
        if self.password_file is None:
            return None
        return read_secret(self.password_file, "broker password")

    def files(self) -> dict[str, Path | None]:
        """Every file this section names, by its dotted key (for :func:`file_problems`)."""
        tls = self.tls
        return {
            "mqtt.password_file": self.password_file,
            "mqtt.tls.ca_file": tls.ca_file if tls else None,
            "mqtt.tls.cert_file": tls.cert_file if tls else None,
            "mqtt.tls.key_file": tls.key_file if tls else None,
        }


def file_problems(source: str | Path, files: dict[str, Path | None]) -> list[str]:
    """``source: key: cannot read PATH: reason`` for each named file that cannot be read.

    ``check`` commands use it so that a missing key, password or CA file is found when the
    config is checked, not at three in the morning when the service first needs it."""
    problems = []
    for key, path in files.items():
        if path is None:
            continue
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as e:
            problems.append(f"{source}: {key}: cannot read {path}: {e.strerror or e}")
    return problems


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


def tls_problems(source: str | Path, mqtt: MqttConfig) -> list[str]:
    """Problems with the TLS files of ``mqtt`` that can be read but are not usable (a CA file
    that is no certificate, a client certificate that does not match its key)."""
    tls = mqtt.tls
    if tls is None or not all(os.access(p, os.R_OK) for p in mqtt.files().values() if p):
        return []  # unreadable files are file_problems' to report
    try:
        ctx = ssl.create_default_context(cafile=str(tls.ca_file))
        if tls.cert_file is not None and tls.key_file is not None:
            ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    except (ssl.SSLError, ValueError) as e:
        return [f"{source}: mqtt.tls: not usable: {e}"]
    return []

