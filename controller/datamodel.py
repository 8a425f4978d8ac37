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
``meter``           site, gateway, device                  the meter profile's field names
                                                           (e.g. ``voltage_v``), floats
``sensor``          site, gateway, device, kind            the sensor's values, floats
``gateway_state``   site, gateway                          online, bdseq, luminaires, version,
                                                           program_hash
``event``           site, gateway, kind, source            detail (JSON text)
``alarm``           site, gateway, zone, kind, source,     active, message
                    priority
==================  =====================================  ======================================

Every tag is bounded by the installation (ids of sites, gateways, luminaires, devices, zones,
groups) or by an enumeration (event kind, alarm kind, priority). Anything unbounded (a detail,
a message, a version string) is a field. Zone and group are not in the telemetry (the gateway
does not need to know the controller's registry); pass ``placement`` to tag them.

Timestamps are milliseconds since the epoch (write with ``precision=ms``). Identical series and
timestamp overwrite in InfluxDB, so replaying a batch never duplicates a reading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec

from controller.lineprotocol import (
    FieldValue,
    encode_line,
    escape_key,
    format_float,
    series_prefix,
)
from lykta.contract import Basis, Event, LuminaireReading, State, TelemetryBatch

LUMINAIRE = "luminaire"
METER = "meter"
SENSOR = "sensor"
GATEWAY_STATE = "gateway_state"
EVENT = "event"
ALARM = "alarm"

MEASUREMENTS = (LUMINAIRE, METER, SENSOR, GATEWAY_STATE, EVENT, ALARM)
"""Every measurement Lykta writes."""

Placement = Mapping[str, tuple[str | None, str | None]]
"""Luminaire id -> (zone, group), from the registry; either may be ``None``."""

_NO_PLACE: tuple[None, None] = (None, None)
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
    site: str, gateway: str, batch: TelemetryBatch, *, placement: Placement | None = None
) -> list[str]:
    """One line per reading of ``batch`` (luminaire, meter and sensor readings).

    This is the ingest hot path: series keys are cached and the luminaire line is formatted
    directly; ``tests/ingest/test_datamodel.py`` proves it equals :func:`encode_line` of the
    documented tags and fields.
    """
    lines: list[str] = []
    append = lines.append
    fmt = format_float
    place_of = placement.get if placement else None
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
            series_prefix(METER, {"site": site, "gateway": gateway, "device": m.device}),
            m.values,
            m.ts,
        )
        if line:
            append(line)
    for s in batch.sensors:
        line = _values_line(
            series_prefix(
                SENSOR, {"site": site, "gateway": gateway, "device": s.device, "kind": s.kind}
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
    zone, group = placement.get(luminaire, _NO_PLACE) if placement else _NO_PLACE
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


def event_lines(site: str, gateway: str, event: Event) -> list[str]:
    """The ``event`` line of one gateway event (kind and source as tags, detail as JSON)."""
    fields: dict[str, FieldValue | None] = {
        "detail": _json.encode(event.detail).decode() if event.detail else "{}"
    }
    tags = {"site": site, "gateway": gateway, "kind": event.kind.value, "source": event.source}
    return [encode_line(EVENT, tags, fields, event.ts)]


def state_lines(site: str, gateway: str, state: State, *, received_ms: int) -> list[str]:
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
    return [encode_line(GATEWAY_STATE, {"site": site, "gateway": gateway}, fields, ts)]


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
    }
    return [encode_line(ALARM, tags, fields, ts)]
