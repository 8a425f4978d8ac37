"""The registry: sites, gateways, luminaires, strategy versions, programs, alarms, commands,
incident overrides, API tokens and the audit log (SQLAlchemy 2.x).

``Registry(url)`` takes any SQLAlchemy URL: ``sqlite:///path/registry.db`` (the default, one
controller) or ``postgresql+psycopg://…`` (several controllers). Tables are created on first
use. Methods are synchronous and short; the async service calls them through a thread.
Query results are plain dicts (JSON-ready) so the API returns them as they are.
"""

from __future__ import annotations

import enum
import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import create_engine, delete, event, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from controller.alarms import AlarmChange, OpenAlarm, zone_priority
from controller.registry_models import (
    AlarmRow,
    AuditRow,
    Base,
    CommandRow,
    CommissioningRow,
    GatewayRow,
    IncidentRow,
    LuminaireRow,
    ProgramRow,
    SiteRow,
    StrategyVersionRow,
    TokenRow,
)
from lykta.contract import Command, CommandResult, Program
from lykta.strategy import Strategy
from lykta.strategy.model import parse_strategy


class Role(enum.StrEnum):
    """API roles. ``security`` (security staff, police) may only create and cancel incident
    overrides; ``viewer`` reads; ``operator`` reads and changes; ``admin`` also manages tokens
    and reads the audit log."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    SECURITY = "security"
    ADMIN = "admin"


class RegistryError(LookupError):
    """Something asked for is not in the registry (the message names it)."""


TOKEN_PREFIX = "lykta_"


def hash_token(token: str) -> str:
    """SHA-256 hex of a bearer token. Tokens are 32 random bytes, so a fast hash suffices
    (nothing to brute-force); only this hash is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def strategy_document(strategy: Strategy) -> str:
    """A strategy as canonical JSON with its luminaires inline (no inventory file needed)."""
    doc = strategy.model_dump(mode="json", by_alias=True, exclude={"inventory"})
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _row(obj: Any) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in obj.__mapper__.column_attrs}


class Registry:
    """The controller's registry behind one SQLAlchemy engine."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        u = make_url(url)
        if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, echo=echo)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success, rolled back on error."""
        with self._session.begin() as s:
            yield s

    # -- sites, gateways, luminaires ---------------------------------------------------------

    def sync_inventory(self, site: str, strategy: Strategy) -> None:
        """Make the site's gateways and luminaires those of ``strategy`` (keeps the geographic
        positions already recorded for luminaires that stay)."""
        prio = {n: zone_priority(z.kind, z.safety_route) for n, z in strategy.zones.items()}
        with self.session() as s:
            s.merge(
                SiteRow(
                    id=site,
                    name=strategy.site.name,
                    latitude=strategy.site.latitude,
                    longitude=strategy.site.longitude,
                    timezone=strategy.site.timezone,
                )
            )
            old = {
                r.id: r for r in s.scalars(select(LuminaireRow).where(LuminaireRow.site == site))
            }
            keep = {lum.id for lum in strategy.luminaires}
            for lid, r in old.items():
                if lid not in keep:
                    s.delete(r)
            gws: dict[str, list[int]] = {}
            for lum in strategy.luminaires:
                p = prio[lum.zone]
                gws.setdefault(lum.gateway, []).append(p)
                row = old.get(lum.id)
                values = dict(
                    gateway=lum.gateway,
                    zone=lum.zone,
                    bus=lum.bus,
                    short_address=lum.short_address,
                    group=lum.group,
                    position_m=lum.position_m,
                    design_class=lum.design_class.name,
                    rated_power_w=lum.rated_power_w,
                    priority=p,
                )
                if row is None:
                    s.add(LuminaireRow(site=site, id=lum.id, **values))
                else:
                    for k, v in values.items():
                        setattr(row, k, v)
            s.execute(delete(GatewayRow).where(GatewayRow.site == site))
            for gw, ps in gws.items():
                s.add(GatewayRow(site=site, id=gw, luminaires=len(ps), priority=min(ps)))

    def gateways(self, site: str) -> list[dict[str, Any]]:
        """The site's gateways."""
        with self.session() as s:
            rows = s.scalars(
                select(GatewayRow).where(GatewayRow.site == site).order_by(GatewayRow.id)
            )
            return [_row(r) for r in rows]

    def luminaires(
        self, site: str, *, gateway: str | None = None, zone: str | None = None
    ) -> list[dict[str, Any]]:
        """The site's luminaires, optionally of one gateway or zone."""
        q = select(LuminaireRow).where(LuminaireRow.site == site)
        if gateway:
            q = q.where(LuminaireRow.gateway == gateway)
        if zone:
            q = q.where(LuminaireRow.zone == zone)
        with self.session() as s:
            return [_row(r) for r in s.scalars(q.order_by(LuminaireRow.id))]

    def set_luminaire_position(self, site: str, luminaire: str, lat: float, lon: float) -> None:
        """Record where a luminaire stands (for incident overrides by radius)."""
        with self.session() as s:
            row = s.get(LuminaireRow, (site, luminaire))
            if row is None:
                raise RegistryError(f"site {site}: no luminaire {luminaire!r}")
            row.latitude, row.longitude = lat, lon

    # -- strategy versions and programs ------------------------------------------------------

    def add_strategy_version(
        self, site: str, strategy: Strategy, *, author: str, comment: str, now_ms: int
    ) -> dict[str, Any]:
        """Store a validated strategy as a new version of ``site``; return its record."""
        doc = strategy_document(strategy)
        row = StrategyVersionRow(
            site=site,
            hash=hashlib.sha256(doc.encode()).hexdigest(),
            author=author,
            created_ts=now_ms,
            comment=comment,
            document=doc,
        )
        with self.session() as s:
            s.add(row)
            s.flush()
            return _version(row)

    def strategy_versions(self, site: str) -> list[dict[str, Any]]:
        """Every version of the site's strategy, oldest first (without the documents)."""
        with self.session() as s:
            q = select(StrategyVersionRow).where(StrategyVersionRow.site == site)
            return [_version(r) for r in s.scalars(q.order_by(StrategyVersionRow.id))]

    def strategy_version(self, site: str, version: int) -> dict[str, Any]:
        """One version's record; :class:`RegistryError` if there is none."""
        with self.session() as s:
            row = s.get(StrategyVersionRow, version)
            if row is None or row.site != site:
                raise RegistryError(f"site {site}: no strategy version {version}")
            return _version(row)

    def strategy(self, site: str, version: int) -> Strategy:
        """The strategy of a stored version."""
        with self.session() as s:
            row = s.get(StrategyVersionRow, version)
            if row is None or row.site != site:
                raise RegistryError(f"site {site}: no strategy version {version}")
            doc = row.document
        return parse_strategy(json.loads(doc), f"strategy version {version}")

    def applied_version(self, site: str) -> int | None:
        """The id of the version in force, or None if none was ever applied."""
        with self.session() as s:
            q = select(StrategyVersionRow.id).where(
                StrategyVersionRow.site == site, StrategyVersionRow.applied_ts.is_not(None)
            )
            return s.scalars(q).first()

    def mark_applied(self, site: str, version: int, now_ms: int) -> None:
        """Record ``version`` as the one in force (and no other)."""
        with self.session() as s:
            s.execute(
                update(StrategyVersionRow)
                .where(StrategyVersionRow.site == site)
                .values(applied_ts=None)
            )
            row = s.get(StrategyVersionRow, version)
            if row is None or row.site != site:
                raise RegistryError(f"site {site}: no strategy version {version}")
            row.applied_ts = now_ms

    def record_program(
        self, site: str, version: int, program: Program, program_hash: str, now_ms: int
    ) -> None:
        """Remember the program published to its gateway (the expected one)."""
        with self.session() as s:
            s.merge(
                ProgramRow(
                    site=site,
                    gateway=program.gateway,
                    strategy_version=version,
                    version=program.version,
                    program_hash=program_hash,
                    valid_from=program.valid_from,
                    valid_until=program.valid_until,
                    published_ts=now_ms,
                )
            )

    def programs(self, site: str) -> list[dict[str, Any]]:
        """The program last published to each gateway of the site."""
        with self.session() as s:
            q = select(ProgramRow).where(ProgramRow.site == site).order_by(ProgramRow.gateway)
            return [_row(r) for r in s.scalars(q)]

    # -- alarms ------------------------------------------------------------------------------

    def record_alarm(self, site: str, change: AlarmChange) -> int | None:
        """Open an alarm (raise) or close the open one (clear); return its id."""
        with self.session() as s:
            q = select(AlarmRow).where(
                AlarmRow.site == site,
                AlarmRow.active.is_(True),
                AlarmRow.kind == change.kind.value,
                AlarmRow.source == change.source,
                AlarmRow.gateway.is_(None)
                if change.gateway is None
                else AlarmRow.gateway == change.gateway,
            )
            row = s.scalars(q).first()
            if change.active:
                if row is not None:
                    return row.id  # already open (e.g. restored after a restart)
                row = AlarmRow(
                    site=site,
                    kind=change.kind.value,
                    source=change.source,
                    gateway=change.gateway,
                    zone=change.zone,
                    priority=change.priority,
                    active=True,
                    raised_ts=change.ts,
                    message=change.message,
                    comment="",
                )
                s.add(row)
                s.flush()
                return row.id
            if row is None:
                return None
            row.active, row.cleared_ts = False, change.ts
            row.message = f"{row.message}; cleared: {change.message}"
            return row.id

    def alarms(
        self, site: str, *, active: bool | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Alarms of the site, by priority (1 first) then newest first."""
        q = select(AlarmRow).where(AlarmRow.site == site)
        if active is not None:
            q = q.where(AlarmRow.active.is_(active))
        q = q.order_by(AlarmRow.priority, AlarmRow.raised_ts.desc(), AlarmRow.id.desc())
        with self.session() as s:
            return [_row(r) for r in s.scalars(q.limit(limit))]

    def open_alarms(self, site: str) -> list[OpenAlarm]:
        """Every open alarm: what the alarm engine restores after a restart (with the zone
        and priority it was raised with, so its clear lands in the same series)."""
        with self.session() as s:
            q = select(
                AlarmRow.kind, AlarmRow.gateway, AlarmRow.source, AlarmRow.zone, AlarmRow.priority
            ).where(AlarmRow.site == site, AlarmRow.active.is_(True))
            return [OpenAlarm(*row) for row in s.execute(q)]

    def ack_alarm(self, site: str, alarm: int, actor: str, now_ms: int) -> dict[str, Any]:
        """Acknowledge an alarm."""
        with self.session() as s:
            row = self._alarm(s, site, alarm)
            row.acked_by, row.acked_ts = actor, now_ms
            return _row(row)

    def comment_alarm(self, site: str, alarm: int, actor: str, text: str) -> dict[str, Any]:
        """Append a comment (``actor: text``) to an alarm."""
        with self.session() as s:
            row = self._alarm(s, site, alarm)
            row.comment = (row.comment + "\n" if row.comment else "") + f"{actor}: {text}"
            return _row(row)

    @staticmethod
    def _alarm(s: Session, site: str, alarm: int) -> AlarmRow:
        row = s.get(AlarmRow, alarm)
        if row is None or row.site != site:
            raise RegistryError(f"site {site}: no alarm {alarm}")
        return row

    # -- commissioning -----------------------------------------------------------------------

    def record_commissioning(self, site: str, gateway: str, record: dict[str, Any],
                             actor: str, now_ms: int) -> None:
        """Keep ``record`` as the gateway's commissioning (replacing an earlier one)."""
        with self.session() as s:
            s.merge(CommissioningRow(site=site, gateway=gateway, ts=now_ms, actor=actor,
                                     record=json.dumps(record, ensure_ascii=False,
                                                       sort_keys=True)))

    def commissioning(self, site: str, gateway: str) -> dict[str, Any]:
        """The gateway's commissioning record (RegistryError if none was registered)."""
        with self.session() as s:
            row = s.get(CommissioningRow, (site, gateway))
            if row is None:
                raise RegistryError(f"gateway {gateway!r} has no commissioning record")
            return {"gateway": row.gateway, "ts": row.ts, "actor": row.actor,
                    **json.loads(row.record)}

    # -- audit -------------------------------------------------------------------------------

    def audit(
        self, actor: str, action: str, target: str, detail: dict[str, Any], now_ms: int
    ) -> None:
        """Append one entry to the audit log."""
        with self.session() as s:
            s.add(
                AuditRow(
                    ts=now_ms,
                    actor=actor,
                    action=action,
                    target=target,
                    detail=json.dumps(detail, ensure_ascii=False, default=str),
                )
            )

    def audit_log(self, *, limit: int = 200) -> list[dict[str, Any]]:
        """The newest audit entries first."""
        with self.session() as s:
            q = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
            out = []
            for r in s.scalars(q):
                d = _row(r)
                d["detail"] = json.loads(r.detail)
                out.append(d)
            return out

    # -- tokens ------------------------------------------------------------------------------

    def create_token(self, name: str, role: Role | str, now_ms: int) -> str:
        """Create a bearer token for ``name`` with ``role``; return it (shown once, stored
        only as its hash)."""
        role = Role(role)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.session() as s:
            if s.scalars(select(TokenRow).where(TokenRow.name == name)).first() is not None:
                raise ValueError(f"a token named {name!r} exists already")
            s.add(TokenRow(name=name, role=role.value, token_hash=hash_token(token),
                           created_ts=now_ms, revoked=False))  # fmt: skip
        return token

    def token_identity(self, token: str) -> tuple[str, Role] | None:
        """(name, role) of a valid, unrevoked token; None otherwise."""
        with self.session() as s:
            row = s.scalars(
                select(TokenRow).where(TokenRow.token_hash == hash_token(token))
            ).first()
            if row is None or row.revoked:
                return None
            return row.name, Role(row.role)

    def revoke_token(self, name: str) -> None:
        """Revoke the token called ``name``."""
        with self.session() as s:
            row = s.scalars(select(TokenRow).where(TokenRow.name == name)).first()
            if row is None:
                raise RegistryError(f"no token named {name!r}")
            row.revoked = True

    def tokens(self) -> list[dict[str, Any]]:
        """Every token's name, role, creation time and state (never the hash)."""
        with self.session() as s:
            rows = s.scalars(select(TokenRow).order_by(TokenRow.id))
            return [
                {"name": r.name, "role": r.role, "created_ts": r.created_ts, "revoked": r.revoked}
                for r in rows
            ]

    # -- commands and incidents --------------------------------------------------------------

    def add_command(self, site: str, gateway: str, cmd: Command, actor: str) -> None:
        """Record a command as sent."""
        with self.session() as s:
            s.add(
                CommandRow(
                    id=cmd.id,
                    site=site,
                    gateway=gateway,
                    name=str(cmd.name),
                    args=json.dumps(msgspec.to_builtins(cmd.args), ensure_ascii=False),
                    actor=actor,
                    issued_ts=cmd.issued_ts,
                    expires_ts=cmd.expires_ts,
                )
            )

    def command_result(self, site: str, gateway: str, result: CommandResult) -> bool:
        """Record a gateway's answer; False if no such command was sent from here."""
        with self.session() as s:
            row = s.get(CommandRow, result.id)
            if row is None or row.site != site or row.gateway != gateway:
                return False
            row.result_ok, row.result_detail, row.result_ts = result.ok, result.detail, result.ts
            return True

    def command(self, site: str, command: str) -> dict[str, Any]:
        """One command and its result (if any)."""
        with self.session() as s:
            row = s.get(CommandRow, command)
            if row is None or row.site != site:
                raise RegistryError(f"site {site}: no command {command!r}")
            d = _row(row)
            d["args"] = json.loads(row.args)
            return d

    def add_incident(
        self,
        site: str,
        incident: str,
        override: dict[str, Any],
        gateways: dict[str, list[str]],
        *,
        reason: str,
        actor: str,
        now_ms: int,
        expires_ms: int,
    ) -> None:
        """Record an incident override; ``gateways`` maps each gateway to the override ids
        sent to it (what ``cancel_override`` must name)."""
        with self.session() as s:
            s.add(
                IncidentRow(
                    id=incident,
                    site=site,
                    override=json.dumps(override, ensure_ascii=False),
                    gateways=json.dumps(gateways, sort_keys=True),
                    reason=reason,
                    actor=actor,
                    created_ts=now_ms,
                    expires_ts=expires_ms,
                )
            )

    def cancel_incident(
        self, site: str, incident: str, actor: str, now_ms: int, *, kind: str | None = None
    ) -> dict[str, Any]:
        """Mark an incident (or maintenance) override cancelled; return it. With ``kind``,
        only an override of that kind is found."""
        with self.session() as s:
            row = s.get(IncidentRow, incident)
            if (
                row is None
                or row.site != site
                or (kind is not None and json.loads(row.override).get("kind") != kind)
            ):
                raise RegistryError(f"site {site}: no {kind or 'incident'} {incident!r}")
            if row.cancelled_ts is not None:
                raise ValueError(f"incident {incident!r} was already cancelled")
            row.cancelled_ts, row.cancelled_by = now_ms, actor
            return _incident(row)

    def incidents(
        self, site: str, *, active_at: int | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """Incident and maintenance overrides of the site (only those in force at
        ``active_at`` / of ``kind`` if given)."""
        q = select(IncidentRow).where(IncidentRow.site == site)
        if active_at is not None:
            q = q.where(IncidentRow.cancelled_ts.is_(None), IncidentRow.expires_ts > active_at)
        with self.session() as s:
            rows = [_incident(r) for r in s.scalars(q.order_by(IncidentRow.created_ts))]
        return [r for r in rows if kind is None or r["override"].get("kind") == kind]


def _version(row: StrategyVersionRow) -> dict[str, Any]:
    d = _row(row)
    del d["document"]
    return d


def _incident(row: IncidentRow) -> dict[str, Any]:
    d = _row(row)
    d["override"] = json.loads(row.override)
    d["gateways"] = json.loads(row.gateways)
    return d


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while ingest writes; foreign keys are off by default in SQLite.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
