"""`lykta demo`: the whole system on one machine, on real servers.

Brings up the local stack (Mosquitto + InfluxDB), a controller and N gateways, each driving a
simulated cabinet, shows a live table, and at the end checks what InfluxDB holds against what
the gateways published.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
import uvicorn
from rich.console import Console, Group
from rich.live import Live
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from controller.alarms import AlarmRules
from controller.config import ApiConfig, ControllerConfig, ControllerMqttConfig, ProgramsConfig
from controller.influx_config import InfluxConfig
from controller.service import ControllerService
from fieldsim.cabinet import SimulatedCabinet
from gateway.config import DaliBusConfig
from gateway.daemon import Gateway
from gateway.dali.timing import frame_bus_time
from gateway.program_runner import PresenceSensor, ProgramRunner
from lykta.cli.demo_metrics import StreetWatch, WatchedCabinet
from lykta.cli.demo_site import DemoGateway, write_demo_site
from lykta.cli.output import error
from lykta.clock import ScaledClock
from lykta.config import MqttConfig
from lykta.dali_bus import MAX_GEAR_PER_BUS
from lykta.signing import load_public_key
from lykta.stack import DEFAULT_DATA_DIR, LocalStack, StackError, free_port, influx_query
from lykta.strategy.astronomy import sun_elevation

PROVISIONING = Path(__file__).parents[2] / "dashboards" / "provisioning"

console = Console(soft_wrap=True)
DEMO_SITE = "norrkoping"
DEMO_DB = "lykta"
READING_MEASUREMENTS = ("luminaire", "meter", "sensor")
NORRKOPING = (58.59, 16.19)
SITE_TZ = "Europe/Stockholm"


def _one_bus(value: int) -> int:
    if value > MAX_GEAR_PER_BUS:
        raise typer.BadParameter(
            f"{value}: each demo gateway drives one DALI bus, which holds at most "
            f"{MAX_GEAR_PER_BUS} luminaires (short addresses 0-63); for more, add gateways "
            "(--gateways)"
        )
    return value


def demo(
    gateways: int = typer.Option(
        3, "--gateways", "-g", min=1, max=200, help="Gateways (cabinets)."
    ),
    luminaires: int = typer.Option(
        40, "--luminaires", "-l", min=1, callback=_one_bus,
        help=f"Luminaires per gateway (one DALI bus each: at most {MAX_GEAR_PER_BUS}).",
    ),
    duration: float = typer.Option(
        0, "--duration", "-d", min=0, help="Stop after this many seconds (0 = until Ctrl-C)."
    ),
    interval: float = typer.Option(1.0, help="Telemetry interval per gateway, seconds."),
    summary_json: Path | None = typer.Option(None, help="Write the summary as JSON here."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR / "demo", help="Stack and gateway state."),
    keep_stack: bool = typer.Option(False, help="Leave Mosquitto and InfluxDB running after."),
    at: str | None = typer.Option(
        None,
        help="Start the clock here, e.g. 2027-01-15T01:00 (site-local time unless an offset "
        "is given): gateways, simulator, controller and the sun run at that time.",
    ),
    speed: float = typer.Option(
        1.0, min=0.01, max=3600, help="Run the clock this many times faster (with --at)."
    ),
    pedestrians: float = typer.Option(
        600, min=0, help="Pedestrians per hour (demo time) per cabinet; a third as many cyclists."
    ),
    energy_interval: float = typer.Option(
        120, min=5, help="Seconds (real time) between reads of the luminaires' D4i energy "
        "banks, which give power and energy (each costs ~0.8 s of DALI bus time per luminaire: "
        "a short interval on a full bus starves the level reads).",
    ),
    stage: bool = typer.Option(
        False, help="Stage a night's incidents so every dashboard panel has something to show: "
        "two lamps fail (one is repaired) and an incident override lights the first zone "
        "(needs --duration).",
    ),
) -> None:
    """Run the system locally: stack, controller, gateways; live view; summary at the end."""
    if stage and not duration:
        error(console, "--stage needs --duration (the staged events happen at parts of it)")
        raise typer.Exit(2)
    _log_to(console)
    stack = LocalStack(data_dir / "stack")
    try:
        info = stack.up()
    except StackError as e:
        error(console, e)
        raise typer.Exit(1) from None
    console.print(f"MQTT broker  [bold]{info.mqtt.url}[/]")
    console.print(f"InfluxDB     [bold]{info.influx.url}[/]  database [bold]{DEMO_DB}[/]")
    console.print(
        f"Grafana      point it at this InfluxDB: GF_PATHS_PROVISIONING={PROVISIONING} "
        f"LYKTA_DASHBOARDS={PROVISIONING.parent} "
        f"LYKTA_INFLUX_URL={info.influx.url} LYKTA_INFLUX_DB={DEMO_DB} grafana server "
        "(see docs/dashboards.md; --keep-stack keeps the data after the demo)",
        markup=False, highlight=False,
    )  # fmt: skip
    try:
        # with --at the clock stands until the street is up (see _run)
        clock = ScaledClock(_start_ms(at), speed, running=at is None)
    except ValueError as e:
        error(console, f"--at: {e}")
        raise typer.Exit(2) from None
    try:
        summary = asyncio.run(
            _run(
                info.mqtt_port, info.influx_url, data_dir, gateways, luminaires, duration, interval,
                clock=clock, pedestrians=pedestrians, stage=stage,
                energy_interval=energy_interval,
            )
        )  # fmt: skip
    finally:
        if not keep_stack:
            stack.down()
    _print_summary(summary, info.influx_url, stack_dir=data_dir / "stack" if keep_stack else None)
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary, indent=2) + "\n")
        console.print(f"summary written to {summary_json}")
    if summary["readings_stored"] != summary["readings_published"]:
        raise typer.Exit(1)


async def _run(
    mqtt_port: int,
    influx_url: str,
    data_dir: Path,
    n_gw: int,
    n_lum: int,
    duration: float,
    interval: float,
    *,
    clock: ScaledClock | None = None,
    pedestrians: float = 600,
    stage: bool = False,
    energy_interval: float = 120.0,
) -> dict:
    mqtt = MqttConfig(host="127.0.0.1", port=mqtt_port)
    clock = clock or ScaledClock()
    start_ms = clock.start_ms
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    # The demo's controller and gateways start afresh (registry, keys, programs); InfluxDB
    # keeps earlier runs' data, and so do what must never be lost or change: the controller's
    # identity (its broker session) and InfluxDB spool, the gateways' outboxes and counters.
    _fresh(data_dir / "controller", keep={"instance-id", "spool"})
    for gw_dir in (data_dir / "gateways").glob("*"):
        _fresh(gw_dir, keep={"outbox", "seq", "eseq", "bdseq"})
    shutil.rmtree(data_dir / "site", ignore_errors=True)
    cabinets = [
        SimulatedCabinet(n_lum, seed=i + 1, pedestrians_per_hour=pedestrians,
                         cyclists_per_hour=pedestrians / 3, now=clock.seconds)
        for i in range(n_gw)
    ]
    gw_ids = [f"gw{i + 1:02d}" for i in range(n_gw)]
    strategy, site = write_demo_site(data_dir / "site", cabinets, gw_ids)
    key_file = data_dir / "controller" / "program-signing.key"
    api_port = free_port()
    cfg = ControllerConfig(
        site=DEMO_SITE,
        state_dir=data_dir / "controller",
        tick_s=5,
        mqtt=ControllerMqttConfig(host=mqtt.host, port=mqtt.port),
        influx=InfluxConfig(url=influx_url, database=DEMO_DB),
        programs=ProgramsConfig(key_file=key_file, strategy=strategy),
        api=ApiConfig(host="127.0.0.1", port=api_port),
        alarms=AlarmRules(not_responding_after_s=_silence_limit_s(n_lum, interval, clock.speed)),
    )
    async with ControllerService(cfg, clock=clock.now_ms) as svc:
        svc.issuer.time_scale = clock.speed  # a command's ttl is real travel time
        await svc.wait_ready()
        token = svc.registry.create_token(f"demo-viewer-{start_ms}", "viewer", start_ms)
        api = _QuietServer(
            uvicorn.Config(
                svc.app, host="127.0.0.1", port=api_port, log_level="warning", lifespan="off"
            )
        )
        api_task = asyncio.create_task(api.serve(), name="api")
        console.print(
            f"HTTP API     [bold]http://127.0.0.1:{api_port}/docs[/]  (viewer token: {token})"
        )
        demo_toml = _write_controller_toml(cfg)
        console.print(
            "             operator or security token: [bold]lykta controller token create "
            f"NAME --role operator[/] (or security) [bold]-c {escape(str(demo_toml))}[/]"
        )
        public_key = load_public_key(Path(f"{key_file}.pub"))
        ingest = svc.ingest
        async with contextlib.AsyncExitStack() as es:
            gws = []
            for cab, demo_gw in zip(cabinets, site, strict=True):
                await es.enter_async_context(cab)
                reader = await es.enter_async_context(
                    cab.field_reader(
                        interval_s=max(interval, 5.0),
                        energy_interval_s=energy_interval,
                        prefix=f"{demo_gw.id}-L",
                        wall_clock=clock.seconds,
                    )
                )
                runner = _runner(demo_gw, cab, reader, data_dir, public_key, clock)
                gws.append(
                    Gateway(
                        DEMO_SITE,
                        demo_gw.id,
                        mqtt,
                        reader,
                        data_dir / "gateways" / demo_gw.id,
                        telemetry_interval_s=interval,
                        runner=runner,
                        clock=clock.now_ms,
                    )
                )
            for g in gws:
                await es.enter_async_context(g)
            await _street_up(gws, clock)
            watch = StreetWatch(
                [WatchedCabinet(c, g.runner, d.luminaires)
                 for c, g, d in zip(cabinets, gws, site, strict=True) if g.runner],
                lambda: svc.strategy, clock.now_ms, speed=clock.speed,
            )  # fmt: skip
            watcher = asyncio.create_task(_watch_street(watch), name="street-watch")
            staged = (asyncio.create_task(_stage(svc, cabinets, site, duration), name="stage")
                      if stage else None)  # fmt: skip
            await _live(svc, gws, site, influx_url, clock, duration, stop)
            if staged is not None:
                staged.cancel()
            watch.sample()
            watcher.cancel()
            # judged while the site runs: stopping the gateways takes them offline
            open_alarms = await asyncio.to_thread(svc.registry.open_alarms, DEMO_SITE)
            console.print("stopping gateways (draining their outboxes) ...")
            await asyncio.gather(*(g.stop() for g in gws))
        published = sum(g.link.stats["published_readings"] for g in gws)
        # wait until the controller has every published reading in InfluxDB
        deadline = time.monotonic() + 30
        while ingest.stats.readings_committed < published and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        api.should_exit = True
        await api_task
        stored = _stored(influx_url, start_ms, clock.now_ms())
        latencies = sorted(x for g in gws if g.runner for x in g.runner.presence_latencies_ms)
        return {
            "readings_published": published,
            "readings_received": ingest.stats.readings,
            "readings_stored": stored,
            "gateways": n_gw,
            "luminaires_per_gateway": n_lum,
            "gateways_online_at_end": ingest.tracker.online_count(),
            "gateways_running_program": sum(g.runner.mode == "program" for g in gws if g.runner),
            "dali_frames_sent": sum(g.runner.frames_sent for g in gws if g.runner),
            "presence_events": sum(g.presence_events for g in gws),
            "presence_reactions": sum(g.runner.presence_reactions for g in gws if g.runner),
            "presence_p99_ms": (
                round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2)
                if latencies
                else None
            ),
            **watch.summary(),
            "clock_start": _iso(start_ms),
            "clock_end": _iso(clock.now_ms()),
            "speed": clock.speed,
            "open_alarms": len(open_alarms),
            "open_alarm_kinds": sorted({a.kind for a in open_alarms}),
            "malformed": ingest.stats.malformed,
            "seq_gaps": ingest.stats.gaps,
            "duration_s": round((clock.now_ms() - start_ms) / 1000 / clock.speed, 1),
            "influx_url": influx_url,
            "database": DEMO_DB,
        }


HIGHEST_CLASS = {"M": "M1", "C": "C0", "P": "P1"}  # per EN 13201 series


async def _stage(
    svc: ControllerService, cabinets: list[SimulatedCabinet], site: list[DemoGateway],
    duration: float,
) -> None:  # fmt: skip
    """``--stage``: a lamp fails at a fifth of the run and is repaired at half; another fails
    at two fifths and stays failed; an incident override lights the first zone at a third."""
    first, last = cabinets[0], cabinets[-1]

    async def at(share: float) -> None:
        await asyncio.sleep(max(0.0, duration * share - (time.monotonic() - t0)))

    t0 = time.monotonic()
    await at(0.2)
    first.dali_bus.by_short_address(0).set_lamp_failure(True)
    await at(1 / 3)
    zone = site[0].zone
    series = svc.strategy.zones[zone].series if svc.strategy else None
    if series is not None:
        await svc.create_incident(
            "demo", lighting_class=HIGHEST_CLASS[series], minutes=10,
            reason="staged by lykta demo --stage", zones=[zone], luminaires=[],
        )  # fmt: skip
    await at(0.4)
    last.dali_bus.by_short_address(len(last.dali_bus.gear) - 1).set_lamp_failure(True)
    await at(0.5)
    first.dali_bus.by_short_address(0).set_lamp_failure(False)


def _fresh(directory: Path, *, keep: set[str]) -> None:
    """Remove everything in ``directory`` except the entries named in ``keep``."""
    if not directory.is_dir():
        return
    for p in directory.iterdir():
        if p.name in keep:
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: Ctrl-C stops the whole demo, in order."""

    @contextlib.contextmanager
    def capture_signals(self):  # noqa: ANN201
        yield


def _runner(
    gw: DemoGateway,
    cab: SimulatedCabinet,
    reader,
    data_dir: Path,  # noqa: ANN001
    public_key,
    clock: ScaledClock,
) -> ProgramRunner:  # noqa: ANN001
    """The gateway's program executor on the cabinet's DALI bus: fail-safe until the
    controller's signed program arrives, then the strategy, presence corridors included."""
    driver = reader.drivers[0]
    return ProgramRunner(
        site=DEMO_SITE,
        gateway=gw.id,
        drivers={gw.bus: driver},
        luminaires={lum.id: gw.bus for lum in driver.luminaires},
        state_dir=data_dir / "gateways" / gw.id / "program",
        public_key=public_key,
        latitude=NORRKOPING[0],
        longitude=NORRKOPING[1],
        presence_sensors=[
            PresenceSensor(gw.bus, i, gw.zone, pos)
            for i, pos in enumerate(cab.path.sensor_positions_m)
        ],
        clock=clock.now_ms,
        speed=clock.speed,
        tick_s=max(0.05, min(1.0, 1 / clock.speed)),
    )


STREET_UP_S = 30.0
"""How long a standing demo clock waits for every gateway to run its program."""


async def _street_up(gws: list[Gateway], clock: ScaledClock) -> None:
    """Start a standing clock once every gateway runs the controller's program (at most
    :data:`STREET_UP_S`): the street then starts at ``--at`` with the schedule in force,
    however long the stack and the controller took to come up."""
    if clock.running:
        return
    deadline = time.monotonic() + STREET_UP_S
    while time.monotonic() < deadline and any(
        g.runner is not None and g.runner.mode != "program" for g in gws
    ):
        await asyncio.sleep(0.05)
    clock.start()


async def _watch_street(watch: StreetWatch) -> None:
    while True:
        watch.sample()
        await asyncio.sleep(0.05)


def _start_ms(at: str | None) -> int | None:
    """``--at`` as ms since the epoch; a time without offset is site-local."""
    if at is None:
        return None
    t = datetime.fromisoformat(at)
    if t.tzinfo is None:
        t = t.replace(tzinfo=ZoneInfo(SITE_TZ))
    return int(t.timestamp() * 1000)


def street_clock(clock_ms: int, speed: float) -> str:
    """What time it is on the demo's street: site-local time with its UTC offset, the clock's
    speed and the sun's elevation, e.g.
    ``street time Sat 2027-01-16 00:42:10 CET (UTC+01:00) · 60× · sun -52.3°``."""
    t = datetime.fromtimestamp(clock_ms / 1000, ZoneInfo(SITE_TZ))
    offset = t.strftime("%z")
    sun = sun_elevation(NORRKOPING[0], NORRKOPING[1], t.astimezone(UTC))
    pace = "real time" if speed == 1 else f"{speed:g}×"
    return (
        f"street time {t:%a %Y-%m-%d %H:%M:%S} {t.tzname()} "
        f"(UTC{offset[:3]}:{offset[3:]}) · {pace} · sun {sun:+.1f}°"
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(SITE_TZ)).isoformat(timespec="seconds")


def _stored(influx_url: str, start_ms: int, end_ms: int) -> int:
    """Readings in InfluxDB stamped from ``start_ms`` to ``end_ms``, the demo's own clock
    range (an earlier demo kept in the same InfluxDB at a later ``--at`` is not counted):
    points per reading measurement (one point per reading; a reading's fields share it)."""
    total = 0
    for m in READING_MEASUREMENTS:
        r = influx_query(
            influx_url,
            f"SELECT count(*) FROM \"{m}\" WHERE site='{DEMO_SITE}' "
            f"AND time >= {start_ms}ms AND time <= {end_ms}ms GROUP BY *",
            DEMO_DB,
        )
        for series in r["results"][0].get("series", []):
            # count(*) counts each field; a point has all of its series' fields, so the
            # largest per-field count is the number of points in that series
            total += max(v for v in series["values"][0][1:] if v is not None)
    return total


async def _live(
    svc: ControllerService,
    gws: list[Gateway],
    site: list[DemoGateway],
    influx_url: str,
    clock: ScaledClock,
    duration: float,
    stop: asyncio.Event,
) -> None:
    start_ms = clock.start_ms
    t0 = time.monotonic()
    last_pub, last_t = 0, t0
    stored, stored_at = 0, 0.0
    rate = 0.0
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while not stop.is_set() and (not duration or time.monotonic() - t0 < duration):
            now = time.monotonic()
            pub = sum(g.link.stats["published_readings"] for g in gws)
            if now - last_t >= 1:
                rate, last_pub, last_t = (pub - last_pub) / (now - last_t), pub, now
            if now - stored_at >= 2:
                stored = await asyncio.to_thread(_stored, influx_url, start_ms, clock.now_ms())
                stored_at = now
            live.update(
                _view(svc, gws, site, pub, rate, stored, now - t0, duration, clock.now_ms(),
                      clock.speed)
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.25):
                    await stop.wait()


def _view(
    svc: ControllerService,
    gws: list[Gateway],
    site: list[DemoGateway],
    pub: int,
    rate: float,
    stored: int,
    elapsed: float,
    duration: float,
    clock_ms: int,
    speed: float,
) -> Group:
    ingest = svc.ingest
    title = (
        f"Lykta demo — site {DEMO_SITE} — {elapsed:.0f}"
        + (f"/{duration:.0f}" if duration else "")
        + " s (Ctrl-C to stop)"
    )
    t = Table(title=title, caption=street_clock(clock_ms, speed), caption_justify="left")
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("gateways online", f"{ingest.tracker.online_count()} / {len(gws)}")
    t.add_row("luminaires", str(sum(g.link.luminaire_count or 0 for g in gws)))
    t.add_row("readings published", f"{pub:,}")
    t.add_row("readings/s published", f"{rate:,.0f}")
    t.add_row("readings received by controller", f"{ingest.stats.readings:,}")
    t.add_row("readings stored (InfluxDB count)", f"{stored:,}")
    w = ingest.writer.stats
    t.add_row("writer: lines written / spooled", f"{w.lines_written:,} / {w.lines_spooled:,}")
    t.add_row("gateway outbox (batches waiting)", str(sum(len(g.link.outbox) for g in gws)))
    t.add_row("malformed messages / seq gaps", f"{ingest.stats.malformed} / {ingest.stats.gaps}")
    t.add_row("open alarms", str(len(svc.registry.open_alarms(DEMO_SITE))))
    per = Table(title="gateways")
    for col in ("gateway", "zone", "mode", "mean arc level", "boosted", "presence", "frames"):
        per.add_column(col, justify="left" if col in ("gateway", "zone", "mode") else "right")
    for g, d in zip(gws, site, strict=True):
        r = g.runner
        assert r is not None
        levels = list(r.commanded.values())
        per.add_row(
            d.id,
            d.zone,
            r.mode,
            f"{sum(levels) / len(levels):.0f}" if levels else "-",
            str(len(r.boosts)),
            str(g.presence_events),
            str(r.frames_sent),
        )
    return Group(t, per)


def _silence_limit_s(n_lum: int, interval: float, speed: float) -> float:
    """The demo controller's "luminaire not responding" silence, in street seconds.

    A gateway reads each luminaire once per round of state queries, and a round takes real
    time: QUERY STATUS + QUERY ACTUAL LEVEL per luminaire within the bus budget, which D4i
    bank reads share (at ``--energy-interval 5`` a round of 12 luminaires takes ~7 s). At
    ``--speed`` S a round lasts S times as long on the street's clock, and the default
    3 minutes would call every luminaire silent. So: three rounds, at least 30 s of real
    silence, scaled to the street's clock; never less than the controller's default."""
    query_s = frame_bus_time(16, is_query=True)
    share = DaliBusConfig.model_fields["budget_share"].default
    round_real_s = max(interval, n_lum * 2 * query_s / share)
    default = AlarmRules.model_fields["not_responding_after_s"].default
    return max(default, max(30.0, 3 * round_real_s) * speed)


def _log_to(out: Console) -> None:
    """Log through the live view's console, so a warning prints above the table instead of
    leaving a torn copy of it in the scrollback."""
    handler = RichHandler(console=out, show_path=False, markup=False, log_time_format="%X")
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)


def _write_controller_toml(cfg: ControllerConfig) -> Path:
    """The demo controller's settings as a ``controller.toml`` beside its state, so the usual
    commands (``lykta controller token create``, ``lykta alarms -c``) work on the demo."""

    def q(v: object) -> str:
        return json.dumps(str(v))  # a JSON string is a valid TOML basic string

    programs = cfg.programs
    lines = [
        "# written by `lykta demo` for the demo's controller; rewritten on every demo start",
        f"site = {q(cfg.site)}",
        f"state_dir = {q(cfg.state_dir.absolute())}",
        "[mqtt]",
        f"host = {q(cfg.mqtt.host)}",
        f"port = {cfg.mqtt.port}",
        "[influx]",
        f"url = {q(cfg.influx.url)}",
        f"database = {q(cfg.influx.database)}",
        "[programs]",
        f"key_file = {q(programs.key_file.absolute())}",
        *([f"strategy = {q(programs.strategy.absolute())}"] if programs.strategy else []),
        "[api]",
        f"host = {q(cfg.api.host)}",
        f"port = {cfg.api.port}",
    ]
    path = cfg.state_dir / "controller.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _print_summary(s: dict, influx_url: str, stack_dir: Path | None = None) -> None:
    """The closing lines; ``stack_dir`` is where the stack was kept up (``--keep-stack``)."""
    ok = s["readings_stored"] == s["readings_published"]
    console.print(
        f"\n[bold]{'OK' if ok else 'MISMATCH'}[/]: {s['readings_published']:,} readings published"
        f" by {s['gateways']} gateways, {s['readings_stored']:,} stored in InfluxDB, "
        f"{s['malformed']} malformed, {s['seq_gaps']} seq gaps, in {s['duration_s']} s."
    )
    query = (
        f"curl -G {influx_url}/query --data-urlencode db={DEMO_DB} "
        '--data-urlencode "q=SELECT mean(power_w) FROM luminaire GROUP BY gateway"'
    )
    if stack_dir is None:
        console.print(f"Look next (run with --keep-stack to keep the servers up): {query}",
                      markup=False, highlight=False)  # fmt: skip
    else:
        console.print(
            f"The servers are still up. Look next: {query}\n"
            f"Stop them with: lykta stack down --data-dir {stack_dir}",
            markup=False, highlight=False,
        )
