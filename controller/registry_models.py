"""The registry's tables (SQLAlchemy 2.x declarative; SQLite by default, PostgreSQL works).

Times are integers, milliseconds since the epoch, UTC (as on the wire). JSON documents are
stored as text so every backend holds them the same way.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the registry."""


class SiteRow(Base):
    """A site (a city or an installation) with its position."""

    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64))


class GatewayRow(Base):
    """A gateway (one street cabinet)."""

    __tablename__ = "gateways"
    site: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    luminaires: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[int] = mapped_column(Integer, default=3)


class LuminaireRow(Base):
    """A luminaire: where it stands, how it is addressed, what it delivers."""

    __tablename__ = "luminaires"
    site: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(64), index=True)
    zone: Mapped[str] = mapped_column(String(64), index=True)
    bus: Mapped[str] = mapped_column(String(64))
    short_address: Mapped[int] = mapped_column(Integer)
    group: Mapped[int | None] = mapped_column("dali_group", Integer, nullable=True)
    position_m: Mapped[float] = mapped_column(Float)
    design_class: Mapped[str] = mapped_column(String(8))
    rated_power_w: Mapped[float] = mapped_column(Float)
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=3)


class StrategyVersionRow(Base):
    """An uploaded strategy version: the validated document (luminaires inline) and who, when,
    why. ``applied_ts`` is set on the version in force."""

    __tablename__ = "strategy_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    hash: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(128))
    created_ts: Mapped[int] = mapped_column(BigInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    document: Mapped[str] = mapped_column(Text)
    applied_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ProgramRow(Base):
    """The program last published to a gateway (the expected one, for drift)."""

    __tablename__ = "programs"
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(64), primary_key=True)
    strategy_version: Mapped[int] = mapped_column(ForeignKey("strategy_versions.id"))
    version: Mapped[str] = mapped_column(String(64))
    program_hash: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[int] = mapped_column(BigInteger)
    valid_until: Mapped[int] = mapped_column(BigInteger)
    published_ts: Mapped[int] = mapped_column(BigInteger)


class AlarmRow(Base):
    """An alarm from raise to clear, with acknowledgement and comment."""

    __tablename__ = "alarms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(128))
    gateway: Mapped[str | None] = mapped_column(String(64), nullable=True)
    zone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    priority: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    raised_ts: Mapped[int] = mapped_column(BigInteger)
    cleared_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    acked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    acked_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_alarms_open", "site", "active", "kind", "source"),)


class AuditRow(Base):
    """One change or command: who, when, what, on what, with which details (JSON)."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[int] = mapped_column(BigInteger, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")


class CommissioningRow(Base):
    """The last commissioning record a technician registered for a gateway (JSON): its field
    buses, devices found and report summary, from ``lykta commission config --controller``."""

    __tablename__ = "commissioning"
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(128))
    record: Mapped[str] = mapped_column(Text, default="{}")


class TokenRow(Base):
    """An API bearer token: only its SHA-256 is stored."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_ts: Mapped[int] = mapped_column(BigInteger)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class CommandRow(Base):
    """A command sent to a gateway and, once it came back on ``cmd/res``, its result."""

    __tablename__ = "commands"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    gateway: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    args: Mapped[str] = mapped_column(Text, default="{}")
    actor: Mapped[str] = mapped_column(String(128))
    issued_ts: Mapped[int] = mapped_column(BigInteger)
    expires_ts: Mapped[int] = mapped_column(BigInteger)
    result_ok: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    result_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class IncidentRow(Base):
    """An incident override (trygghetsläge): the strategy Override sent, why, by whom."""

    __tablename__ = "incidents"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    override: Mapped[str] = mapped_column(Text)
    gateways: Mapped[str] = mapped_column(Text)  # JSON: gateway -> override ids
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    created_ts: Mapped[int] = mapped_column(BigInteger)
    expires_ts: Mapped[int] = mapped_column(BigInteger)
    cancelled_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
