"""Contract messages -> InfluxDB lines: the data model of ``docs/data-model.md``.

Pure functions, no I/O, no clock (a time the message does not carry is passed in).

Measurements (names are the single source of truth: import the constants, never retype them):

==================  =====================================  ======================================
measurement         tags                                   fields (unit in the name)
==================  =====================================  ======================================
``luminaire``       site, gateway, luminaire, zone, group  level (DALI arc power level, int),
                                                           power_w, energy_wh (measured; absent
                                                           if not), power_estimated_w,
                                                           energy_estimated_wh, status (DALI status
                                                           byte, int), temperature_c
``meter``           site, gateway, device, zone            the meter profile's field names
                                                           (e.g. ``voltage_l1_v``), floats
``sensor``          site, gateway, device, kind, zone      the sensor's values, floats
``gateway_state``   site, gateway, zone                    online, bdseq, luminaires, version,
                                                           program_hash
``gateway_health``  site, gateway, zone                    per minute: online, luminaires,
                                                           answering, program_ok, ...
``zone_compliance`` site, zone                             per minute: dark, lit, not_answering,
                                                           level_mean, level_expected, ...
``event``           site, gateway, kind, source, zone,     detail (JSON text), the detail's
                    group                                  scalars of :data:`EVENT_FIELDS`
``alarm``           site, gateway, zone, kind, source,     active, message
                    priority
==================  =====================================  ======================================

Every tag is bounded by the installation (ids of sites, gateways, luminaires, devices, zones,
groups) or by an enumeration (event kind, alarm kind, priority). Anything unbounded (a detail,
a message, a version string) is a field. Zone and group are not in the telemetry (the gateway
does not need to know the controller's registry); pass a :class:`Placement` to tag them.

Timestamps are milliseconds since the epoch (write with ``precision=ms``). Identical series and
timestamp overwrite in InfluxDB, so replaying a batch never duplicates a reading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import msgspec

from controller.lineprotocol import (
    FieldValue,
    encode_line,
    escape_key,
    format_float,
    series_prefix,
)
from lykta.contract import Basis, Event, LuminaireReading, State, TelemetryBatch

if TYPE_CHECKING:
    from controller.compliance import GatewayMinute, LuminaireMinute, ZoneMinute
    from lykta.strategy import Strategy

LUMINAIRE = "luminaire"
METER = "meter"
SENSOR = "sensor"
GATEWAY_STATE = "gateway_state"
EVENT = "event"
ALARM = "alarm"
GATEWAY_HEALTH = "gateway_health"
ZONE_COMPLIANCE = "zone_compliance"
LUMINAIRE_STATE = "luminaire_state"

MEASUREMENTS = (
    LUMINAIRE, METER, SENSOR, GATEWAY_STATE, GATEWAY_HEALTH, ZONE_COMPLIANCE, LUMINAIRE_STATE,
    EVENT, ALARM,
)
"""Every measurement Lykta writes."""

EVENT_FIELDS: dict[str, type] = {
    "occupied": bool,  # presence: the sensor sees someone
    "movement": bool,
    "boosted": int,  # presence: luminaires the gateway lit up for it (the reaction)
    "short_address": int,
    "status": int,  # lamp failure/ok: the DALI status byte
    "level": int,  # override started: its arc level
    "luminaires": int,  # override started: luminaires it covers
    "until": int,  # override started: its end, ms
    "version": int,  # program applied: the program's version
    "valid_until": int,
    "first": int,  # seq gap: the missing range
    "last": int,
    "unit": int,  # Modbus unit id
    "reason": str,
    "mode": str,
    "bus": str,
    "hash": str,
    "id": str,  # override id
}
"""Event detail entries that are also written as fields of their own (so a panel can count,
sum or filter them), with their one type: an entry of another type stays in ``detail`` only,
so a field never changes type."""

LuminairePlace = tuple[str | None, str | None]
"""(zone, group) of a luminaire; either may be ``None``."""

_NO_PLACE: tuple[None, None] = (None, None)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where things stand, from the registry's strategy: each luminaire's zone and group, and
    the zone of each gateway whose luminaires are all in one zone (its meters, sensors and
    gateway-wide events belong to that zone; a gateway serving several has none)."""

    luminaires: Mapping[str, LuminairePlace] = field(default_factory=dict)
    gateways: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_strategy(cls, strategy: Strategy) -> Placement:
        """The placement of ``strategy``'s luminaires and gateways."""
        lums = {
            lum.id: (lum.zone, None if lum.group is None else str(lum.group))
            for lum in strategy.luminaires
        }
        zones: dict[str, set[str]] = {}
        for lum in strategy.luminaires:
            zones.setdefault(lum.gateway, set()).add(lum.zone)
        return cls(lums, {gw: next(iter(z)) for gw, z in zones.items() if len(z) == 1})

    def of(self, gateway: str, source: str) -> LuminairePlace:
        """(zone, group) of what ``source`` names: a luminaire's own, else the gateway's zone."""
        got = self.luminaires.get(source)
        if got is not None:
            return got
        return (self.gateways.get(gateway), None)


def _placement(p: Placement | Mapping[str, LuminairePlace] | None) -> Placement | None:
    if p is None or isinstance(p, Placement):
        return p
    return Placement(luminaires=p)
_json = msgspec.json.Encoder()


_luminaire_prefixes: dict[tuple, str] = {}


def _luminaire_prefix(site: str, gateway: str, luminaire: str, place: tuple) -> str:
    key = (site, gateway, luminaire, place)
    got = _luminaire_prefixes.get(key)
    if got is None:
        if len(_luminaire_prefixes) >= 100_000:  # bounded, like the encoder's caches
            _luminaire_prefixes.clear()
        zone, group = place
        got = _luminaire_prefixes[key] = series_prefix(
            LUMINAIRE,
            {"site": site, "gateway": gateway, "luminaire": luminaire, "zone": zone,
             "group": group},
        )
    return got


def _float(x: float | None) -> float | None:
    return None if x is None else float(x)


def _luminaire_fields(r: LuminaireReading) -> dict[str, FieldValue | None]:
    """The documented fields of a luminaire reading; estimated power/energy get their own
    field names, so ``power_w`` and ``energy_wh`` only ever hold measurements."""
    estimated = r.basis is Basis.ESTIMATED
    return {
        "energy_estimated_wh" if estimated else "energy_wh": _float(r.energy_wh),
        "level": r.level,
        "power_estimated_w" if estimated else "power_w": _float(r.power_w),
        "status": r.status,
        "temperature_c": _float(r.temperature_c),
    }


def telemetry_lines(
    site: str,
    gateway: str,
    batch: TelemetryBatch,
    *,
    placement: Placement | Mapping[str, LuminairePlace] | None = None,
) -> list[str]:
    """One line per reading of ``batch`` (luminaire, meter and sensor readings).

    This is the ingest hot path: series keys are cached and the luminaire line is formatted
    directly; ``tests/ingest/test_datamodel.py`` proves it equals :func:`encode_line` of the
    documented tags and fields.
    """
    placement = _placement(placement)
    lines: list[str] = []
    append = lines.append
    fmt = format_float
    place_of = placement.luminaires.get if placement else None
    gw_zone = placement.gateways.get(gateway) if placement else None
    for r in batch.luminaires:
        prefix = _luminaire_prefix(
            site, gateway, r.id, place_of(r.id, _NO_PLACE) if place_of else _NO_PLACE
        )
        # Fields in key order: energy_wh, level, power_w, status, temperature_c. Only measured,
        # finite floats take this path (x - x is 0.0 for them, NaN for inf and NaN); anything
        # else goes through encode_line, which leaves absent and non-finite fields out.
        p, e, t = r.power_w, r.energy_wh, r.temperature_c
        if p is not None and e is not None and r.basis is Basis.MEASURED:
            p, e = float(p), float(e)
            if p - p == 0.0 and e - e == 0.0:
                line = (
                    f"{prefix}energy_wh={fmt(e)},level={r.level}i,power_w={fmt(p)},"
                    f"status={r.status}i"
                )
                if t is None:
                    append(f"{line} {r.ts}")
                    continue
                t = float(t)
                if t - t == 0.0:
                    append(f"{line},temperature_c={fmt(t)} {r.ts}")
                    continue
        append(
            encode_line(
                LUMINAIRE, _luminaire_tags(site, gateway, r.id, placement), _luminaire_fields(r),
                r.ts,
            )
        )
    for m in batch.meters:
        line = _values_line(
            series_prefix(
                METER, {"site": site, "gateway": gateway, "device": m.device, "zone": gw_zone}
            ),
            m.values,
            m.ts,
        )
        if line:
            append(line)
    for s in batch.sensors:
        line = _values_line(
            series_prefix(
                SENSOR,
                {"site": site, "gateway": gateway, "device": s.device, "kind": s.kind,
                 "zone": gw_zone},
            ),
            s.values,
            s.ts,
        )
        if line:
            append(line)
    return lines


def _luminaire_tags(
    site: str, gateway: str, luminaire: str, placement: Placement | None
) -> dict[str, str | None]:
    zone, group = placement.luminaires.get(luminaire, _NO_PLACE) if placement else _NO_PLACE
    return {"site": site, "gateway": gateway, "luminaire": luminaire, "zone": zone, "group": group}


def _values_line(prefix: str, values: Mapping[str, float], ts: int) -> str:
    # Meter/sensor values are floats by contract; NaN/inf are left out as Point does.
    parts = []
    for key, value in sorted(values.items()):
        value = float(value)  # a float field, even if a caller built the struct with an int
        if not math.isfinite(value):
            continue
        parts.append(f"{escape_key(key)}={format_float(value)}")
    return f"{prefix}{','.join(parts)} {ts}" if parts else ""


def event_lines(
    site: str, gateway: str, event: Event, *, placement: Placement | None = None
) -> list[str]:
    """The ``event`` line of one gateway event: kind, source and the source's zone/group as
    tags; the detail as JSON and its :data:`EVENT_FIELDS` scalars as fields of their own."""
    fields: dict[str, FieldValue | None] = {
        "detail": _json.encode(event.detail).decode() if event.detail else "{}"
    }
    for key, value in event.detail.items():
        want = EVENT_FIELDS.get(key)
        # bool is an int in Python: check the exact type so a field never changes type
        if want is not None and type(value) is want:
            fields[key] = cast(FieldValue, value)
        elif want is float and type(value) is int:
            fields[key] = float(value)
    zone, group = placement.of(gateway, event.source) if placement else _NO_PLACE
    tags = {"site": site, "gateway": gateway, "kind": event.kind.value, "source": event.source,
            "zone": zone, "group": group}  # fmt: skip
    return [encode_line(EVENT, tags, fields, event.ts)]


def state_lines(
    site: str, gateway: str, state: State, *, received_ms: int, placement: Placement | None = None
) -> list[str]:
    """The ``gateway_state`` line of a birth or death.

    A will (death) is published by the broker and usually carries no ``ts``: it is then stamped
    with ``received_ms``, the controller's clock when the message arrived.
    """
    fields: dict[str, FieldValue | None] = {
        "online": state.online,
        "bdseq": state.bdseq,
        "luminaires": state.luminaires,
        "version": state.version,
        "program_hash": state.program_hash,
    }
    ts = state.ts if state.ts is not None else received_ms
    zone = placement.gateways.get(gateway) if placement else None
    tags = {"site": site, "gateway": gateway, "zone": zone}
    return [encode_line(GATEWAY_STATE, tags, fields, ts)]


def alarm_lines(
    site: str,
    *,
    kind: str,
    source: str,
    priority: int,
    active: bool,
    ts: int,
    gateway: str | None = None,
    zone: str | None = None,
    message: str = "",
    open_s: float | None = None,
) -> list[str]:
    """The ``alarm`` line of an alarm raised (``active=True``) or cleared (``active=False``).

    ``kind`` is the alarm kind (an enumeration of the faults module), ``source`` the luminaire,
    device or gateway it is about, ``priority`` the zone's safety priority (1 = first; a tag,
    so dashboards can group by it).
    """
    tags = {
        "site": site,
        "gateway": gateway,
        "zone": zone,
        "kind": kind,
        "source": source,
        "priority": str(priority),
    }
    fields: dict[str, FieldValue | None] = {
        "active": active,
        "message": message,
        "open_s": None if open_s is None else float(open_s),
    }
    return [encode_line(ALARM, tags, fields, ts)]


def zone_minute_lines(site: str, minutes: list[ZoneMinute]) -> list[str]:
    """The ``zone_compliance`` lines of judged zone minutes (:mod:`controller.compliance`)."""
    out = []
    for m in minutes:
        tags = {"site": site, "zone": m.zone, "safety_route": "true" if m.safety_route else "false"}
        fields: dict[str, FieldValue | None] = {
            "luminaires": m.luminaires,
            "lit": int(m.lit),
            "answering": m.answering,
            "not_answering": m.not_answering,
            "dark": m.dark,
            "failed": m.failed,
            "level_pct": m.level_pct,
            "expected_pct": m.expected_pct,
            "floor_pct": m.floor_pct,
            "presence": m.presence,
            "reactions": m.reactions,
            "boosted": m.boosted,
            "power_w": m.power_w,
            "baseline_w": float(m.baseline_w),
            "power_baseline_w": m.power_baseline_w,
        }
        out.append(encode_line(ZONE_COMPLIANCE, tags, fields, m.ts))
    return out


def gateway_minute_lines(site: str, minutes: list[GatewayMinute]) -> list[str]:
    """The ``gateway_health`` lines of judged gateway minutes (:mod:`controller.compliance`)."""
    out = []
    for m in minutes:
        fields: dict[str, FieldValue | None] = {
            "online": int(m.online),
            "luminaires": m.luminaires,
            "answering": m.answering,
            "readings": m.readings,
            "last_seen_s": m.last_seen_s,
            "program_ok": None if m.program_ok is None else int(m.program_ok),
        }
        tags = {"site": site, "gateway": m.gateway, "zone": m.zone}
        out.append(encode_line(GATEWAY_HEALTH, tags, fields, m.ts))
    return out


def luminaire_minute_lines(site: str, minutes: list[LuminaireMinute]) -> list[str]:
    """The ``luminaire_state`` lines of judged luminaires (:mod:`controller.compliance`)."""
    out = []
    for m in minutes:
        tags = {"site": site, "gateway": m.gateway, "zone": m.zone, "luminaire": m.luminaire}
        fields: dict[str, FieldValue | None] = {
            "state": int(m.state),
            "level_pct": m.level_pct,
            "latitude": m.latitude,
            "longitude": m.longitude,
        }
        out.append(encode_line(LUMINAIRE_STATE, tags, fields, m.ts))
    return out
