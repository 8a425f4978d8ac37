"""A night minute by minute for one zone: sun elevation, profile, period, class and level.

``preview_night`` returns rows (pure); ``plot_night`` draws them with matplotlib (Agg) into a
PNG an operator can paste into a report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from lykta.strategy.adaptive import zone_steps
from lykta.strategy.astronomy import sun_elevation
from lykta.strategy.dali_curve import arc_level_to_percent
from lykta.strategy.en13201 import MAINTAINED_VALUES, UNITS, LightingClass
from lykta.strategy.evaluator import unit_target
from lykta.strategy.model import Strategy
from lykta.strategy.schedule import night_plan
from lykta.strategy.wallclock import zone as tzone


@dataclass(frozen=True, slots=True)
class PreviewRow:
    """One minute of the night."""

    utc: datetime
    local: datetime
    sun_elevation_deg: float
    lit: bool
    profile: str
    period: str | None
    lighting_class: str | None
    level: int
    output_percent: float
    floor_level: int
    source: str
    setting: str | None = None
    """What the level delivers: class, plain level or ``off`` (``None``: not lit)."""

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict (ISO times)."""
        d = asdict(self)
        d["utc"] = self.utc.isoformat()
        d["local"] = self.local.isoformat()
        d["sun_elevation_deg"] = round(self.sun_elevation_deg, 2)
        d["output_percent"] = round(self.output_percent, 2)
        return d


def zone_design_class(strategy: Strategy, zone: str) -> LightingClass | None:
    """The most common design class of the zone's luminaires (its floor class if none; None
    for a zone with neither)."""
    counts = Counter(lum.design_class.name for lum in strategy.luminaires if lum.zone == zone)
    if not counts:
        return strategy.zones[zone].safety_floor
    return LightingClass(counts.most_common(1)[0][0])


def preview_night(
    strategy: Strategy,
    zone: str,
    night: date,
    design: LightingClass | None = None,
    *,
    flow_per_h: float | None = None,
) -> list[PreviewRow]:
    """Rows for every minute of ``night`` (local noon to noon) for ``zone``; ``flow_per_h``:
    an assumed steady traffic flow for a zone that adapts to it (``None``: unknown, as with no
    counts at all — no adaptation)."""
    if zone not in strategy.zones:
        raise KeyError(f"no zone {zone!r}; zones: {', '.join(strategy.zones)}")
    design = design or zone_design_class(strategy, zone)
    if design is None:
        raise ValueError(
            f"zone {zone!r} has no luminaires in the inventory and no safety_floor: "
            "no design class to preview with"
        )
    plan = night_plan(strategy, night, zone)
    tz = tzone(strategy.site.timezone)
    rows = []
    t = plan.start
    steps = zone_steps(strategy, zone, flow_per_h)
    while t < plan.end:
        tg = unit_target(strategy, zone, design, t, overrides=strategy.overrides, plan=plan,
                         adaptive_steps=steps)  # fmt: skip
        rows.append(
            PreviewRow(
                utc=t,
                local=t.astimezone(tz),
                sun_elevation_deg=sun_elevation(strategy.site.latitude, strategy.site.longitude, t),
                lit=tg.lit,
                profile=tg.profile,
                period=tg.period,
                lighting_class=tg.lighting_class.name if tg.lighting_class else None,
                level=tg.level,
                output_percent=arc_level_to_percent(tg.level),
                floor_level=tg.floor_level,
                source=tg.source,
                setting=tg.setting,
            )
        )
        t += timedelta(minutes=1)
    return rows


def _label(setting: str | None) -> str:
    """``"P3 · 7.5 lx"``; a level or off as it is."""
    if setting is None:
        return "-"
    if setting in MAINTAINED_VALUES:
        c = LightingClass(setting)
        return f"{setting} · {c.value:g} {UNITS[c.series]}"
    return setting


def plot_night(
    strategy: Strategy,
    zone: str,
    night: date,
    rows: list[PreviewRow],
    path: Path,
    *,
    flow_per_h: float | None = None,
) -> str:
    """Write a PNG: light output and sun elevation against local time, with the safety floor,
    the switching threshold, on/off times, the night's kWh, events and the DST change.
    Returns the summary line printed under the plot (on/off times and kWh)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from lykta.strategy.energy import estimate_energy

    tz = tzone(strategy.site.timezone)
    plan = night_plan(strategy, night, zone)
    sw = strategy.zone_switching(zone)
    xs = mdates.date2num([r.utc for r in rows])  # matplotlib's date numbers (typed floats)
    fig, ax = plt.subplots(figsize=(12, 5.6), dpi=120)
    out = [r.output_percent for r in rows]
    floor = [arc_level_to_percent(r.floor_level) if r.lit else float("nan") for r in rows]
    ax.fill_between(xs, out, step="post", alpha=0.25, color="tab:orange")
    ax.step(xs, out, where="post", color="tab:orange", lw=2, label="light output (%)")
    if any(r.floor_level for r in rows):
        ax.plot(xs, floor, color="tab:red", ls="--", lw=1.2, label="safety floor (%)")
    ax.set_ylim(0, 125)  # headroom for the period labels
    ax.set_ylabel("light output, % of full (DALI curve)")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    ax.xaxis.set_major_locator(mdates.HourLocator(interval=2, tz=tz))
    ax.set_xlabel(f"local time ({strategy.site.timezone})")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(xs, [r.sun_elevation_deg for r in rows], color="tab:blue", lw=1, label="sun elevation")
    if not sw.always_lit:
        ax2.axhline(sw.sun_elevation_deg, color="tab:blue", ls=":", lw=1,
                    label=f"switching threshold: sun at {sw.sun_elevation_deg:g}°")  # fmt: skip
        ax2.annotate(f"switch at sun {sw.sun_elevation_deg:g}°", (xs[0], sw.sun_elevation_deg),
                     xytext=(4, 3), textcoords="offset points", fontsize=7,
                     color="tab:blue")  # fmt: skip
    ax2.set_ylabel("sun elevation (°)", color="tab:blue")
    # events: shade their spans and name them
    spans: dict[str, list[datetime]] = {}
    for r in rows:
        if r.source.startswith("event:"):
            spans.setdefault(r.source.split(":", 1)[1], []).append(r.utc)
    # adaptive classes: shade each run of minutes the assumed traffic steps down
    runs: list[list[datetime]] = []
    for a, r in zip([None, *rows], rows, strict=False):
        if r.source == "adaptive":
            if a is None or a.source != "adaptive":
                runs.append([])
            runs[-1].append(r.utc)
    for i, ts in enumerate(runs):
        ax.axvspan(mdates.date2num(ts[0]), mdates.date2num(ts[-1] + timedelta(minutes=1)),
                   color="tab:gray", alpha=0.12)  # fmt: skip
        if i == 0:
            steps = zone_steps(strategy, zone, flow_per_h)
            ax.annotate(f"traffic {flow_per_h:g} people/h: {steps} class step(s) down",
                        (ts[0], 110), xytext=(2, 0), textcoords="offset points", fontsize=8,
                        color="0.3")  # fmt: skip
    for name, ts in spans.items():
        ax.axvspan(mdates.date2num(ts[0]), mdates.date2num(ts[-1] + timedelta(minutes=1)),
                   color="tab:green", alpha=0.12)  # fmt: skip
        ax.annotate(f"event: {name}", (ts[0], 118), fontsize=8, color="tab:green")
    # the DST change
    for a, b in zip(rows, rows[1:], strict=False):
        if a.local.utcoffset() != b.local.utcoffset():
            ax.axvline(mdates.date2num(b.utc), color="tab:purple", ls="-.", lw=1)
            ax.annotate(f"{a.local.tzname()} → {b.local.tzname()}\n"
                        f"{a.local.strftime('%H:%M')} → {b.local.strftime('%H:%M')}",
                        (b.utc, 60), xytext=(3, 0), textcoords="offset points", fontsize=8,
                        color="tab:purple")  # fmt: skip
    # label each period once, at its first minute, with its light quantity
    seen: set[tuple[str | None, str | None]] = set()
    for r in rows:
        key = (r.period, r.setting)
        if r.lit and r.period and key not in seen:
            seen.add(key)
            ax.annotate(f"{r.period}\n{_label(r.setting)}", (r.utc, r.output_percent),
                        xytext=(2, 6), textcoords="offset points", fontsize=8)  # fmt: skip
    zname = strategy.zones[zone].name or zone
    ax.set_title(
        f"{strategy.site.name} — {zname} ({zone}), night of {night.isoformat()} "
        f"({rows[0].profile if rows else ''})"
    )

    def hm(t: datetime) -> str:
        loc = t.astimezone(tz)
        return f"{loc:%H:%M} {loc.tzname()}"

    if not plan.lit:
        sun_up = all(r.sun_elevation_deg >= sw.sun_elevation_deg for r in rows)
        times = "no lit window (midnight sun)" if sun_up else "no lit window (astro limits)"
        ax.text(0.5, 0.55, times, transform=ax.transAxes, ha="center", fontsize=16,
                color="0.35")  # fmt: skip
    elif sw.always_lit:
        times = "lit around the clock"
    else:
        times = "  ".join(f"on {hm(a)} – off {hm(b)}" for a, b in plan.lit)
    kwh = estimate_energy(strategy, night, night, flow_per_h=flow_per_h).zones[zone]
    n = kwh.luminaires
    summary = f"{times}   ·   {kwh.kwh:,.1f} kWh this night ({n} luminaire{'s' * (n != 1)})"
    if kwh.baseline_kwh:
        pct = kwh.saving_percent
        summary += (f", {pct:.0f} % less than all-on dusk to dawn" if pct >= 0
                    else f", {-pct:.0f} % more than all-on dusk to dawn")  # fmt: skip
    fig.text(0.01, 0.015, summary, fontsize=9)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    # below the axes: inside, it would hide the evening's labels
    ax.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4,
              fontsize=8, frameon=False)  # fmt: skip
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return summary
