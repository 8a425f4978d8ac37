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
import signal
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from controller.influx_config import InfluxConfig
from controller.influx_writer import InfluxWriter
from controller.ingest import Ingest
from fieldsim.cabinet import SimulatedCabinet
from gateway.daemon import Gateway
from gateway.program_runner import PresenceSensor, ProgramRunner
from lykta.config import MqttConfig
from lykta.stack import DEFAULT_DATA_DIR, LocalStack, StackError, influx_query

console = Console(soft_wrap=True)
DEMO_SITE = "norrkoping"
DEMO_DB = "lykta"
READING_MEASUREMENTS = ("luminaire", "meter", "sensor")
NORRKOPING = (58.59, 16.19)


def demo(
    gateways: int = typer.Option(
        3, "--gateways", "-g", min=1, max=200, help="Gateways (cabinets)."
    ),
    luminaires: int = typer.Option(
        40, "--luminaires", "-l", min=1, max=1024, help="Luminaires per gateway."
    ),
    duration: float = typer.Option(
        0, "--duration", "-d", min=0, help="Stop after this many seconds (0 = until Ctrl-C)."
    ),
    interval: float = typer.Option(1.0, help="Telemetry interval per gateway, seconds."),
    summary_json: Path | None = typer.Option(None, help="Write the summary as JSON here."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR / "demo", help="Stack and gateway state."),
    keep_stack: bool = typer.Option(False, help="Leave Mosquitto and InfluxDB running after."),
) -> None:
    """Run the system locally: stack, controller, gateways; live view; summary at the end."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stack = LocalStack(data_dir / "stack")
    try:
        info = stack.up()
    except StackError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
    console.print(f"MQTT broker  [bold]{info.mqtt.url}[/]")
    console.print(f"InfluxDB     [bold]{info.influx.url}[/]  database [bold]{DEMO_DB}[/]")
    try:
        summary = asyncio.run(
            _run(
                info.mqtt_port, info.influx_url, data_dir, gateways, luminaires, duration, interval
            )
        )
    finally:
        if not keep_stack:
            stack.down()
    _print_summary(summary, info.influx_url)
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
) -> dict:
    mqtt = MqttConfig(host="127.0.0.1", port=mqtt_port)
    start_ms = int(time.time() * 1000)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    writer = InfluxWriter(
        InfluxConfig(url=influx_url, database=DEMO_DB), spool_dir=data_dir / "controller-spool"
    )
    async with writer, Ingest(mqtt, DEMO_SITE, writer) as ingest:
        await ingest.wait_connected()
        cabinets = [
            SimulatedCabinet(n_lum, seed=i + 1, pedestrians_per_hour=600, cyclists_per_hour=200)
            for i in range(n_gw)
        ]
        async with contextlib.AsyncExitStack() as es:
            gws = []
            for i, cab in enumerate(cabinets):
                gw_id = f"gw{i + 1:02d}"
                await es.enter_async_context(cab)
                reader = await es.enter_async_context(
                    cab.field_reader(
                        interval_s=max(interval, 5.0), energy_interval_s=120, prefix=f"{gw_id}-L"
                    )
                )
                gws.append(
                    Gateway(
                        DEMO_SITE,
                        gw_id,
                        mqtt,
                        reader,
                        data_dir / "gateways" / gw_id,
                        telemetry_interval_s=interval,
                        runner=_runner(gw_id, cab, reader, data_dir),
                    )
                )
            for g in gws:
                await es.enter_async_context(g)
            await _live(ingest, gws, influx_url, start_ms, duration, stop)
            console.print("stopping gateways (draining their outboxes) ...")
            await asyncio.gather(*(g.stop() for g in gws))
        published = sum(g.link.stats["published_readings"] for g in gws)
        # wait until the controller has every published reading, then flush to InfluxDB
        deadline = time.monotonic() + 30
        while ingest.stats.readings_committed < published and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stored = _stored(influx_url, start_ms)
        return {
            "readings_published": published,
            "readings_received": ingest.stats.readings,
            "readings_stored": stored,
            "gateways": n_gw,
            "luminaires_per_gateway": n_lum,
            "gateways_online_at_end": ingest.tracker.online_count(),
            "malformed": ingest.stats.malformed,
            "seq_gaps": ingest.stats.gaps,
            "duration_s": round((time.time() * 1000 - start_ms) / 1000, 1),
            "influx_url": influx_url,
            "database": DEMO_DB,
        }


def _runner(gw_id: str, cab: SimulatedCabinet, reader, data_dir: Path) -> ProgramRunner:  # noqa: ANN001
    """The gateway's program executor on the cabinet's DALI bus (fail-safe until a signed
    program arrives)."""
    driver = reader.drivers[0]
    bus = driver.bus.name
    return ProgramRunner(
        site=DEMO_SITE,
        gateway=gw_id,
        drivers={bus: driver},
        luminaires={lum.id: bus for lum in driver.luminaires},
        state_dir=data_dir / "gateways" / gw_id / "program",
        public_key=None,
        latitude=NORRKOPING[0],
        longitude=NORRKOPING[1],
        presence_sensors=[
            PresenceSensor(bus, i, f"zone-{gw_id}", pos)
            for i, pos in enumerate(cab.path.sensor_positions_m)
        ],
    )


def _stored(influx_url: str, start_ms: int) -> int:
    """Readings in InfluxDB since ``start_ms``: points per reading measurement (one point
    per reading; a reading's fields share its point)."""
    total = 0
    for m in READING_MEASUREMENTS:
        r = influx_query(
            influx_url,
            f"SELECT count(*) FROM \"{m}\" WHERE site='{DEMO_SITE}' "
            f"AND time >= {start_ms}ms GROUP BY *",
            DEMO_DB,
        )
        for series in r["results"][0].get("series", []):
            # count(*) counts each field; a point has all of its series' fields, so the
            # largest per-field count is the number of points in that series
            total += max(v for v in series["values"][0][1:] if v is not None)
    return total


async def _live(
    ingest: Ingest,
    gws: list[Gateway],
    influx_url: str,
    start_ms: int,
    duration: float,
    stop: asyncio.Event,
) -> None:
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
                stored = await asyncio.to_thread(_stored, influx_url, start_ms)
                stored_at = now
            live.update(_table(ingest, gws, pub, rate, stored, now - t0, duration))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.25):
                    await stop.wait()


def _table(
    ingest: Ingest,
    gws: list[Gateway],
    pub: int,
    rate: float,
    stored: int,
    elapsed: float,
    duration: float,
) -> Table:
    t = Table(
        title=f"Lykta demo — site {DEMO_SITE} — {elapsed:.0f}"
        + (f"/{duration:.0f}" if duration else "")
        + " s (Ctrl-C to stop)"
    )
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("gateways online", f"{ingest.tracker.online_count()} / {len(gws)}")
    t.add_row("luminaires", str(sum(g.link.luminaire_count or 0 for g in gws)))
    t.add_row("readings published", f"{pub:,}")
    t.add_row("readings/s published", f"{rate:,.0f}")
    t.add_row("readings received by controller", f"{ingest.stats.readings:,}")
    t.add_row("readings stored (InfluxDB count)", f"{stored:,}")
    t.add_row(
        "writer: lines written / spooled",
        f"{ingest.writer.stats.lines_written:,} / {ingest.writer.stats.lines_spooled:,}",
    )
    t.add_row("gateway outbox (batches waiting)", str(sum(len(g.link.outbox) for g in gws)))
    t.add_row("malformed messages", str(ingest.stats.malformed))
    t.add_row("telemetry seq gaps", str(ingest.stats.gaps))
    return t


def _print_summary(s: dict, influx_url: str) -> None:
    ok = s["readings_stored"] == s["readings_published"]
    console.print(
        f"\n[bold]{'OK' if ok else 'MISMATCH'}[/]: {s['readings_published']:,} readings published"
        f" by {s['gateways']} gateways, {s['readings_stored']:,} stored in InfluxDB, "
        f"{s['malformed']} malformed, {s['seq_gaps']} seq gaps, in {s['duration_s']} s."
    )
    console.print(
        f"Look next: curl -G {influx_url}/query --data-urlencode db={DEMO_DB} "
        '--data-urlencode "q=SELECT mean(power_w) FROM luminaire GROUP BY gateway"'
        " (run with --keep-stack to keep the servers up)"
    )
