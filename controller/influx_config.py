"""Where and how the controller writes readings: the ``[influx]`` section of controller.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from lykta.config import Strict
from lykta.secrets import SecretFileError, check_if_present, read_secret


class InfluxConfig(Strict):
    """An InfluxDB to write to.

    ``version=1`` (the local default) writes through the 1.x ``/write`` endpoint with
    ``precision=ms`` into ``database`` (and ``retention_policy`` if set), authenticating with
    ``username``/``password`` (or ``password_file``) when given; the database is created on
    start if missing. Secrets never show in a repr or a log.
    InfluxDB 2.x and 3.x accept this endpoint too (with a DBRP mapping).

    ``version=2`` writes through ``influxdb-client`` (the v2 API of InfluxDB 2.x, 3.x and 1.8+)
    into ``bucket`` of ``org`` with ``token`` (or ``token_file``).

    Batching: a batch is sent when it holds ``batch_lines`` lines or its oldest line has waited
    ``flush_interval_s``. At most ``max_queued_lines`` lines wait in memory; beyond that
    :meth:`InfluxWriter.write` blocks (backpressure) instead of buffering without bound.
    """

    url: str = "http://127.0.0.1:8086"
    version: Literal[1, 2] = 1
    # 1.x
    database: str = "lykta"
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = Field(
        None, description="file holding the password (kept out of the config file)"
    )
    # 2.x / 3.x
    token: SecretStr | None = None
    token_file: Path | None = Field(
        None, description="file holding the token (kept out of the config file)"
    )
    org: str | None = None
    bucket: str | None = None
    # behaviour
    create_database: bool = Field(True, description="1.x: CREATE DATABASE on start")
    batch_lines: int = Field(5000, ge=1)
    flush_interval_s: float = Field(1.0, gt=0)
    max_queued_lines: int = Field(50_000, ge=1)
    timeout_s: float = Field(10.0, gt=0)
    gzip: bool = Field(
        False, description="compress request bodies (for an InfluxDB across a slow link)"
    )
    retry_initial_s: float = Field(0.1, gt=0)
    retry_max_s: float = Field(10.0, gt=0)
    max_in_flight: int = Field(
        2, ge=1, le=16, description="batches sent side by side (1: strictly in order)"
    )
    spool_max_bytes: int = Field(
        8 << 30, ge=0, description="disk the spool may use; beyond it, backpressure"
    )
    attempts_before_spool: int = Field(
        4, ge=1, description="tries of a fresh batch before it goes to the spool"
    )

    def password_value(self) -> str | None:
        """The 1.x password: ``password``, or read from ``password_file`` (stripped)."""
        return _secret(self.password, self.password_file)

    def token_value(self) -> str | None:
        """The 2.x/3.x token: ``token``, or read from ``token_file`` (stripped)."""
        return _secret(self.token, self.token_file)

    @model_validator(mode="after")
    def _v2_needs_target(self) -> InfluxConfig:
        check_if_present(self.password_file, "InfluxDB password")
        check_if_present(self.token_file, "InfluxDB token")
        if self.version == 2:
            missing = [k for k in ("org", "bucket") if not getattr(self, k)]
            if not (self.token or self.token_file):
                missing.insert(0, "token (or token_file)")
            if missing:
                raise ValueError(f"version 2 needs {', '.join(missing)}")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be at least retry_initial_s")
        return self


def _secret(value: SecretStr | None, file: Path | None) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if file is not None:
        try:
            return read_secret(file, "InfluxDB credential")
        except SecretFileError as e:
            raise ValueError(f"influx: {e}") from None
        except OSError as e:
            raise ValueError(f"influx: cannot read {file} ({e.strerror})") from None
    return None
