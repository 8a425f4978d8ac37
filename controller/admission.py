"""What ingest lets in: limits on every message from outside, and who may report what.

Pure code (no I/O; the clock is passed in). Decoding (:mod:`lykta.contract.codec`) proves a
payload has the contract's shape; admission then checks what a schema cannot say:

- the payload's size, the nesting depth and string lengths of free-form fields (``Event.detail``,
  ``CommandResult.data``), the alphabet of InfluxDB field names (meter and sensor value names:
  never empty, no newline) and of ids that become tags;
- timestamps within a plausible window around the controller's clock (a reading of 1970 or 2200
  would create shards nobody asked for and could silence alarms for good);
- that the gateway is one the site knows, and that a luminaire's readings and events come from
  the gateway that owns it.

A message that fails is rejected whole (:class:`Rejected`, with a stable ``key`` for counting);
a telemetry batch keeps its good readings and drops the bad ones, each with its reason, so one
faulty meter does not cost a cabinet its luminaire readings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from pydantic import Field

from lykta.config import Strict
from lykta.contract import CommandResult, Event, EventKind, State, TelemetryBatch

DAY_S = 24 * 3600


class IngestLimits(Strict):
    """``[limits]`` in ``controller.toml``: what a message from outside may contain."""

    max_payload_bytes: int = Field(
        1 << 20, ge=1024, description="larger MQTT payloads are rejected before decoding"
    )
    max_depth: int = Field(
        8, ge=1, le=64, description="nesting of Event.detail and CommandResult.data"
    )
    max_string_chars: int = Field(
        1024, ge=16, description="longest string in free-form fields (detail, version, ...)"
    )
    max_fields: int = Field(64, ge=1, description="values in one meter or sensor reading")
    field_name_pattern: str = Field(
        r"[A-Za-z][A-Za-z0-9_]{0,63}",
        description="meter/sensor value names (InfluxDB field keys) must match this",
    )
    max_age_s: float = Field(
        30 * DAY_S, gt=0, description="readings and events older than this are rejected"
    )
    max_ahead_s: float = Field(
        120, ge=0, description="timestamps further ahead of the controller's clock: rejected"
    )
    state_max_age_s: float = Field(
        400 * DAY_S, gt=0, description="a retained birth may be old, but not older than this"
    )


class Rejected(ValueError):
    """A message (or reading) that admission refuses; ``key`` names the rule (for counting)."""

    def __init__(self, key: str, detail: str) -> None:
        self.key = key
        super().__init__(f"{key}: {detail}")


@dataclass(frozen=True, slots=True)
class Directory:
    """Who belongs to the site: its gateways and the gateway owning each luminaire."""

    gateways: frozenset[str]
    owner: Mapping[str, str]

    @classmethod
    def of(cls, luminaires: Iterable[tuple[str, str]], gateways: Iterable[str] = ()) -> Directory:
        """From (luminaire id, gateway) pairs, plus gateways that own no luminaire."""
        owner = dict(luminaires)
        return cls(frozenset(owner.values()) | frozenset(gateways), owner)


# Tag values must not carry control characters (a newline ends a line of line protocol) or a
# backslash (it would escape the separator after it), nor begin or end with blanks.
_BAD_ID = re.compile(r"[\x00-\x1f\x7f-\x9f\\]|^\s|\s$")
# Event kinds that are about one luminaire (their source is the luminaire id).
_LUMINAIRE_EVENTS = frozenset(
    {EventKind.LAMP_FAILURE, EventKind.LAMP_OK, EventKind.DALI_COMM_LOSS, EventKind.DALI_COMM_OK}
)
_CACHE_MAX = 100_000


class Admission:
    """Applies :class:`IngestLimits` and a :class:`Directory` (``None``: no registry yet, so
    any gateway and luminaire is taken, the limits still apply)."""

    def __init__(self, limits: IngestLimits | None = None, directory: Directory | None = None):
        self.limits = limits or IngestLimits()
        self.directory = directory
        self._field_re = re.compile(self.limits.field_name_pattern)
        self._good_ids: set[str] = set()
        self._good_fields: set[str] = set()

    # -- whole messages ---------------------------------------------------------------------

    def payload(self, payload: bytes | bytearray) -> None:
        """Before decoding: the size limit."""
        if len(payload) > self.limits.max_payload_bytes:
            raise Rejected(
                "payload_too_large", f"{len(payload)} bytes > {self.limits.max_payload_bytes}"
            )

    def gateway(self, gateway: str) -> None:
        """The topic's gateway must be one the site knows."""
        d = self.directory
        if d is not None and gateway not in d.gateways:
            raise Rejected("unknown_gateway", f"gateway {gateway!r} is not in the registry")

    def state(self, state: State, now_ms: int) -> None:
        """A birth or death: strings bounded, ``ts`` (if any) plausible (a retained birth may
        be old, so its own age limit)."""
        self._strings("State", (state.version, state.program_hash))
        if state.ts is not None:
            self._ts("State", state.ts, now_ms, self.limits.state_max_age_s)

    def event(self, gateway: str, event: Event, now_ms: int) -> None:
        """An event: plausible time, bounded detail, a luminaire's only from its gateway."""
        self._ts("Event", event.ts, now_ms, self.limits.max_age_s)
        self._id("Event.source", event.source)
        self._tree("Event.detail", event.detail)
        d = self.directory
        if d is not None:
            owner = d.owner.get(event.source)
            if owner is not None and owner != gateway:
                raise Rejected(
                    "foreign_luminaire",
                    f"event {event.kind} of {event.source!r} from {gateway!r}; owner {owner!r}",
                )
            if owner is None and event.kind in _LUMINAIRE_EVENTS:
                raise Rejected(
                    "unknown_luminaire",
                    f"event {event.kind} of {event.source!r}, not in the registry",
                )

    def command_result(self, result: CommandResult, now_ms: int) -> None:
        """A command result: plausible time, bounded detail and data."""
        self._ts("CommandResult", result.ts, now_ms, self.limits.max_age_s)
        self._strings("CommandResult", (result.detail,))
        self._tree("CommandResult.data", result.data)

    # -- telemetry: reading by reading ------------------------------------------------------

    def telemetry(
        self, gateway: str, batch: TelemetryBatch, now_ms: int
    ) -> tuple[TelemetryBatch, list[Rejected]]:
        """The batch with only its admissible readings, and why each other one was dropped.
        The batch is returned unchanged (the same object) when everything is admitted."""
        lim = self.limits
        lo, hi = now_ms - int(lim.max_age_s * 1000), now_ms + int(lim.max_ahead_s * 1000)
        owner = None if self.directory is None else self.directory.owner
        dropped: list[Rejected] = []
        lums = batch.luminaires
        good_lums = []
        for r in lums:
            try:
                if not lo <= r.ts <= hi:
                    self._ts("LuminaireReading", r.ts, now_ms, lim.max_age_s)
                if owner is None:
                    self._id("LuminaireReading.id", r.id)
                else:
                    o = owner.get(r.id)
                    if o != gateway:  # registry ids are validated: no id check needed
                        raise Rejected(
                            "foreign_luminaire" if o is not None else "unknown_luminaire",
                            f"reading of {r.id!r} from {gateway!r}"
                            + (f"; owner {o!r}" if o is not None else ", not in the registry"),
                        )
                good_lums.append(r)
            except Rejected as e:
                dropped.append(e)
        good_meters = []
        for m in batch.meters:
            try:
                if not lo <= m.ts <= hi:
                    self._ts("MeterReading", m.ts, now_ms, lim.max_age_s)
                self._id("MeterReading.device", m.device)
                self._fields("MeterReading", m.values)
                good_meters.append(m)
            except Rejected as e:
                dropped.append(e)
        good_sensors = []
        for s in batch.sensors:
            try:
                if not lo <= s.ts <= hi:
                    self._ts("SensorReading", s.ts, now_ms, lim.max_age_s)
                self._id("SensorReading.device", s.device)
                self._id("SensorReading.kind", s.kind)
                self._fields("SensorReading", s.values)
                good_sensors.append(s)
            except Rejected as e:
                dropped.append(e)
        if not dropped:
            return batch, dropped
        return msgspec.structs.replace(
            batch, luminaires=good_lums, meters=good_meters, sensors=good_sensors
        ), dropped

    # -- rules ------------------------------------------------------------------------------

    def _ts(self, what: str, ts: int, now_ms: int, max_age_s: float) -> None:
        if ts < now_ms - int(max_age_s * 1000):
            raise Rejected("ts_too_old", f"{what}.ts {ts} is {(now_ms - ts) / 1000:.0f} s old")
        if ts > now_ms + int(self.limits.max_ahead_s * 1000):
            raise Rejected(
                "ts_in_future", f"{what}.ts {ts} is {(ts - now_ms) / 1000:.0f} s ahead"
            )

    def _id(self, what: str, value: str) -> None:
        if value in self._good_ids:
            return
        if _BAD_ID.search(value):
            raise Rejected("bad_id", f"{what} {value[:80]!r}: control character, backslash "
                           "or surrounding blanks")  # fmt: skip
        if len(self._good_ids) >= _CACHE_MAX:
            self._good_ids.clear()
        self._good_ids.add(value)

    def _fields(self, what: str, values: Mapping[str, float]) -> None:
        if len(values) > self.limits.max_fields:
            raise Rejected("too_many_fields", f"{what}: {len(values)} values")
        good = self._good_fields
        for name in values:
            if name in good:
                continue
            if not self._field_re.fullmatch(name):
                raise Rejected(
                    "bad_field_name",
                    f"{what}: value name {name[:80]!r} does not match "
                    f"{self.limits.field_name_pattern}",
                )
            if len(good) >= _CACHE_MAX:
                good.clear()
            good.add(name)

    def _strings(self, what: str, values: Iterable[str | None]) -> None:
        n = self.limits.max_string_chars
        for v in values:
            if v is not None and len(v) > n:
                raise Rejected("string_too_long", f"{what}: a string of {len(v)} chars > {n}")

    def _tree(self, what: str, value: Any) -> None:
        """Depth, string lengths and size of a free-form JSON value, without recursion."""
        lim = self.limits
        stack: list[tuple[Any, int]] = [(value, 0)]
        nodes = 0
        while stack:
            v, depth = stack.pop()
            nodes += 1
            if nodes > 10_000:
                raise Rejected("too_large", f"{what}: more than 10000 values")
            if isinstance(v, str):
                if len(v) > lim.max_string_chars:
                    raise Rejected(
                        "string_too_long",
                        f"{what}: a string of {len(v)} chars > {lim.max_string_chars}",
                    )
            elif isinstance(v, dict | list):
                if depth >= lim.max_depth:
                    raise Rejected("too_deep", f"{what}: nested deeper than {lim.max_depth}")
                if isinstance(v, dict):
                    for k, x in v.items():
                        stack.append((k, depth + 1))
                        stack.append((x, depth + 1))
                else:
                    stack.extend((x, depth + 1) for x in v)
