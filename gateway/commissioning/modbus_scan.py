"""``lykta commission scan modbus``: find the devices on a Modbus line and propose a profile for
each (I/O shell), recorded in the commissioning journal so an interrupted scan continues.

For every line setting to try (one for TCP), every unit id gets one short request (a read of
one holding register, or an input register where a profile forbids that): any answer — data
or an exception (but a TCP gateway's 10/11, which say nobody answered behind it) — means a
device is there; silence for :meth:`LineSettings.silence_s` means
none. A found device is identified at once against every shipped profile
(:mod:`gateway.modbus.identify`), at the same settings.

When to stop trying settings: after the first setting at which devices answered (a line runs
one setting), unless ``all_settings`` — a factory meter on a working line answers only at its
own; and at once when ``expect`` devices have been found. Ids found at one setting are not
asked again at the next.

The journal keeps, per line (``data["modbus"]["lines"][port]``): the settings and ids, the
settings finished, the next id of the one under way, every device found with its verdicts.
It is saved after every device found and every few ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.commissioning.journal import Journal
from gateway.modbus.access import ModbusAccess, SettingsRefused, parse_endpoint
from gateway.modbus.identify import Answer, Verdict, judge, probe_requests, proposal, rank
from gateway.modbus.line_settings import LineSettings
from gateway.modbus.planner import ReadRequest
from gateway.modbus.poller import ReadFailure, SerialLine, TcpEndpoint
from gateway.modbus.profile import DeviceProfile

ProgressFn = Callable[[str, float | None, float | None, str | None], None]
GATEWAY_EXCEPTIONS = frozenset({10, 11})
"""GATEWAY PATH UNAVAILABLE, GATEWAY TARGET DEVICE FAILED TO RESPOND: a Modbus TCP gateway's
way of saying nobody answered behind it — absence, not a device."""
TCP = "tcp"
SAVE_EVERY = 8
TCP_SILENCE_S = 0.3


@dataclass(frozen=True)
class ModbusScanOptions:
    """What to scan: ``port`` (serial device or ``tcp://host:port``), unit ``ids``, the line
    ``settings`` to try in order (ignored on TCP), and when to stop."""

    port: str
    ids: list[int]
    settings: list[LineSettings]
    all_settings: bool = False
    expect: int | None = None
    timeout_s: float | None = None

    def args(self) -> dict[str, Any]:
        """The options as the journal keeps them."""
        return {"port": self.port, "ids": self.ids,
                "settings": [str(s) for s in self.settings] if not self.tcp else [TCP],
                "all_settings": self.all_settings, "expect": self.expect,
                "timeout_s": self.timeout_s}

    @property
    def tcp(self) -> bool:
        """Whether the port is a Modbus TCP endpoint."""
        return self.port.startswith("tcp://")


def presence_request(profiles: dict[str, DeviceProfile]) -> ReadRequest:
    """The request that asks "is anyone at this unit id": one holding register at 0, or one
    input register at 0 if some profile forbids reading the former."""
    for req in (ReadRequest(3, 0, 1), ReadRequest(4, 0, 1)):
        if not any(f.function == req.function and f.start <= req.start <= f.end
                   for p in profiles.values() for f in p.forbidden):
            return req
    raise ValueError("every shipped profile forbids reading register 0: cannot scan")


def lines(journal: Journal) -> dict[str, dict[str, Any]]:
    """The Modbus lines recorded in ``journal`` (port -> record)."""
    return journal.data.setdefault("modbus", {}).setdefault("lines", {})


class ModbusScan:
    """One scan of one line, resumable through ``journal``."""

    def __init__(self, journal: Journal, profiles: dict[str, DeviceProfile], *,
                 on_progress: ProgressFn | None = None) -> None:
        self.journal = journal
        self.profiles = profiles
        self.on_progress = on_progress
        self.presence = presence_request(profiles)

    def _tell(self, completed: float | None, total: float | None, message: str | None) -> None:
        if self.on_progress is not None:
            self.on_progress("modbus scan", completed, total, message)

    def record(self, options: ModbusScanOptions, *, restart: bool = False) -> dict[str, Any]:
        """The journal's record of this line, new if there is none (or ``restart``, or it was
        made with other options)."""
        rec = lines(self.journal).get(options.port)
        if rec is None or restart or rec.get("args") != options.args():
            rec = {"args": options.args(), "done": [], "next": {}, "found": {},
                   "garbled": {}, "requests": 0, "elapsed_s": 0.0, "finished": False}
            lines(self.journal)[options.port] = rec
            self.journal.save()
        return rec

    def _link(self, options: ModbusScanOptions, setting: LineSettings | None
              ) -> SerialLine | TcpEndpoint:
        endpoint = parse_endpoint(options.port)
        if endpoint is not None:
            return endpoint
        assert setting is not None
        return SerialLine(options.port, setting.baudrate, setting.parity, setting.stopbits,
                          setting.bytesize)

    def _timeout(self, options: ModbusScanOptions, setting: LineSettings | None) -> float:
        if options.timeout_s is not None:
            return options.timeout_s
        return TCP_SILENCE_S if setting is None else setting.silence_s()

    async def run(self, options: ModbusScanOptions, *, restart: bool = False) -> dict[str, Any]:
        """Scan (or continue scanning) the line; returns its journal record."""
        rec = self.record(options, restart=restart)
        if rec["finished"]:
            return rec
        names = rec["args"]["settings"]
        settings: list[LineSettings | None] = [None] if options.tcp else list(options.settings)
        total = len(names) * len(options.ids)
        started = time.monotonic()
        try:
            for name, setting in zip(names, settings, strict=True):
                if name in rec["done"]:
                    continue
                if self._enough(rec, options) or (not options.all_settings and any(
                        d["settings"] in rec["done"] for d in rec["found"].values())):
                    break  # (also on resume after the setting that found them)
                try:
                    await self._scan_setting(rec, options, name, setting, names, total)
                except SettingsRefused as exc:
                    rec.setdefault("refused", {})[name] = str(exc)
                rec["done"].append(name)
                rec["next"].pop(name, None)
                self._save(rec, started)
                started = time.monotonic()
            rec["finished"] = True
            self._tell(total, total, "done")
        finally:
            self._save(rec, started)
        return rec

    def _enough(self, rec: dict[str, Any], options: ModbusScanOptions) -> bool:
        return options.expect is not None and len(rec["found"]) >= options.expect

    def _save(self, rec: dict[str, Any], started: float) -> None:
        rec["elapsed_s"] = round(rec["elapsed_s"] + time.monotonic() - started, 3)
        self.journal.save()

    async def _scan_setting(self, rec: dict[str, Any], options: ModbusScanOptions, name: str,
                            setting: LineSettings | None, names: list[str], total: int) -> None:
        base = names.index(name) * len(options.ids)
        start = int(rec["next"].get(name, 0))
        timeout = self._timeout(options, setting)
        async with ModbusAccess(self._link(options, setting), timeout_s=timeout,
                                settle_s=min(timeout, 0.2)) as bus:
            # a device found before an interruption but not yet identified
            for unit, dev in rec["found"].items():
                if dev["settings"] == name and "verdicts" not in dev:
                    await self._identify(bus, rec, int(unit))
            for i in range(start, len(options.ids)):
                unit = options.ids[i]
                self._tell(base + i, total, f"{name}: unit {unit} "
                           f"({len(rec['found'])} found)")
                if str(unit) in rec["found"]:
                    continue
                got = await bus.read(unit, self.presence.function, self.presence.start,
                                     self.presence.count)
                rec["requests"] += 1
                if isinstance(got, list) or (got.answered
                                             and got.code not in GATEWAY_EXCEPTIONS):
                    rec["found"][str(unit)] = {"unit": unit, "settings": name}
                    rec["next"][name] = i + 1
                    self.journal.save()
                    await self._identify(bus, rec, unit)
                    if self._enough(rec, options):
                        break
                elif got.kind == "garbled":
                    rec["garbled"][name] = rec["garbled"].get(name, 0) + 1
                if (i + 1) % SAVE_EVERY == 0:
                    rec["next"][name] = i + 1
                    self.journal.save()

    async def _identify(self, bus: ModbusAccess, rec: dict[str, Any], unit: int) -> None:
        """Probe ``unit`` for every profile; record verdicts and the proposal."""
        answers_by_request: dict[ReadRequest, Answer] = {}
        verdicts: list[Verdict] = []
        for name, profile in sorted(self.profiles.items()):
            answers: dict[ReadRequest, Answer] = {}
            for req in probe_requests(profile, self.profiles.values()):
                if req not in answers_by_request:
                    got = await bus.read(unit, req.function, req.start, req.count)
                    rec["requests"] += 1
                    answers_by_request[req] = _answer(got)
                answers[req] = answers_by_request[req]
            verdicts.append(judge(name, profile, answers))
        best = proposal(verdicts)
        dev = rec["found"][str(unit)]
        dev["verdicts"] = [{"profile": v.profile, "score": v.score, "by": v.by,
                            "reason": v.reason} for v in rank(verdicts)]
        dev["profile"] = best.profile if best else None
        dev["by"] = best.by if best else None
        dev["reason"] = best.reason if best else "no profile fits: " + "; ".join(
            f"{v.profile}: {v.reason}" for v in rank(verdicts)[:2])
        if best is not None:
            dev["serial_number"] = await self._serial(bus, unit, self.profiles[best.profile])
        self.journal.save()

    async def _serial(self, bus: ModbusAccess, unit: int, profile: DeviceProfile) -> int | None:
        from gateway.modbus.decode import decode_register

        spec = next((s for s in profile.settings if s.field == "serial_number"), None)
        if spec is None:
            return None
        got = await bus.read(unit, spec.function, spec.address, spec.count)
        return int(decode_register(profile, spec, got)) if isinstance(got, list) else None


def _answer(got: list[int] | ReadFailure) -> Answer:
    if isinstance(got, list):
        return got
    return got.code if got.kind == "exception" and got.code not in GATEWAY_EXCEPTIONS else None


def found_devices(journal_data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Modbus device found on every line (for the report and the gateway config)."""
    out = []
    for port, rec in journal_data.get("modbus", {}).get("lines", {}).items():
        for _, dev in sorted(rec["found"].items(), key=lambda kv: int(kv[0])):
            out.append({"line": port, **dev})
    return out
