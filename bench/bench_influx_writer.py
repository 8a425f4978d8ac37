"""InfluxWriter throughput against the ceiling, on a private InfluxDB 1.x in the same run.

- ceiling: pre-built 5000-line bodies POSTed to ``/write`` back to back by a bare httpx client
  over one connection, and over two side by side (what the server takes at best);
- writer: the same lines handed to :class:`InfluxWriter` 100 at a time (one MQTT telemetry
  message's worth), then ``flush()``.

Each run writes into a fresh database. Prints median lines/s of the runs and the ratio.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from controller.datamodel import telemetry_lines
from controller.influx_writer import InfluxConfig, InfluxWriter
from lykta.contract import LuminaireReading, TelemetryBatch
from lykta.stack import LocalStack, influx_query

LUMINAIRES = 2000
STEPS = 100  # readings per luminaire -> 200 000 lines
RUNS = 5
T0 = 1_764_000_000_000


def _lines() -> list[str]:
    out: list[str] = []
    for step in range(STEPS):
        batch = TelemetryBatch(
            seq=step,
            ts=T0 + step * 60_000,
            luminaires=[
                LuminaireReading(id=f"L{i:04d}", ts=T0 + step * 60_000, level=200,
                                 power_w=30.0 + i % 7, energy_wh=step * 0.5 + i)
                for i in range(LUMINAIRES)
            ],
        )
        out += telemetry_lines("bench", f"gw-{step % 10}", batch)
    return out


async def _ceiling(url: str, db: str, bodies: list[bytes], connections: int) -> None:
    todo = list(reversed(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:

        async def post_all() -> None:
            while todo:
                r = await c.post(
                    "/write", params={"db": db, "precision": "ms"}, content=todo.pop()
                )
                r.raise_for_status()

        await asyncio.gather(*(post_all() for _ in range(connections)))


async def _writer(url: str, db: str, lines: list[str], spool: Path) -> None:
    async with InfluxWriter(InfluxConfig(url=url, database=db), spool_dir=spool) as w:
        for i in range(0, len(lines), 100):
            await w.write(lines[i : i + 100])
        await w.flush()
        assert w.stats.lines_written == len(lines), w.stats


def _count(url: str, db: str) -> int:
    res = influx_query(url, 'SELECT count("level") FROM "luminaire"', db)["results"][0]
    return res["series"][0]["values"][0][1]


def main() -> None:
    """Print lines/s medians of the ceiling and the writer, and their ratio."""
    lines = _lines()
    bodies = ["\n".join(lines[i : i + 5000]).encode() for i in range(0, len(lines), 5000)]
    rates: dict[str, list[float]] = {"ceiling1": [], "ceiling2": [], "writer": []}
    with tempfile.TemporaryDirectory() as d, LocalStack(Path(d) / "stack") as stack:
        url = stack.influx_url
        for run in range(RUNS):
            for name in rates:
                db = f"bench_{name}_{run}"
                influx_query(url, f'CREATE DATABASE "{db}"')
                t0 = time.perf_counter()
                if name.startswith("ceiling"):
                    asyncio.run(_ceiling(url, db, bodies, int(name[-1])))
                else:
                    asyncio.run(_writer(url, db, lines, Path(d) / f"spool{run}"))
                rates[name].append(len(lines) / (time.perf_counter() - t0))
                assert _count(url, db) == len(lines), f"{name}: lines missing"
                influx_query(url, f'DROP DATABASE "{db}"')
    one = statistics.median(rates["ceiling1"])
    ceiling = statistics.median(rates["ceiling2"])
    writer = statistics.median(rates["writer"])
    print(f"bare /write, 5000-line bodies, 1 connection:  {one:10,.0f} lines/s")
    print(f"bare /write, 5000-line bodies, 2 connections: {ceiling:10,.0f} lines/s (ceiling)")
    print(f"InfluxWriter, 100 lines per write() call:     {writer:10,.0f} lines/s "
          f"({writer / ceiling:.2f} x ceiling)")
    print(f"(median of {RUNS} runs of {len(lines):,} lines into a fresh database each)")


if __name__ == "__main__":
    main()
