"""A simulated street cabinet, in-process: the field side of one gateway for the demo and tests.

It holds a DALI bus of simulated control gear, a path with pedestrians and cyclists passing
presence sensors, and three Modbus devices on one Modbus TCP server on 127.0.0.1 — an Eastron
SDM630 cabinet meter whose power and energy come from the luminaires (plus the cabinet's own
load), a radar presence sensor counting the people on the path, and a lux sensor::

    async with SimulatedCabinet(luminaires=12) as cabinet:
        poller = ModbusPoller(cabinet.modbus_endpoint, cabinet.modbus_devices())
        driver = DaliLuminaireDriver(cabinet.dali, cabinet.dali_luminaires())
        ...
        # or, for the gateway daemon: the real field reader wired to the cabinet
        async with cabinet.field_reader() as reader:
            readings = await reader.read(now_ms)

People passing the sensors also send DALI Part 303 occupancy events on the bus (one simulated
occupancy sensor per presence sensor, control device short addresses 0, 1, …). Like a real
Part 303 sensor with its report timer set, each also repeats its state while vacant every
``report_s`` seconds (repeat events, "nobody here"), so the gateway can tell an empty street
from a dead sensor; a sensor in :attr:`SimulatedCabinet.silent_sensors` has died silently and
sends nothing at all. With
``rtu=True`` the same devices are also served over Modbus RTU on a pseudo-terminal
(``cabinet.rtu_port``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fieldsim.dali import GearSpec, SimulatedDaliBus, SimulatedDaliTransport
from fieldsim.modbus import ModbusRtuSimulator, ModbusTcpSimulator, SimulatedModbusDevice
from fieldsim.pedestrians import PathSimulation
from gateway.dali.driver import DaliLuminaireDriver, Luminaire
from gateway.fieldbus import FieldBusReader
from gateway.modbus.poller import ModbusDevice, ModbusPoller, SerialLine, TcpEndpoint
from gateway.modbus.profile import DeviceProfile, load_profiles

METER_UNIT, PRESENCE_UNIT, LUX_UNIT = 1, 2, 3


@dataclass
class CabinetMeter:
    """Electrical values of a three-phase cabinet feed carrying the luminaires."""

    dali: SimulatedDaliBus
    now: Callable[[], float]
    base_load_w: float = 15.0  # the gateway, router and DALI power supply in the cabinet
    energy_kwh: float = 0.0
    _t: float | None = None

    def values(self) -> Mapping[str, float]:
        """SDM630 field values now (energy integrates the total power since the last call)."""
        t = self.now()
        phases = [self.base_load_w / 3] * 3
        for i, g in enumerate(self.dali.gear):
            phases[i % 3] += g.power_w
        total = sum(phases)
        if self._t is not None and t > self._t:
            self.energy_kwh += total * (t - self._t) / 3.6e6
        self._t = t
        values: dict[str, float] = {"power_w": total, "energy_import_kwh": self.energy_kwh,
                                    "energy_total_kwh": self.energy_kwh,
                                    "frequency_hz": 50.0 + 0.02 * math.sin(t / 7.0)}
        for n, p in enumerate(phases, start=1):
            v = 230.0 + 2.0 * math.sin(t / 11.0 + n)
            pf = 0.95 if p > 5 else 0.6
            values[f"voltage_l{n}_v"] = v
            values[f"power_l{n}_w"] = p
            values[f"power_factor_l{n}"] = pf
            values[f"current_l{n}_a"] = p / (v * pf)
        return values


class SimulatedCabinet:
    """The simulated field side of one gateway (see the module docstring)."""

    def __init__(
        self,
        luminaires: int = 12,
        *,
        groups: Mapping[int, list[int]] | None = None,
        rated_power_w: float = 40.0,
        path_length_m: float = 300.0,
        sensors: int = 3,
        pedestrians_per_hour: float = 60.0,
        cyclists_per_hour: float = 20.0,
        now: Callable[[], float] = time.monotonic,
        wire_time: bool = False,
        rtu: bool = False,
        modbus_port: int = 0,
        seed: int = 1,
        profiles: Mapping[str, DeviceProfile] | None = None,
        report_s: float | None = 30.0,
    ) -> None:
        if report_s is not None and report_s <= 0:
            raise ValueError(f"report_s must be positive seconds or None, not {report_s}")
        if groups is None:
            # one DALI group per sensor section of the path, luminaires in path order
            per = max(1, math.ceil(luminaires / max(sensors, 1)))
            groups = {g: list(range(g * per, min(luminaires, (g + 1) * per)))
                      for g in range(max(sensors, 1))}
        self.now = now
        self.groups = {g: list(m) for g, m in groups.items() if m}
        specs = [GearSpec(i, frozenset(g for g, m in self.groups.items() if i in m),
                          rated_power_w) for i in range(luminaires)]
        self.dali_bus = SimulatedDaliBus(specs, now=now, seed=seed)
        self.dali = SimulatedDaliTransport(self.dali_bus, name="cabinet-dali",
                                           wire_time=wire_time)
        positions = [path_length_m * (i + 0.5) / sensors for i in range(sensors)]
        self.path = PathSimulation(path_length_m, positions, pedestrians_per_hour,
                                   cyclists_per_hour, start_t=now(), seed=seed)
        self.lux = 1.5
        profiles = profiles if profiles is not None else load_profiles()
        self.profiles = {"meter": profiles["eastron_sdm630"],
                         "presence": profiles["radar_presence"],
                         "lux": profiles["lux_sensor"]}
        self.meter = CabinetMeter(self.dali_bus, now)
        self.modbus_devices_sim = [
            SimulatedModbusDevice(self.profiles["meter"], METER_UNIT, self.meter.values),
            SimulatedModbusDevice(self.profiles["presence"], PRESENCE_UNIT,
                                  self._presence_values),
            SimulatedModbusDevice(self.profiles["lux"], LUX_UNIT,
                                  lambda: {"lux": self.lux, "temperature_c": 4.0}),
        ]
        self.tcp = ModbusTcpSimulator(self.modbus_devices_sim, port=modbus_port)
        self.rtu = ModbusRtuSimulator(self.modbus_devices_sim, baudrate=9600) if rtu else None
        self._task: asyncio.Task[None] | None = None
        self.report_s = report_s
        """Part 303 report timer of the occupancy sensors (s; None: no periodic reports)."""
        self.silent_sensors: set[int] = set()
        """Occupancy sensors (short addresses) that died silently: no event, no report."""
        # the sensors were not switched on at the same instant: their reports are spread
        t0 = now()
        self._report_due = [t0 + (report_s or 0.0) * (i + 1) / max(sensors, 1)
                            for i in range(sensors)]

    def _presence_values(self) -> Mapping[str, float]:
        self._walk()
        t = self.now()
        pedestrians = sum(c["pedestrian"] for c in self.path.sensor_counts)
        cyclists = sum(c["cyclist"] for c in self.path.sensor_counts)
        last = max(self.path.last_detection.values(), default=None, key=lambda d: d.t)
        occupied = any(self.path.occupied(i, t) for i in range(len(self.path.sensor_counts)))
        return {"occupied": float(occupied), "targets": float(self.path.on_path()),
                "distance_m": last.distance_m if last and occupied else 0.0,
                "speed_kmh": last.speed_mps * 3.6 if last and occupied else 0.0,
                "count": float(pedestrians + cyclists),
                "count_pedestrians": float(pedestrians), "count_cyclists": float(cyclists),
                "firmware_version": 102.0}

    def _walk(self) -> None:
        t = self.now()
        for d in self.path.advance(t):
            if d.sensor not in self.silent_sensors:
                self.dali_bus.occupancy_event(d.sensor)
        if self.report_s is None:
            return
        for i, due in enumerate(self._report_due):
            if t < due:
                continue
            # one report per period even if the clock jumped (a sped-up demo): no burst
            nxt = due + self.report_s
            self._report_due[i] = nxt if nxt > t else t + self.report_s
            if i not in self.silent_sensors and not self.path.occupied(i, t):
                self.dali_bus.occupancy_event(i, occupied=False, movement=False, repeat=True)

    async def _run(self) -> None:
        while True:
            self._walk()
            await asyncio.sleep(0.2)

    # -- what the gateway needs to know -------------------------------------------------

    @property
    def modbus_endpoint(self) -> TcpEndpoint:
        """Where the cabinet's Modbus TCP server listens."""
        return TcpEndpoint("127.0.0.1", self.tcp.port)

    @property
    def rtu_line(self) -> SerialLine:
        """The pseudo-terminal serial line (only with ``rtu=True``)."""
        if self.rtu is None:
            raise RuntimeError("this cabinet was started without rtu=True")
        return SerialLine(self.rtu.client_port, self.rtu.baudrate, self.rtu.parity)

    def modbus_devices(self, interval_s: float = 10.0) -> list[ModbusDevice]:
        """Poller configuration for the cabinet's Modbus devices."""
        return [ModbusDevice("cabinet-meter", METER_UNIT, self.profiles["meter"], interval_s),
                ModbusDevice("presence-1", PRESENCE_UNIT, self.profiles["presence"], interval_s),
                ModbusDevice("lux-1", LUX_UNIT, self.profiles["lux"], interval_s)]

    def dali_luminaires(self, prefix: str = "L") -> list[Luminaire]:
        """Driver configuration for the cabinet's DALI gear (ids ``L00``, ``L01``, …)."""
        return [Luminaire(f"{prefix}{g.shortaddr:02d}", g.shortaddr, frozenset(g.groups))
                for g in self.dali_bus.gear]

    def field_reader(self, *, interval_s: float = 10.0, energy_interval_s: float = 60.0,
                     prefix: str = "L", fail_safe_level: int | None = 254,
                     wall_clock: Callable[[], float] = time.time) -> FieldBusReader:
        """The gateway's real field reader (Modbus poller + DALI driver) wired to this cabinet,
        for ``gateway.daemon.Gateway`` in the demo. Enter it after the cabinet has started.
        ``wall_clock`` (seconds since the epoch) stamps the readings: the demo's clock."""
        poller = ModbusPoller(self.modbus_endpoint, self.modbus_devices(interval_s),
                              wall_clock=wall_clock)
        driver = DaliLuminaireDriver(self.dali, self.dali_luminaires(prefix),
                                     wall_clock=wall_clock)
        return FieldBusReader([poller], [driver], energy_interval_s=energy_interval_s,
                              fail_safe_level=fail_safe_level)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the Modbus server(s) and the pedestrians."""
        await self.tcp.start()
        if self.rtu is not None:
            await self.rtu.start()
        self._task = asyncio.create_task(self._run(), name="fieldsim-pedestrians")

    async def stop(self) -> None:
        """Stop everything started by :meth:`start`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.rtu is not None:
            await self.rtu.stop()
        await self.tcp.stop()
        await self.dali.close()

    async def __aenter__(self) -> SimulatedCabinet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
