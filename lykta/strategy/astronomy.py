"""Sun elevation and the lit windows of a night (astral), plus lux-sensor switching.

Lights are on while the sun is below a threshold elevation (default −4°). Working from the
elevation rather than "sunset" events keeps this correct where such events do not exist:
white nights (short lit windows around midnight; at Norrköping, 58.6 °N, the sun still reaches
about −8° at midsummer, and "never below −6° yet below −4°" happens only at about
60.6–62.5 °N), midnight sun (never below the threshold: no lit window) and polar night (dark
all day: lit from noon to noon).

Elevations are astral's *apparent* elevation: it adds atmospheric refraction, which at −4°
is about +0.08° (near the horizon astral's refraction model tapers off). So "−4°" here is about
−4.08° geometric. Compare with a reference (PyEphem) only with the same refraction: without
it the switching times differ by the time the sun takes for 0.08° — about half a minute at
58 °N in winter, more in summer when it crosses slowly.

Crossings are found by sampling every 5 minutes and bisecting to one second; a dip below the
threshold between two samples is found by searching around the lowest sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from astral import Observer
from astral.sun import elevation

from lykta.strategy.wallclock import night_bounds, require_utc, zone

SAMPLE = timedelta(minutes=5)
SAFE_LEVEL = 254


def sun_elevation(latitude: float, longitude: float, t: datetime) -> float:
    """The sun's elevation in degrees (with refraction) seen from the position at UTC ``t``."""
    return elevation(Observer(latitude, longitude), require_utc(t))


def _bisect(obs: Observer, threshold: float, lo: datetime, hi: datetime) -> datetime:
    # lo and hi lie on opposite sides of the threshold; return the first second past the crossing
    below_lo = elevation(obs, lo) < threshold
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid <= lo:
            break
        if (elevation(obs, mid) < threshold) == below_lo:
            lo = mid
        else:
            hi = mid
    return hi


def dark_intervals(
    latitude: float, longitude: float, threshold: float, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """UTC intervals within [start, end) where the sun is below ``threshold`` degrees."""
    obs = Observer(latitude, longitude)
    times: list[datetime] = []
    t = start
    while t < end:
        times.append(t)
        t += SAMPLE
    times.append(end)
    elev = [elevation(obs, x) for x in times]
    below = [e < threshold for e in elev]
    if not any(below):
        # a short dip between samples: look around the lowest sample
        i = min(range(len(elev)), key=elev.__getitem__)
        lo, hi = times[max(0, i - 1)], times[min(len(times) - 1, i + 1)]
        for _ in range(40):
            m1, m2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
            if elevation(obs, m1) < elevation(obs, m2):
                hi = m2
            else:
                lo = m1
        bottom = (lo + (hi - lo) / 2).replace(microsecond=0)
        if elevation(obs, bottom) >= threshold:
            return []
        return [
            (
                _bisect(obs, threshold, times[max(0, i - 1)], bottom),
                _bisect(obs, threshold, bottom, times[min(len(times) - 1, i + 1)]),
            )
        ]
    out: list[tuple[datetime, datetime]] = []
    run_start: datetime | None = start if below[0] else None
    for k in range(1, len(times)):
        if below[k] and not below[k - 1]:
            run_start = _bisect(obs, threshold, times[k - 1], times[k])
        elif not below[k] and below[k - 1]:
            assert run_start is not None
            out.append((run_start, _bisect(obs, threshold, times[k - 1], times[k])))
            run_start = None
    if run_start is not None:
        out.append((run_start, end))
    return out


@lru_cache(maxsize=4096)
def lit_windows(
    latitude: float,
    longitude: float,
    timezone: str,
    threshold: float,
    on_offset_min: int,
    off_offset_min: int,
    night: date,
) -> tuple[tuple[datetime, datetime], ...]:
    """The lit windows (UTC) of ``night``: dark intervals with the switching offsets applied.

    ``on_offset_min`` shifts every switch-on (positive = later), ``off_offset_min`` every
    switch-off (positive = later). Edges at the night's noon boundaries are not shifted (the
    lights were already on: polar night). Windows are clipped to the night. Cached.
    """
    start, end = night_bounds(night, zone(timezone))
    out = []
    for on, off in dark_intervals(latitude, longitude, threshold, start, end):
        if on > start:
            on += timedelta(minutes=on_offset_min)
        if off < end:
            off += timedelta(minutes=off_offset_min)
        on, off = max(on, start), min(off, end)
        if on < off:
            out.append((on, off))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class LuxHysteresis:
    """Lux-sensor switching: on below ``on_below_lx``, off above ``off_above_lx``."""

    on_below_lx: float
    off_above_lx: float


def lux_switch(was_on: bool, lux: float, h: LuxHysteresis) -> bool:
    """Next on/off state from a lux reading; between the two thresholds nothing changes."""
    if lux < h.on_below_lx:
        return True
    if lux > h.off_above_lx:
        return False
    return was_on


def safe_default_level(
    latitude: float,
    longitude: float,
    now: datetime,
    *,
    level: int = SAFE_LEVEL,
    sun_elevation_deg: float = -4.0,
) -> int:
    """The fail-safe level for a gateway without a valid program: ``level`` from dusk to dawn.

    Uses only the gateway's own clock and position: ``level`` (default 254, full output: with
    no program the gateway cannot know the design classes, so it errs on the lit side) while
    the sun is below ``sun_elevation_deg``, else 0.
    """
    return level if sun_elevation(latitude, longitude, now) < sun_elevation_deg else 0


def utc_ms(t: datetime) -> int:
    """Milliseconds since the epoch for an aware datetime."""
    return int(require_utc(t).timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """Aware UTC datetime for milliseconds since the epoch."""
    return datetime.fromtimestamp(ms / 1000, UTC)
