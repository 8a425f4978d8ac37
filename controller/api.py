"""The controller's HTTP API (FastAPI; OpenAPI at ``/openapi.json``, docs at ``/docs``).

Every request carries ``Authorization: Bearer <token>``; tokens are stored hashed in the
registry with a role (:class:`~controller.registry.Role`):

=========  ====================================================================================
viewer     reads gateways, luminaires, live state, alarms, strategy versions, previews, commands
operator   viewer + acknowledges/comments alarms, uploads/applies/rolls back strategies, sends
           commands, creates/cancels incident and maintenance overrides
security   only lists, creates and cancels incident overrides (security staff, police)
admin      operator + tokens and the audit log
=========  ====================================================================================

Every write is audited (who, what, when). Bad requests get a 4xx whose ``detail`` says what
is wrong and where: 401 no/unknown token, 403 role not allowed, 404 unknown thing, 409
conflicting state, 422 invalid content (with the strategy's problem list), 503 broker down.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations,
# which name dependencies defined inside create_app.
import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import aiomqtt
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.body_guard import BodyGuard
from controller.body_guard import finite as _finite
from controller.incidents import IncidentError, Point, luminaires_within
from controller.registry import RegistryError, Role
from lykta.contract import CommandName, ContractError
from lykta.contract.topics import TopicError, check_id
from lykta.strategy import CompileError, Strategy, StrategyError, estimate_energy, preview_night
from lykta.strategy.model import parse_strategy

if TYPE_CHECKING:
    from controller.service import ControllerService

T = TypeVar("T")

READ = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
WRITE = (Role.OPERATOR, Role.ADMIN)
INCIDENT = (Role.SECURITY, Role.OPERATOR, Role.ADMIN)
INCIDENT_READ = (Role.VIEWER, *INCIDENT)
ADMIN = (Role.ADMIN,)
MAX_ENERGY_DAYS = 366


class Caller(BaseModel):
    """Who is calling: the token's name and role."""

    name: str
    role: Role


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StrategyUpload(_Body):
    """A strategy file (TOML text) and, if it names one, its inventory (CSV text)."""

    strategy_toml: str = Field(min_length=1)
    inventory_csv: str | None = None
    comment: str = ""


class VersionRef(_Body):
    """A strategy version id."""

    version: int


class AlarmComment(_Body):
    """A comment on an alarm."""

    text: str = Field(min_length=1, max_length=4000)


class Position(_Body):
    """Where a luminaire stands (WGS 84)."""

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class CommandRequest(_Body):
    """A command to one gateway; ``args`` are checked against the contract's type for
    ``name`` (docs/contract.md), and the controller signs the command."""

    gateway: str
    name: CommandName
    args: dict[str, Any] = {}
    ttl_s: int | None = Field(None, ge=1, le=3600)


class Area(_Body):
    """Where: zones, luminaires, or a radius around a point (exactly one of them)."""

    zones: list[str] = []
    luminaires: list[str] = []
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    radius_m: float | None = Field(None, gt=0, le=5000)

    @model_validator(mode="after")
    def _one(self) -> "Area":
        point = (self.latitude, self.longitude, self.radius_m)
        has_point = any(v is not None for v in point)
        if has_point and any(v is None for v in point):
            raise ValueError("a point needs latitude, longitude and radius_m")
        if sum(map(bool, (self.zones, self.luminaires, has_point))) != 1:
            raise ValueError("give exactly one of zones, luminaires or a point with radius_m")
        return self


class IncidentRequest(_Body):
    """An incident override (trygghetsläge): area, EN 13201 class, duration, reason."""

    area: Area
    lighting_class: str = Field(alias="class", min_length=2, max_length=3)
    minutes: int | None = Field(None, ge=1)
    reason: str = Field(min_length=3, max_length=2000)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MaintenanceRequest(_Body):
    """A maintenance override: area, exactly one of class / level_percent / off, duration."""

    area: Area
    lighting_class: str | None = Field(None, alias="class", min_length=2, max_length=3)
    level_percent: float | None = Field(None, ge=0, le=100)
    off: bool = False
    minutes: int = Field(ge=1)
    reason: str = Field(min_length=3, max_length=2000)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Commissioning(_Body):
    """What a technician registers for a gateway after commissioning its cabinet
    (``lykta commission config --controller``): field buses, devices found, report summary,
    the gateway.toml written."""

    dali_buses: list[dict[str, Any]] = Field(default_factory=list, max_length=16)
    luminaires: int = Field(0, ge=0, le=10_000)
    modbus_devices: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    report: dict[str, Any] = Field(default_factory=dict)
    config_toml: str = Field("", max_length=256_000)


class TokenRequest(_Body):
    """A new API token."""

    name: str = Field(min_length=1, max_length=128)
    role: Role


def create_app(svc: "ControllerService") -> FastAPI:
    """The API of one controller service."""
    app = FastAPIOffline(  # Swagger UI (/docs) and ReDoc (/redoc) from packaged assets
        title="Lykta controller",
        version="1",
        description="Gateways, luminaires, live state, alarms, strategy versions, commands and "
        "incident overrides of one Lykta site. Bearer tokens with roles viewer / operator / "
        "security / admin.",
    )
    app.add_middleware(BodyGuard, max_bytes=svc.config.api.max_body_bytes)
    bearer = HTTPBearer(auto_error=False)
    reg = svc.registry
    site = svc.site

    async def db(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kw)

    def require(*roles: Role) -> Callable[..., Awaitable[Caller]]:
        async def dep(
            cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> Caller:
            if cred is None or cred.scheme.lower() != "bearer":
                raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)",
                                    headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
            ident = await db(reg.token_identity, cred.credentials)
            if ident is None:
                raise HTTPException(401, "unknown or revoked token",
                                    headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
            caller = Caller(name=ident[0], role=ident[1])
            if caller.role not in roles:
                allowed = ", ".join(r.value for r in roles)
                raise HTTPException(
                    403, f"role {caller.role.value} may not do this (allowed: {allowed})"
                )
            return caller

        return dep

    Reader = Annotated[Caller, Depends(require(*READ))]
    Writer = Annotated[Caller, Depends(require(*WRITE))]
    Incident = Annotated[Caller, Depends(require(*INCIDENT))]
    IncidentReader = Annotated[Caller, Depends(require(*INCIDENT_READ))]
    Admin = Annotated[Caller, Depends(require(*ADMIN))]

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input; a non-finite float there cannot be JSON
        return JSONResponse({"detail": _finite(jsonable_encoder(e.errors()))}, status_code=422)

    @app.exception_handler(RegistryError)
    async def _not_found(_: Request, e: RegistryError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.exception_handler(StrategyError)
    async def _bad_strategy(_: Request, e: StrategyError) -> JSONResponse:
        return JSONResponse(
            {"detail": f"{len(e.problems)} problem(s) in the strategy; nothing changed",
             "problems": [str(p) for p in e.problems]},
            status_code=422,
        )  # fmt: skip

    @app.exception_handler(aiomqtt.MqttError)
    async def _broker_down(_: Request, e: aiomqtt.MqttError) -> JSONResponse:
        return JSONResponse({"detail": f"MQTT broker unreachable: {e}"}, status_code=503)

    def now() -> int:
        return svc.clock()

    async def audit(caller: Caller, action: str, target: str, detail: dict[str, Any]) -> None:
        await db(reg.audit, caller.name, action, target, detail, now())

    async def strategy_of(version: int) -> Strategy:
        return await db(reg.strategy, site, version)

    # -- reading -----------------------------------------------------------------------------

    @app.get("/api/v1/gateways", tags=["registry"])
    async def gateways(_: Reader) -> list[dict[str, Any]]:
        """The site's gateways with their live state."""
        rows = await db(reg.gateways, site)
        for r in rows:
            r.update(_live(svc, r["id"]))
        return rows

    @app.get("/api/v1/luminaires", tags=["registry"])
    async def luminaires(
        _: Reader, gateway: str | None = None, zone: str | None = None
    ) -> list[dict[str, Any]]:
        """The site's luminaires (position, zone, group, design class, rated power)."""
        return await db(reg.luminaires, site, gateway=gateway, zone=zone)

    @app.put("/api/v1/luminaires/{luminaire}/position", tags=["registry"])
    async def set_position(luminaire: str, body: Position, caller: Writer) -> dict[str, Any]:
        """Record where a luminaire stands (incident overrides by radius use it)."""
        await db(reg.set_luminaire_position, site, luminaire, body.latitude, body.longitude)
        await audit(caller, "luminaire_position", f"luminaire/{luminaire}", body.model_dump())
        return {"id": luminaire, **body.model_dump()}

    @app.get("/api/v1/state", tags=["live"])
    async def state(_: Reader) -> dict[str, Any]:
        """Live state: gateways online, programs expected and reported, ingest counters."""
        st = svc.ingest.stats
        gws = {gw: _live(svc, gw) for gw in sorted(svc.ingest.tracker.gateways)}
        return {
            "site": site,
            "gateways": gws,
            "online": svc.ingest.tracker.online_count(),
            "active_alarms": len(svc.engine.active()),
            "ingest": {
                "messages": st.messages,
                "readings": st.readings,
                "readings_committed": st.readings_committed,
                "malformed": st.malformed,
                "readings_rejected": st.readings_rejected,
                "malformed_reasons": dict(st.malformed_reasons),
                "gaps": st.gaps,
            },
        }

    # -- alarms ------------------------------------------------------------------------------

    @app.get("/api/v1/alarms", tags=["alarms"])
    async def alarms(
        _: Reader, active: bool | None = None, limit: int = Query(500, ge=1, le=10_000)
    ) -> list[dict[str, Any]]:
        """Alarms, priority 1 (safety routes, exposed places) first, newest first."""
        return await db(reg.alarms, site, active=active, limit=limit)

    @app.post("/api/v1/alarms/{alarm}/ack", tags=["alarms"])
    async def ack(alarm: int, caller: Writer) -> dict[str, Any]:
        """Acknowledge an alarm."""
        row = await db(reg.ack_alarm, site, alarm, caller.name, now())
        await audit(caller, "alarm_ack", f"alarm/{alarm}", {})
        return row

    @app.post("/api/v1/alarms/{alarm}/comment", tags=["alarms"])
    async def comment(alarm: int, body: AlarmComment, caller: Writer) -> dict[str, Any]:
        """Add a comment to an alarm."""
        row = await db(reg.comment_alarm, site, alarm, caller.name, body.text)
        await audit(caller, "alarm_comment", f"alarm/{alarm}", {"text": body.text})
        return row

    # -- strategies --------------------------------------------------------------------------

    @app.get("/api/v1/strategies", tags=["strategy"])
    async def versions(_: Reader) -> list[dict[str, Any]]:
        """Every strategy version (hash, author, time, comment, applied)."""
        return await db(reg.strategy_versions, site)

    @app.post("/api/v1/strategies/check", tags=["strategy"])
    async def check(body: StrategyUpload, _: Writer) -> dict[str, Any]:
        """Validate a strategy without storing it; 422 with every problem if it is invalid."""
        s = await db(_parse_upload, body, svc.config.api.inventory_dir)
        return {"ok": True, **_summary(s)}

    @app.post("/api/v1/strategies", tags=["strategy"], status_code=201)
    async def upload(body: StrategyUpload, caller: Writer) -> dict[str, Any]:
        """Store a new strategy version (not applied yet)."""
        s = await db(_parse_upload, body, svc.config.api.inventory_dir)
        row = await db(
            reg.add_strategy_version, site, s, author=caller.name, comment=body.comment,
            now_ms=now(),
        )  # fmt: skip
        await audit(caller, "strategy_upload", f"strategy/{row['id']}", {"hash": row["hash"]})
        return {**row, **_summary(s)}

    @app.get("/api/v1/strategies/{version}/preview", tags=["strategy"])
    async def preview(
        version: int, zone: str, night: date, _: Reader, step_min: int = Query(10, ge=1, le=60)
    ) -> dict[str, Any]:
        """A night's dimming curve of ``zone`` (local noon to noon), every ``step_min``."""
        s = await strategy_of(version)
        if zone not in s.zones:
            raise HTTPException(404, f"strategy version {version} has no zone {zone!r}")
        rows = await db(preview_night, s, zone, night)
        return {"zone": zone, "night": night.isoformat(),
                "rows": [r.as_json() for r in rows[::step_min]]}  # fmt: skip

    @app.get("/api/v1/strategies/{version}/energy", tags=["strategy"])
    async def energy(version: int, first: date, last: date, _: Reader) -> dict[str, Any]:
        """Energy what-if: kWh of ``version`` for the nights ``first``..``last`` beside the
        version in force."""
        if last < first or (last - first).days >= MAX_ENERGY_DAYS:
            raise HTTPException(422, f"first..last must be 1 to {MAX_ENERGY_DAYS} nights")
        s = await strategy_of(version)
        out: dict[str, Any] = {"version": version, **_energy(await db(estimate_energy, s, first,
                                                                      last))}  # fmt: skip
        applied = await db(reg.applied_version, site)
        if applied is not None:
            a = await db(estimate_energy, await strategy_of(applied), first, last)
            out["applied"] = {"version": applied, **_energy(a)}
            out["difference_kwh"] = round(out["kwh"] - out["applied"]["kwh"], 3)
        return out

    @app.post("/api/v1/strategies/{version}/apply", tags=["strategy"])
    async def apply(version: int, caller: Writer) -> dict[str, Any]:
        """Compile for every gateway, sign, publish retained; returns gateway -> program hash
        and ``notes``: what must be done besides (e.g. the broker ACL to regenerate)."""
        notes: list[str] = []
        try:
            hashes = await svc.apply(version, caller.name, notes=notes)
        except CompileError as e:
            raise HTTPException(422, f"strategy version {version} does not compile: {e}") from None
        return {"version": version, "programs": hashes, "notes": notes}

    @app.post("/api/v1/strategies/rollback", tags=["strategy"])
    async def rollback(body: VersionRef, caller: Writer) -> dict[str, Any]:
        """Go back to an earlier strategy version."""
        notes: list[str] = []
        try:
            hashes = await svc.apply(body.version, caller.name, rollback=True, notes=notes)
        except ValueError as e:
            raise HTTPException(409, str(e)) from None
        return {"version": body.version, "programs": hashes, "notes": notes}

    # -- commands and incidents --------------------------------------------------------------

    @app.post("/api/v1/commands", tags=["commands"], status_code=202)
    async def command(body: CommandRequest, caller: Writer) -> dict[str, Any]:
        """Send a command; its result arrives later (GET the command)."""
        try:
            check_id(body.gateway, "gateway")
        except TopicError as e:
            raise HTTPException(422, str(e)) from None
        known = {g["id"] for g in await db(reg.gateways, site)}
        if body.gateway not in known:
            raise HTTPException(404, f"no gateway {body.gateway!r} in site {site}")
        try:
            cmd = await svc.send_command(body.gateway, body.name, body.args, caller.name,
                                         ttl_s=body.ttl_s)  # fmt: skip
        except ContractError as e:  # args checked against the contract's type for the name
            raise HTTPException(422, str(e)) from None
        return {"id": cmd.id, "expires_ts": cmd.expires_ts}

    @app.get("/api/v1/commands/{command}", tags=["commands"])
    async def command_status(command: str, _: Reader) -> dict[str, Any]:
        """A command and its result (``result_ok`` null while none came back)."""
        return await db(reg.command, site, command)

    async def area_luminaires(area: Area) -> list[str]:
        if area.radius_m is None:
            return list(area.luminaires)
        assert area.latitude is not None and area.longitude is not None
        rows = await db(reg.luminaires, site)
        positions = {r["id"]: (r["latitude"], r["longitude"]) for r in rows}
        lums = luminaires_within(Point(area.latitude, area.longitude, area.radius_m), positions)
        if not lums:
            raise HTTPException(
                422,
                f"no luminaire with a known position within {area.radius_m:.0f} m of "
                f"({area.latitude}, {area.longitude})",
            )
        return lums

    @app.get("/api/v1/incidents", tags=["incidents"])
    async def incidents(_: IncidentReader, active: bool = False) -> list[dict[str, Any]]:
        """Incident overrides (``active=true``: only those in force now)."""
        return await db(reg.incidents, site, active_at=now() if active else None,
                        kind="incident")  # fmt: skip

    @app.post("/api/v1/incidents", tags=["incidents"], status_code=201)
    async def create_incident(body: IncidentRequest, caller: Incident) -> dict[str, Any]:
        """Raise the light in an area for a while (trygghetsläge)."""
        lums = await area_luminaires(body.area)
        try:
            return await svc.create_incident(
                caller.name,
                lighting_class=body.lighting_class,
                minutes=body.minutes or svc.config.api.incident_default_minutes,
                reason=body.reason,
                zones=list(body.area.zones),
                luminaires=lums,
            )
        except IncidentError as e:
            raise HTTPException(422, str(e)) from None

    @app.delete("/api/v1/incidents/{incident}", tags=["incidents"])
    async def cancel_incident(incident: str, caller: Incident) -> dict[str, Any]:
        """End an incident override early."""
        try:
            return await svc.cancel_override(incident, caller.name, kind="incident")
        except ValueError as e:
            raise HTTPException(409, str(e)) from None

    @app.get("/api/v1/maintenance", tags=["maintenance"])
    async def maintenance(_: Reader, active: bool = False) -> list[dict[str, Any]]:
        """Maintenance overrides (``active=true``: only those in force now)."""
        return await db(reg.incidents, site, active_at=now() if active else None,
                        kind="maintenance")  # fmt: skip

    @app.post("/api/v1/maintenance", tags=["maintenance"], status_code=201)
    async def create_maintenance(body: MaintenanceRequest, caller: Writer) -> dict[str, Any]:
        """Hold an area at a class, a level or off for a while (the gateway keeps the safety
        floor while lit)."""
        lums = await area_luminaires(body.area)
        try:
            return await svc.create_maintenance(
                caller.name,
                minutes=body.minutes,
                reason=body.reason,
                zones=list(body.area.zones),
                luminaires=lums,
                lighting_class=body.lighting_class,
                level_percent=body.level_percent,
                off=body.off,
            )
        except IncidentError as e:
            raise HTTPException(422, str(e)) from None

    @app.delete("/api/v1/maintenance/{override}", tags=["maintenance"])
    async def cancel_maintenance(override: str, caller: Writer) -> dict[str, Any]:
        """End a maintenance override early."""
        try:
            return await svc.cancel_override(override, caller.name, kind="maintenance")
        except ValueError as e:
            raise HTTPException(409, str(e)) from None

    # -- commissioning -----------------------------------------------------------------------

    @app.put("/api/v1/gateways/{gateway}/commissioning", tags=["registry"])
    async def register_commissioning(gateway: str, body: Commissioning,
                                     caller: Writer) -> dict[str, Any]:
        """Register a gateway's commissioning (its buses and devices); replaces the last one.
        The gateway need not be in the applied strategy yet (a new cabinet); ``known`` says
        whether it is."""
        try:
            check_id(gateway, "gateway")
        except TopicError as e:
            raise HTTPException(422, str(e)) from None
        record = body.model_dump()
        await db(reg.record_commissioning, site, gateway, record, caller.name, now())
        await audit(caller, "gateway_commissioned", f"gateway/{gateway}",
                    {"luminaires": body.luminaires, "modbus_devices": len(body.modbus_devices),
                     "dali_buses": len(body.dali_buses)})
        known = any(g["id"] == gateway for g in await db(reg.gateways, site))
        return {"gateway": gateway, "site": site, "known": known, "registered_by": caller.name}

    @app.get("/api/v1/gateways/{gateway}/commissioning", tags=["registry"])
    async def commissioning(gateway: str, _: Reader) -> dict[str, Any]:
        """The gateway's last registered commissioning (404 if none)."""
        return await db(reg.commissioning, site, gateway)

    # -- admin -------------------------------------------------------------------------------

    @app.post("/api/v1/tokens", tags=["admin"], status_code=201)
    async def create_token(body: TokenRequest, caller: Admin) -> dict[str, Any]:
        """Create a token (returned once; only its hash is stored)."""
        try:
            token = await db(reg.create_token, body.name, body.role, now())
        except ValueError as e:
            raise HTTPException(409, str(e)) from None
        await audit(caller, "token_create", f"token/{body.name}", {"role": body.role.value})
        return {"name": body.name, "role": body.role.value, "token": token}

    @app.get("/api/v1/audit", tags=["admin"])
    async def audit_log(_: Admin, limit: int = Query(200, ge=1, le=10_000)) -> list[dict]:
        """The audit log, newest first."""
        return await db(reg.audit_log, limit=limit)

    return app


def _live(svc: "ControllerService", gateway: str) -> dict[str, Any]:
    st = svc.ingest.tracker.gateways.get(gateway)
    expected = svc.engine.expected_hash.get(gateway)
    return {
        "online": bool(st and st.online),
        "since_ms": st.since_ms if st else None,
        # "shutdown" when it stopped on purpose, null when the link was lost (or online)
        "offline_reason": st.offline_reason if st and not st.online else None,
        "program_hash": st.program_hash if st else None,
        "expected_program_hash": expected[0] if expected else None,
    }


def _parse_upload(body: StrategyUpload, inventory_dir: Path | None = None) -> Strategy:
    """Parse an uploaded strategy. It can never make the controller read a file of its
    choosing: its inventory comes in the upload, or by plain file name from the one configured
    ``inventory_dir`` (a regular file inside it)."""
    from lykta.strategy.model import Problem, parse_toml

    def refuse(reason: str) -> StrategyError:
        return StrategyError([Problem("strategy.toml", "inventory", reason)])

    # the strategy loader's own parser: size limit, and a nesting too deep for tomllib's
    # recursion is a clean 422 like any other bad TOML, not a RecursionError
    doc = parse_toml(body.strategy_toml.encode("utf-8"), "strategy.toml")
    name = doc.get("inventory")
    if name is not None and not isinstance(name, str):
        raise refuse("must be a file name")
    with tempfile.TemporaryDirectory() as d:
        if body.inventory_csv is not None:
            if name is None:
                raise refuse("an inventory was uploaded but the strategy names no inventory file")
            (Path(d) / "inventory.csv").write_text(body.inventory_csv, encoding="utf-8")
            doc["inventory"] = "inventory.csv"
            return parse_strategy(doc, "strategy.toml", Path(d))
        if name is None:
            return parse_strategy(doc, "strategy.toml", Path(d))
        if inventory_dir is None:
            raise refuse(f"names {name!r}: upload it as inventory_csv (this controller has no "
                         "[api] inventory_dir to take it from)")  # fmt: skip
        if Path(name).name != name or name in ("", ".", ".."):
            raise refuse(f"{name!r}: only a plain file name in the inventory directory")
        base = inventory_dir.resolve()
        path = (base / name).resolve()
        if path.parent != base or not path.is_file():  # no FIFO, device or link out
            raise refuse(f"no inventory file {name!r} in the inventory directory")
        return parse_strategy(doc, "strategy.toml", base)


def _summary(s: Strategy) -> dict[str, Any]:
    return {
        "site_name": s.site.name,
        "zones": len(s.zones),
        "luminaires": len(s.luminaires),
        "gateways": s.gateways(),
    }


def _energy(r: Any) -> dict[str, Any]:
    return {
        "kwh": round(r.kwh, 3),
        "baseline_kwh": round(r.baseline_kwh, 3),
        "saving_percent": round(r.saving_percent, 2),
        "zones": {z: round(e.kwh, 3) for z, e in r.zones.items()},
    }
