"""Lykta's Grafana dashboards: Energy, Uptime, Faults, Street safety and Map.

Built with Grafana's foundation SDK (typed models of Grafana 11.6's dashboard schema); every
query is raw InfluxQL on the measurements of ``docs/data-model.md`` (InfluxQL runs on InfluxDB
1.x, 2.x through DBRP and 3.x). Every dashboard has the variables site / zone / gateway; every
panel has a description, a unit and thresholds. ``docs/dashboards.md`` explains each panel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import bargauge, geomap, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog import builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import geomap as geomap_m

from controller import datamodel as dm
from controller.compliance import MINUTE_MS, LuminaireState
from lykta.cli.dashboard_influxql import DATASOURCE, Target

DEFAULT_PRICE_SEK_PER_KWH = 1.5
DEFAULT_TIMEZONE = "Europe/Stockholm"
TAGS = ["lykta"]
# Norrköping, where the example site stands (the map's first view)
MAP_CENTRE = (58.59, 16.18)

Panel = builder.Builder[model.Panel]


@dataclass(frozen=True)
class BoardSettings:
    """What ``lykta dashboards build`` is told: each a dashboard variable's default, so a
    user can change it in Grafana without a rebuild."""

    price: float = DEFAULT_PRICE_SEK_PER_KWH
    """Energy price, SEK/kWh, for the cost panels."""
    timezone: str = DEFAULT_TIMEZONE
    """IANA time zone of the site: where a day begins in the per-day panels."""


@dataclass(frozen=True)
class Board:
    """One dashboard: its file name (``dashboards/<name>.json``) and built model."""

    name: str
    dashboard: model.Dashboard


# -- query helpers -------------------------------------------------------------------------


def where(*tags: str, extra: str = "") -> str:
    """``WHERE $timeFilter`` and a regex filter per dashboard variable the measurement has."""
    conds = ["$timeFilter", *(f'"{t}" =~ /^${t}$/' for t in tags)]
    if extra:
        conds.append(extra)
    return "WHERE " + " AND ".join(conds)


ZONE_TAGS = ("site", "zone")  # zone_compliance: per zone, no gateway
ALL_TAGS = ("site", "zone", "gateway")


def steps(*pairs: tuple[float | None, str]) -> dash.ThresholdsConfig:
    """Absolute thresholds: (value, colour) pairs, the first with value ``None`` (base)."""
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=v, color=c) for v, c in pairs])
    )


GOOD_HIGH = steps((None, "red"), (95, "orange"), (99, "green"))  # a share that should be ~100 %
ZERO_GOOD = steps((None, "green"), (1, "red"))  # a count whose goal is 0: red on any
NEUTRAL = steps((None, "blue"))  # a quantity with no good or bad (energy, power)


def _mapping(text: dict[str, tuple[str, str]]) -> list[model.ValueMapping]:
    return [
        model.ValueMap(
            options={k: model.ValueMappingResult(text=t, color=c, index=i)
                     for i, (k, (t, c)) in enumerate(text.items())}  # fmt: skip
        )
    ]


STATE_TEXT = {
    str(int(LuminaireState.OFF)): ("off", "#808080"),
    str(int(LuminaireState.DIMMED)): ("dimmed", "blue"),
    str(int(LuminaireState.FULL)): ("lit", "yellow"),
    str(int(LuminaireState.BELOW_FLOOR)): ("below floor", "red"),
    str(int(LuminaireState.FAILED)): ("failed", "dark-red"),
    str(int(LuminaireState.NOT_ANSWERING)): ("not answering", "purple"),
}
STATE_COLOURS = steps(
    (None, "#808080"),
    (int(LuminaireState.DIMMED), "blue"),
    (int(LuminaireState.FULL), "yellow"),
    (int(LuminaireState.BELOW_FLOOR), "red"),
    (int(LuminaireState.FAILED), "dark-red"),
    (int(LuminaireState.NOT_ANSWERING), "purple"),
)


def _base(p: Panel, title: str, description: str, unit: str,
          thresholds: dash.ThresholdsConfig, targets: Sequence[Target], w: int, h: int) -> Panel:
    p = p.title(title).description(description).datasource(DATASOURCE)  # type: ignore[attr-defined]
    p = p.unit(unit).thresholds(thresholds).span(w).height(h)  # type: ignore[attr-defined]
    for t in targets:
        p = p.with_target(t)  # type: ignore[attr-defined]
    return p


def stat_panel(title: str, description: str, unit: str, thresholds: dash.ThresholdsConfig,
               *targets: Target, w: int = 6, h: int = 5,
               reduce: str = "lastNotNull") -> Panel:  # fmt: skip
    """A big number (the last value, or ``reduce``), coloured by the thresholds."""
    p = (
        stat.Panel()
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_b.ReduceDataOptions().calcs([reduce]).values(False))
    )
    return _base(p, title, description, unit, thresholds, targets, w, h)


def series_panel(title: str, description: str, unit: str, thresholds: dash.ThresholdsConfig,
                 *targets: Target, w: int = 12, h: int = 8, bars: bool = False,
                 threshold_lines: bool = False) -> Panel:  # fmt: skip
    """A time series (lines, or bars for per-day totals)."""
    p = timeseries.Panel().legend(
        common_b.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM).show_legend(True).calcs(["sum", "max"])
    )  # fmt: skip
    if bars:
        p = p.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    if threshold_lines:
        p = p.thresholds_style(
            common_b.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)
        )
    return _base(p, title, description, unit, thresholds, targets, w, h)


def gauge_panel(title: str, description: str, unit: str, thresholds: dash.ThresholdsConfig,
                *targets: Target, w: int = 12, h: int = 8) -> Panel:  # fmt: skip
    """One bar per series (per zone, per gateway), coloured by the thresholds."""
    p = (
        bargauge.Panel()
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    return _base(p, title, description, unit, thresholds, targets, w, h)


MERGE = model.DataTransformerConfig(id_val="merge", options={})


def table_panel(title: str, description: str, unit: str, thresholds: dash.ThresholdsConfig,
                *targets: Target, w: int = 12, h: int = 8,
                sort_by: str | None = None) -> Panel:  # fmt: skip
    """A table of the query's rows (``table`` result format)."""
    p = table.Panel().cell_options(  # cells coloured by the thresholds
        common.TableColoredBackgroundCellOptions(mode=common.TableCellBackgroundDisplayMode.BASIC)
    )
    p = p.with_transformation(MERGE)  # one row per series: InfluxDB groups come as frames
    if sort_by is not None:
        p = p.sort_by([common_b.TableSortByFieldState().display_name(sort_by).desc(False)])
    return _base(p, title, description, unit, thresholds, targets, w, h)


# -- variables ------------------------------------------------------------------------------


def variables(settings: BoardSettings) -> list[builder.Builder[model.VariableModel]]:
    """site / zone / gateway (each multi-value with All), the energy price, the time zone."""

    def tag_values(name: str, label: str, measurement: str, filters: str) -> dash.QueryVariable:
        q = f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "{name}"' + filters
        return (
            dash.QueryVariable(name).label(label).datasource(DATASOURCE).query(q)
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*")
            .current(model.VariableOption(selected=True, text="All", value="$__all"))
            .description(f"Only {label.lower()}s matching this (All: every one).")
        )  # fmt: skip

    return [
        tag_values("site", "Site", dm.GATEWAY_HEALTH, ""),
        tag_values("zone", "Zone", dm.ZONE_COMPLIANCE, ' WHERE "site" =~ /^$site$/'),
        tag_values("gateway", "Gateway", dm.GATEWAY_HEALTH,
                   ' WHERE "site" =~ /^$site$/ AND "zone" =~ /^$zone$/'),  # fmt: skip
        dash.TextBoxVariable("price").label("Price, SEK/kWh")
        .default_value(f"{settings.price:g}")
        .description("Energy price for the cost panels, SEK per kWh (all in)."),
        dash.TextBoxVariable("timezone").label("Time zone").default_value(settings.timezone)
        .description("The site's IANA time zone (e.g. Europe/Stockholm): where a day "
                     "begins in the per-day panels."),
    ]  # fmt: skip


def board(uid: str, title: str, description: str, panels: Sequence[Panel], settings: BoardSettings,
          time_from: str = "now-24h") -> model.Dashboard:  # fmt: skip
    """A Lykta dashboard: uid, tags, variables, the InfluxDB data source, the panels."""
    d = (
        dash.Dashboard(title).uid(uid).description(description).tags(TAGS)
        .time(time_from, "now").refresh("1m").timezone("browser").readonly()
        .tooltip(model.DashboardCursorSync.CROSSHAIR).variables(variables(settings))
        .link(dash.DashboardLink("Lykta").type(model.DashboardLinkType.DASHBOARDS)
              .tags(TAGS).as_dropdown(True).include_vars(True).keep_time(True))
    )  # fmt: skip
    for p in panels:
        d = d.with_panel(p)
    return d.build()


# -- the dashboards -------------------------------------------------------------------------

ZC = dm.ZONE_COMPLIANCE
GH = dm.GATEWAY_HEALTH
LIT = '"lit" = 1'
SEEN = '"presence" > 0'
REACTED = '"reactions" > 0'
RAISED = '"active" = true'
# an incident override (trygghetsläge) starts on a gateway in mode "raise" (never lowers)
INCIDENTS = '"kind" = \'override_started\' AND "mode" = \'raise\''
# one zone_compliance point per zone per minute (the minute writer's MINUTE_MS): W summed over
# the points times the hours one point stands for, / 1000 = kWh (60000 for a minute)
KWH = f'sum("power_w") / {3_600_000 * 1000 // MINUTE_MS}'


def energy(settings: BoardSettings) -> model.Dashboard:
    """Energy: power, kWh per day and zone, saving against all-on, cost, reconciliation."""
    known = '"power_w" >= 0'  # only minutes whose power is known count for the saving
    panels = [
        stat_panel(
            "Power now", "Power the luminaires draw now: the last minute's sum over the "
            "selected zones of each answering luminaire's last reading (measured by D4i gear, "
            "else the gateway's estimate).", "watt", NEUTRAL,
            Target(f'SELECT sum("power_w") FROM "{ZC}" {where(*ZONE_TAGS)} '
                   "GROUP BY time(1m) fill(none)"),
        ),
        stat_panel(
            "Energy in range", "kWh drawn by the selected zones in the dashboard's time range "
            "(per-minute power summed).", "kwatth", NEUTRAL,
            Target(f'SELECT {KWH} FROM "{ZC}" {where(*ZONE_TAGS)}'),
        ),
        stat_panel(
            "Saving against all-on", "Energy saved against the strategy's reference: every "
            "luminaire at 100 % from dusk to dawn (standby by day) — the baseline of "
            "`lykta strategy energy`, of the luminaires that report power (one that does not "
            "answer is neither drawn nor saved). Minutes without a power reading do not count.",
            "percent", steps((None, "red"), (0, "orange"), (20, "green")),
            Target(f'SELECT 100 * (1 - sum("power_w") / sum("power_baseline_w")) FROM "{ZC}" '
                   f"{where(*ZONE_TAGS, extra=known)}"),
        ),
        stat_panel(
            "Cost in range", "What the energy in the range costs at the dashboard's price "
            "variable (SEK per kWh).", "currencySEK", NEUTRAL,
            Target(f'SELECT {KWH} * $price FROM "{ZC}" {where(*ZONE_TAGS)}'),
        ),
        series_panel(
            "Energy per day and zone", "kWh per zone per day (site-local days).", "kwatth",
            NEUTRAL,
            Target(f'SELECT {KWH} FROM "{ZC}" {where(*ZONE_TAGS)} '
                   "GROUP BY time(1d), \"zone\" fill(none) tz('$timezone')",
                   alias="$tag_zone"),
            bars=True,
        ),
        gauge_panel(
            "Saving per zone", "Saving against all-on dusk to dawn per zone over the range; a "
            "zone near 0 % is burning at full all night.", "percent",
            steps((None, "red"), (0, "orange"), (20, "green")),
            Target(f'SELECT 100 * (1 - sum("power_w") / sum("power_baseline_w")) FROM "{ZC}" '
                   f'{where(*ZONE_TAGS, extra=known)} GROUP BY "zone"', alias="$tag_zone"),
        ),
        series_panel(
            "Power per zone against all-on", "The zones' power over time (solid) against what "
            "they would draw all-on (the saving is the gap).", "watt", NEUTRAL,
            Target(f'SELECT mean("power_w") FROM "{ZC}" {where(*ZONE_TAGS)} '
                   'GROUP BY time($__interval), "zone" fill(none)', alias="$tag_zone"),
            Target(f'SELECT mean("baseline_w") FROM "{ZC}" {where(*ZONE_TAGS)} '
                   'GROUP BY time($__interval), "zone" fill(none)', "B",
                   alias="$tag_zone all-on"),
            w=24,
        ),
        series_panel(
            "Meter against the sum of luminaires", "Per cabinet: the energy meter's active "
            "power and the sum of its luminaires' measured power. A growing gap is load the "
            "luminaires do not account for (a fault, a theft, a wrong meter), or gear that "
            "measures wrongly.", "watt", NEUTRAL,
            Target(f'SELECT mean("power_w") FROM "{dm.METER}" {where(*ALL_TAGS)} '
                   'GROUP BY time($__interval), "gateway" fill(none)', alias="meter $tag_gateway"),
            Target(f'SELECT sum("p") FROM (SELECT mean("power_w") AS "p" FROM "{dm.LUMINAIRE}" '
                   f'{where(*ALL_TAGS)} GROUP BY time($__interval), "gateway", "luminaire") '
                   'WHERE $timeFilter GROUP BY time($__interval), "gateway" fill(none)', "B",
                   alias="luminaires $tag_gateway"),
            w=24,
        ),
    ]
    return board("lykta-energy", "Lykta — Energy", "Power, energy, saving against all-on dusk "
                 "to dawn, cost, meter reconciliation.", panels, settings, "now-7d")  # fmt: skip


def uptime(settings: BoardSettings) -> model.Dashboard:
    """Uptime: gateways online, luminaires answering, comm failures, last seen, drift."""
    panels = [
        stat_panel(
            "Gateways online", "Share of gateway-minutes online in the range (the controller "
            "judges every gateway every minute).", "percent", GOOD_HIGH,
            Target(f'SELECT mean("online") * 100 FROM "{GH}" {where(*ALL_TAGS)}'),
            reduce="mean",
        ),
        stat_panel(
            "Luminaires answering", "Share of luminaire-minutes with a reading in the last "
            "2 minutes (a DALI luminaire that does not answer is never reported as 0).",
            "percent", GOOD_HIGH,
            Target(f'SELECT sum("answering") / sum("luminaires") * 100 FROM "{GH}" '
                   f"{where(*ALL_TAGS)}"),
            reduce="mean",
        ),
        stat_panel(
            "Gateways on the published program", "Share of gateway-minutes on the program "
            "the controller last published to them (100 %: no drift).", "percent", GOOD_HIGH,
            Target(f'SELECT mean("program_ok") * 100 FROM "{GH}" {where(*ALL_TAGS)}'),
            reduce="mean",
        ),
        stat_panel(
            "Readings per minute", "Readings (luminaires, meters, sensors) the controller "
            "received per minute, all selected gateways.", "short", NEUTRAL,
            Target(f'SELECT sum("readings") FROM "{GH}" {where(*ALL_TAGS)} '
                   "GROUP BY time(1m) fill(none)"),
            reduce="mean",
        ),
        series_panel(
            "Online per gateway", "1 while online at the minute's end, 0 while offline.",
            "bool_on_off", steps((None, "red"), (1, "green")),
            Target(f'SELECT min("online") FROM "{GH}" {where(*ALL_TAGS)} '
                   'GROUP BY time($__interval), "gateway" fill(none)', alias="$tag_gateway"),
        ),
        series_panel(
            "Communication failures", "Luminaires that did not answer (mean per minute), per "
            "gateway: DALI bus or gear trouble, or a cabinet off the network.", "short",
            ZERO_GOOD,
            Target(f'SELECT mean("luminaires") - mean("answering") FROM "{GH}" '
                   f'{where(*ALL_TAGS)} GROUP BY time($__interval), "gateway" fill(none)',
                   alias="$tag_gateway"),
            threshold_lines=True,
        ),
        table_panel(
            "Last seen", "Age of each gateway's newest telemetry at the last judged minute; "
            "orange after 2 minutes, red after 10.", "s",
            steps((None, "green"), (120, "orange"), (600, "red")),
            Target(f'SELECT last("last_seen_s") AS "last seen" FROM "{GH}" {where(*ALL_TAGS)} '
                   'GROUP BY "gateway", "zone"', table=True),
            sort_by="last seen",
        ),
        table_panel(
            "Program drift", "Per gateway: 1 when it reports the hash of the program last "
            "published to it, 0 (red) when it runs something else (drift: a failed update, a "
            "tampered cabinet).", "none", steps((None, "red"), (1, "green")),
            Target(f'SELECT last("program_ok") AS "program ok" FROM "{GH}" {where(*ALL_TAGS)} '
                   'GROUP BY "gateway"', table=True),
            sort_by="program ok",
        ),
    ]
    return board("lykta-uptime", "Lykta — Uptime", "Gateways online, luminaires answering, "
                 "communication failures, last seen, program drift.", panels, settings)  # fmt: skip


AL = dm.ALARM
OPEN_ALARMS = (
    f'SELECT last("active") AS "open", "message" FROM "{AL}" {where(*ALL_TAGS)} '
    'GROUP BY "priority", "kind", "source", "gateway", "zone"'
)


def faults(settings: BoardSettings) -> model.Dashboard:
    """Faults: open alarms by priority (safety routes first) and age, MTTR, per gateway."""
    age = [model.DynamicConfigValue(id_val="unit", value="dateTimeFromNow"),
           model.DynamicConfigValue(id_val="displayName", value="raised")]  # fmt: skip
    open_table = table_panel(
        "Open alarms", "Every alarm open at the end of the range, priority 1 (safety routes: "
        "trygghetsstråk) first; 'raised' is its age.", "none",
        steps((None, "red"), (2, "orange"), (3, "yellow")),
        Target(f'SELECT * FROM ({OPEN_ALARMS}) WHERE "open" = true', table=True),
        w=24, sort_by="priority",
    )
    panels = [
        open_table.override_by_name("Time", age),  # type: ignore[attr-defined]
        gauge_panel(
            "Open alarms by priority", "How many alarms are open, per safety priority "
            "(1 = safety routes).", "short", ZERO_GOOD,
            Target(f'SELECT count("open") FROM ({OPEN_ALARMS}) WHERE "open" = true '
                   'GROUP BY "priority"', alias="priority $tag_priority"),
        ),
        stat_panel(
            "Mean time to repair", "Mean time from raise to clear of the alarms cleared in the "
            "range.", "s", steps((None, "green"), (3600, "orange"), (86400, "red")),
            Target(f'SELECT mean("open_s") FROM "{AL}" {where(*ALL_TAGS)}'),
            w=12,
        ),
        series_panel(
            "Alarms raised per gateway", "Alarms raised per gateway and kind over time.",
            "short", ZERO_GOOD,
            Target(f'SELECT count("active") FROM "{AL}" {where(*ALL_TAGS, extra=RAISED)}'
                   ' GROUP BY time($__interval), "gateway", "kind" fill(none)',
                   alias="$tag_gateway $tag_kind"),
            bars=True,
        ),
        gauge_panel(
            "Time to repair per kind", "Mean time to repair per alarm kind.", "s",
            steps((None, "green"), (3600, "orange"), (86400, "red")),
            Target(f'SELECT mean("open_s") FROM "{AL}" {where(*ALL_TAGS)} GROUP BY "kind"',
                   alias="$tag_kind"),
        ),
    ]
    return board("lykta-faults", "Lykta — Faults", "Open alarms by safety priority and age, "
                 "time to repair, alarms per gateway.", panels, settings, "now-7d")  # fmt: skip


def street_safety(settings: BoardSettings) -> model.Dashboard:
    """Street safety: dark minutes (goal 0), presence reactions, incidents, zones below floor."""
    ev = dm.EVENT
    panels = [
        gauge_panel(
            "Dark minutes per zone", "Luminaire-minutes a luminaire that should be lit was "
            "below its zone's safety floor or had a failed lamp. Goal 0; red on any.", "m",
            ZERO_GOOD,
            Target(f'SELECT sum("dark") FROM "{ZC}" {where(*ZONE_TAGS)} GROUP BY "zone"',
                   alias="$tag_zone"),
        ),
        table_panel(
            "Zones below floor now", "Per zone at the last lit minute: luminaires dark, the "
            "mean level and the safety floor (% of full light). Red: someone walks in the dark "
            "there now.", "none", ZERO_GOOD,
            Target(f'SELECT last("dark") AS "dark", "level_pct" AS "level %", "floor_pct" AS '
                   f'"floor %" FROM "{ZC}" {where(*ZONE_TAGS, extra=LIT)} '
                   'GROUP BY "zone", "safety_route"', table=True),
            sort_by="dark",
        ),
        series_panel(
            "Dark minutes over time", "Dark luminaire-minutes per zone over time.", "m",
            ZERO_GOOD,
            Target(f'SELECT sum("dark") FROM "{ZC}" {where(*ZONE_TAGS)} '
                   'GROUP BY time($__interval), "zone" fill(none)', alias="$tag_zone"),
            bars=True, threshold_lines=True,
        ),
        series_panel(
            "Light against the strategy", "Mean level of the answering luminaires against what "
            "the schedule asks (with the class the gateway steps down by counted traffic) and "
            "the safety floor, per zone (%, while lit).", "percent",
            NEUTRAL,
            Target(f'SELECT mean("level_pct") FROM "{ZC}" {where(*ZONE_TAGS)} '
                   'GROUP BY time($__interval), "zone" fill(none)', alias="$tag_zone level"),
            Target(f'SELECT mean("expected_pct") FROM "{ZC}" {where(*ZONE_TAGS)} '
                   'GROUP BY time($__interval), "zone" fill(none)', "B",
                   alias="$tag_zone expected"),
            Target(f'SELECT mean("floor_pct") FROM "{ZC}" {where(*ZONE_TAGS)} '
                   'GROUP BY time($__interval), "zone" fill(none)', "C",
                   alias="$tag_zone floor"),
        ),
        series_panel(
            "Presence and reactions", "Detections per zone, and those the gateway reacted to "
            "by lighting a corridor around the person.", "short", NEUTRAL,
            Target(f'SELECT sum("presence") AS "detections", sum("reactions") AS "reactions" '
                   f'FROM "{ZC}" {where(*ZONE_TAGS)} GROUP BY time($__interval), "zone" '
                   "fill(none)", alias="$tag_zone $col"),
        ),
        stat_panel(
            "Presence response", "Share of detections the gateways reacted to (a detection "
            "in a zone without presence rules, or by day, gets none).", "percent",
            steps((None, "orange"), (90, "green")),
            Target(f'SELECT sum("reactions") / sum("presence") * 100 FROM "{ZC}" '
                   f'{where(*ZONE_TAGS, extra=SEEN)}'),
        ),
        stat_panel(
            "Luminaires lit per reaction", "Mean luminaires a reaction lit up (the corridor "
            "ahead of and behind the person).", "short", NEUTRAL,
            Target(f'SELECT sum("boosted") / sum("reactions") FROM "{ZC}" '
                   f'{where(*ZONE_TAGS, extra=REACTED)}'),
        ),
        series_panel(
            "Incident overrides", "Incident overrides (trygghetsläge: full light asked for by "
            "security staff or police) as the gateways started them, per zone: the bar is the "
            "luminaires raised.", "short", NEUTRAL,
            Target(f'SELECT sum("luminaires") FROM "{ev}" {where(*ALL_TAGS, extra=INCIDENTS)} '
                   'GROUP BY time($__interval), "zone" fill(none)', alias="$tag_zone"),
            bars=True, w=24,
        ),
    ]
    return board("lykta-street-safety", "Lykta — Street safety", "Dark minutes (goal 0), "
                 "presence reactions, incident overrides, zones below their safety floor.",
                 panels, settings)  # fmt: skip


def luminaire_map(settings: BoardSettings) -> model.Dashboard:
    """Map: every luminaire where the inventory places it, coloured by its state."""
    ls = dm.LUMINAIRE_STATE
    last_state = (
        f'SELECT last("state") AS "state", "level_pct" AS "level", "latitude", "longitude" '
        f'FROM "{ls}" {where(*ALL_TAGS)} GROUP BY "luminaire", "zone", "gateway"'
    )
    markers = (
        common_b.MapLayerOptions().type("markers").name("luminaires")
        .location(common_b.FrameGeometrySource().mode(common.FrameGeometrySourceMode.COORDS)
                  .latitude("latitude").longitude("longitude"))
        .config({"showLegend": True,
                 "style": {"color": {"field": "state", "fixed": "dark-green"},
                           "size": {"fixed": 6}, "opacity": 0.9,
                           "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"}}})
    )  # fmt: skip
    lat, lon = MAP_CENTRE
    the_map = _base(
        geomap.Panel()
        # fit the view to the luminaires; the centre is where it starts without data
        .view(geomap.MapViewConfig().id("fit").lat(int(lat)).lon(int(lon)).zoom(12))
        .basemap(common_b.MapLayerOptions().type("default").name("base"))
        .layers([markers]).with_transformation(MERGE).tooltip(geomap.TooltipOptions().mode(geomap_m.TooltipMode.DETAILS)),
        "Luminaires", "Every luminaire at its inventory position (latitude/longitude "
        "columns), coloured by its state at the last judged minute: lit, dimmed, off, below "
        "the safety floor, failed, not answering.", "none", STATE_COLOURS,
        [Target(last_state, table=True)], 24, 16,
    )
    the_map = the_map.mappings(_mapping(STATE_TEXT))  # type: ignore[attr-defined]
    attention = table_panel(
        "Luminaires needing attention", "Luminaires below the floor, failed or not answering "
        "at the last judged minute.", "none", STATE_COLOURS,
        Target(f'SELECT * FROM ({last_state}) WHERE "state" >= {int(LuminaireState.BELOW_FLOOR)}',
               table=True),
        w=24, sort_by="state",
    )
    panels = [the_map, attention.mappings(_mapping(STATE_TEXT))]  # type: ignore[attr-defined]
    return board("lykta-map", "Lykta — Map", "Luminaires on the map, coloured by state.",
                 panels, settings, "now-1h")  # fmt: skip


def boards(settings: BoardSettings = BoardSettings()) -> list[Board]:  # noqa: B008 - frozen
    """Every dashboard, in the order of the folder."""
    return [
        Board("energy", energy(settings)),
        Board("uptime", uptime(settings)),
        Board("faults", faults(settings)),
        Board("street-safety", street_safety(settings)),
        Board("map", luminaire_map(settings)),
    ]
