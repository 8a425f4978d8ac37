"""A simulated street cabinet for ``lykta demo``: luminaires on simulated DALI buses.

Interim field reader: reads the simulated gear's state directly. (The field-bus work replaces
it with the gateway's real DALI and Modbus drivers talking to the simulator.)
"""

from __future__ import annotations

import time

from fieldsim.dali import SimulatedDaliBus
from gateway.daemon import FieldReadings
from lykta.contract import LuminaireReading

GEAR_PER_BUS = 64


class DemoCabinet:
    """``n`` luminaires spread over as many simulated DALI buses as needed."""

    def __init__(self, gateway_id: str, n: int, *, seed: int = 0) -> None:
        self.gateway_id = gateway_id
        self.buses = [
            SimulatedDaliBus(min(GEAR_PER_BUS, n - start), now=time.monotonic, seed=seed + start)
            for start in range(0, n, GEAR_PER_BUS)
        ]

    async def __aenter__(self) -> DemoCabinet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def luminaire_count(self) -> int:
        return sum(len(b.gear) for b in self.buses)

    async def read(self, now_ms: int) -> FieldReadings:
        out = []
        for b, bus in enumerate(self.buses):
            bus.advance()
            for g in bus.gear:
                out.append(
                    LuminaireReading(
                        id=f"{self.gateway_id}-b{b}-a{g.shortaddr}",
                        ts=now_ms,
                        level=g.actual_level,
                        power_w=round(g.power_w, 2),
                        energy_wh=round(g.energy_wh, 4),
                        status=g.status_byte(),
                        temperature_c=g.temperature_c,
                    )
                )
        return FieldReadings(luminaires=out)
