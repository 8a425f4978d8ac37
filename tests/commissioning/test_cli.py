"""`lykta commission` as a technician runs it: a subprocess on the host end of a pty, the
emulated board with the simulated bus on the other."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from fieldsim.dali import GearSpec, SimulatedDaliBus
from fieldsim.dali_devices import ControlDeviceSpec
from firmware_bridge.emulator import Emulator, EmulatorOptions
from firmware_bridge.port import PtyPort

CLI = [sys.executable, "-c", "from lykta.cli.commission import app; app()"]


async def _cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*CLI, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


async def test_scan_dali_writes_report_and_refuses_to_overwrite_a_run(tmp_path: Path) -> None:
    sim = SimulatedDaliBus([GearSpec(0), GearSpec(None), GearSpec(None)], now=time.monotonic,
                           devices=[ControlDeviceSpec(None)])
    plan = tmp_path / "plan.csv"
    plan.write_text("id,zone,gateway,bus,short_address,group\n"
                    "A-1,park,gw,dali1,0,1\nA-2,park,gw,dali1,1,1\nA-9,park,gw,dali1,9,1\n")
    state = tmp_path / "state"
    async with Emulator(PtyPort(), sim, EmulatorOptions()) as emulator:
        port = emulator.port.slave_path  # type: ignore[attr-defined]
        code, out = await _cli("scan", "dali", "--port", port, "--state-dir", str(state),
                               "--plan", str(plan), "--gateway", "gw")
        assert code == 0, out
        assert "3 control gear (2 addressed now, 1 kept)" in out
        report = json.loads((state / "report.json").read_text())
        for key in ("gear_found", "addressed", "duplicates_resolved", "control_devices",
                    "bus_time_s", "frames"):
            assert key in report
        assert report["gear_found"] == 3 and len(report["control_devices"]) == 1
        assert [m["id"] for m in report["missing"]] == ["A-9"]
        assert "A-9" in (state / "report.html").read_text()
        code, out = await _cli("scan", "dali", "--port", port, "--state-dir", str(state))
        assert code == 1 and "resume" in out
        code, out = await _cli("resume", "--state-dir", str(state))
        assert code == 0 and "resumed" in out
        code, out = await _cli("assign", "--plan", str(plan), "--state-dir", str(state))
        assert code == 0 and "2 luminaires assigned" in out, out
    assert {g.shortaddr for g in sim.gear if 1 in g.groups} == {0, 1}
