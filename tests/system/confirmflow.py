"""Helpers for the end-to-end confirmation tests: controllers as real processes
(``lykta controller run``), gateways as real :class:`gateway.link.GatewayLink` objects sending
numbered batches, and a count of what InfluxDB holds per gateway and ``seq``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gateway.link import GatewayLink
from lykta.config import MqttConfig
from lykta.contract import LuminaireReading, TelemetryBatch
from lykta.stack import StackInfo, influx_query

# batch seq n is stamped T0 + n s: yesterday, midnight UTC (inside ingest's plausible window)
T0 = (int(time.time()) // 86_400 - 1) * 86_400_000
LUMINAIRES = 4


def batch(seq: int) -> TelemetryBatch:
    """Batch number ``seq`` of a test gateway: its timestamp names its seq."""
    ts = T0 + seq * 1000
    return TelemetryBatch(
        seq=0,
        ts=ts,
        luminaires=[
            LuminaireReading(id=f"L{k}", ts=ts, level=seq % 250, power_w=5.0 + k, energy_wh=seq)
            for k in range(LUMINAIRES)
        ],
    )


def controller_toml(
    path: Path, stack: StackInfo, site: str, db: str, *, session_expiry_s: int = 300
) -> Path:
    """A controller.toml for a test controller process with its own state dir."""
    state = path.parent / f"{path.stem}-state"
    path.write_text(
        f"""site = "{site}"
state_dir = "{state}"
tick_s = 60
[mqtt]
host = "127.0.0.1"
port = {stack.mqtt_port}
session_expiry_s = {session_expiry_s}
[influx]
url = "{stack.influx_url}"
database = "{db}"
flush_interval_s = 0.2
[programs]
key_file = "{state}/program.key"
[api]
enabled = false
"""
    )
    return path


class ControllerProcess:
    """``lykta controller run --config CONFIG`` as a child process."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log = config.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ControllerProcess:
        lykta = Path(sys.executable).parent / "lykta"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(lykta), "controller", "run", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def stop(self, sig: int = signal.SIGTERM, within_s: float = 30) -> int:
        """Send ``sig`` and wait for the exit; return the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(within_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"controller did not stop on {sig!r}: {self.tail()}") from None

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ControllerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop(signal.SIGKILL)


class Load:
    """Gateways sending a numbered batch every ``period_s`` until :meth:`stop`."""

    def __init__(
        self,
        mqtt: MqttConfig,
        site: str,
        names: list[str],
        state: Path,
        *,
        period_s: float = 0.02,
        confirm_timeout_s: float = 1.0,
    ) -> None:
        self.links = [
            GatewayLink(mqtt, site, g, state / g, confirm_timeout_s=confirm_timeout_s)
            for g in names
        ]
        self.period_s = period_s
        self.sent: dict[str, int] = dict.fromkeys(names, 0)
        self._task: asyncio.Task[None] | None = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Load:
        for link in self.links:
            await self._stack.enter_async_context(link)
        self._task = asyncio.create_task(self._send())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        await self._stack.aclose()

    async def _send(self) -> None:
        while True:
            for link in self.links:
                n = self.sent[link.gateway]
                b = batch(n)
                link.send_telemetry(b)
                assert b.seq == n
                self.sent[link.gateway] = n + 1
            await asyncio.sleep(self.period_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def confirms(self) -> int:
        return sum(link.stats["confirms"] for link in self.links)

    def waiting(self) -> int:
        return sum(len(link.outbox) for link in self.links)


def stored_seqs(stack: StackInfo, db: str) -> dict[str, set[int]]:
    """Per gateway, the ``seq`` of every batch InfluxDB holds completely (all its readings)."""
    r = influx_query(
        stack.influx_url,
        f'SELECT count("level") FROM "luminaire" WHERE time >= {T0}ms '
        f"AND time < {T0 + 20_000_000}ms GROUP BY gateway, time(1s) fill(none)",
        db,
    )
    out: dict[str, set[int]] = {}
    for s in r["results"][0].get("series", []):
        out[s["tags"]["gateway"]] = {
            (t - T0) // 1000 for t, n in s["values"] if n == LUMINAIRES
        }
    return out
