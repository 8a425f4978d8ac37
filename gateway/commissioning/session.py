"""The commissioning procedure on one DALI bus, step by step and resumable (I/O shell).

``scan_dali`` runs the steps below in order; each finished step, and each unit addressed or
read within a step, is written to the :class:`~gateway.commissioning.journal.Journal` at once,
so a run interrupted anywhere continues where it stopped (``lykta commission resume``):

1. ``existing_gear``: which short addresses answer; suspected duplicates;
2. ``duplicates``: each duplicate address is separated (one unit keeps it, the others move);
3. ``address_gear``: random address allocation for gear without a short address (existing
   addresses are kept unless ``readdress``);
4. ``inventory``: D4i luminaire information (memory bank 1), device types, firmware;
5. ``existing_devices``, ``address_devices``, ``device_setup``: the same for DALI-2 control
   devices (24-bit), whose instances get the event scheme that names device and instance.

``selftest`` (on, dim, off with read-back of level and status; the bus is left at full light)
and ``identify`` (blink one luminaire or group) are separate operations on the same journal.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from dali import address as dali_address
from dali.gear import general as gear
from dali.sequences import SetGroups, progress

from gateway.commissioning import addressing, inventory
from gateway.commissioning.addressing import DEVICES, GEAR, AddressSpace, Assigned, answer
from gateway.commissioning.journal import Journal
from gateway.commissioning.report import PlannedLuminaire, build_report, match_plan
from gateway.commissioning.runner import BusCost, SequenceRunner
from lykta.dali_bus import DaliBus

ProgressFn = Callable[[str, float | None, float | None, str | None], None]
"""``(step, completed, total, message)``: what the CLI shows while a step runs."""

STEPS = ("existing_gear", "duplicates", "address_gear", "inventory", "existing_devices",
         "device_duplicates", "address_devices", "device_setup")


@dataclass(frozen=True)
class ScanOptions:
    """What ``scan dali`` does: ``readdress`` clears every short address first; the others
    switch optional steps off."""

    readdress: bool = False
    control_devices: bool = True
    inventory: bool = True
    confirm_duplicates: bool = True


class CommissionSession:
    """Commissioning of one bus, recorded in ``journal``."""

    def __init__(self, bus: DaliBus, journal: Journal, *, on_progress: ProgressFn | None = None,
                 sleep_fn: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.bus = bus
        self.journal = journal
        self.on_progress = on_progress
        self.sleep_fn = sleep_fn
        saved = journal.data.get("cost", {})
        self.cost = BusCost(int(saved.get("frames", 0)), float(saved.get("bus_time_s", 0.0)),
                            dict(saved.get("by_step", {})))
        self.runner = SequenceRunner(bus, sleep_fn=sleep_fn, on_progress=self._progress,
                                     cost=self.cost)
        self.skipped: list[str] = []

    # -- bookkeeping ---------------------------------------------------------------------

    def _progress(self, p: progress) -> None:
        if self.on_progress is not None:
            self.on_progress(self.runner.step, p.completed, p.size, p.message)

    def _tell(self, step: str, completed: float | None, total: float | None,
              message: str | None = None) -> None:
        if self.on_progress is not None:
            self.on_progress(step, completed, total, message)

    def save(self) -> None:
        """Write the journal (with the bus cost so far)."""
        self.journal.data["cost"] = asdict(self.cost)
        self.journal.save()

    def _finish(self, step: str, result: Any) -> None:
        self.journal.data["steps"][step] = result
        self.save()

    def used(self, space: AddressSpace) -> set[int]:
        """Short addresses of ``space`` known to be taken now."""
        d = self.journal.data
        step = "existing_gear" if space is GEAR else "existing_devices"
        taken = set(d["steps"].get(step, {}).get("present", []))
        taken |= {a["short_address"] for a in d["assigned"][space.kind]
                  if a["short_address"] is not None}
        return taken

    def free(self, space: AddressSpace) -> list[int]:
        """Short addresses of ``space`` still free, lowest first."""
        taken = self.used(space)
        return [a for a in range(64) if a not in taken]

    def _on_assigned(self, space: AddressSpace, why: str) -> Callable[[Assigned], None]:
        def record(a: Assigned) -> None:
            self.journal.data["assigned"][space.kind].append(
                {"random_address": a.random_address, "short_address": a.short_address,
                 "verified": a.verified, "why": why})
            self.save()
        return record

    async def _step(self, step: str, body: Callable[[], Awaitable[Any]]) -> Any:
        if self.journal.done(step):
            self.skipped.append(step)
            return self.journal.result(step)
        self.runner.step = step
        self._tell(step, None, None, "started")
        result = await body()
        self._finish(step, result)
        self._tell(step, 1, 1, "done")
        return result

    # -- scan dali -----------------------------------------------------------------------

    async def scan_dali(self, options: ScanOptions) -> dict[str, Any]:
        """Run (or continue) every step of ``scan dali``; returns the report. Interrupted
        (Ctrl-C, a lost line), the journal keeps everything done so far, the cost included."""
        try:
            return await self._scan_dali(options)
        except BaseException:
            self.journal.data["interrupted"] = self.journal.data.get("interrupted", 0) + 1
            raise
        finally:
            self.save()

    async def _scan_dali(self, options: ScanOptions) -> dict[str, Any]:
        spaces = [GEAR, DEVICES] if options.control_devices else [GEAR]
        for space in spaces:
            existing = "existing_gear" if space is GEAR else "existing_devices"
            duplicates = "duplicates" if space is GEAR else "device_duplicates"
            addressed = "address_gear" if space is GEAR else "address_devices"
            if options.readdress:
                await self._step(existing, self._nothing)
                await self._step(duplicates, self._nothing)
                await self._step(addressed, functools.partial(self._readdress, space))
            else:
                await self._step(existing, functools.partial(self._existing, space, options))
                await self._step(duplicates, functools.partial(self._duplicates, space))
                await self._step(addressed, functools.partial(self._address, space))
        self._units(GEAR)
        if options.inventory:
            await self._step("inventory", self._inventory)
        if options.control_devices:
            self._units(DEVICES)
            await self._step("device_setup", self._device_setup)
        return self.report()

    async def _nothing(self) -> dict[str, Any]:
        return {"present": [], "duplicates": [], "resolved": []}

    async def _existing(self, space: AddressSpace, options: ScanOptions) -> dict[str, Any]:
        present, duplicates = await self.runner.run(
            addressing.find_existing(space, confirm=options.confirm_duplicates))
        return {"present": present, "duplicates": duplicates}

    async def _duplicates(self, space: AddressSpace) -> dict[str, Any]:
        existing = "existing_gear" if space is GEAR else "existing_devices"
        suspects = self.journal.result(existing)["duplicates"]
        partial = self.journal.data.setdefault("partial", {}).setdefault(
            f"duplicates_{space.kind}", [])
        done = {r["short_address"] for r in partial}
        for n, short in enumerate(suspects):
            if short in done:
                continue
            self._tell(self.runner.step, n, len(suspects), f"separating short address {short}")
            found = await self.runner.run(addressing.resolve_duplicate(
                space, short, self.free(space),
                on_assigned=lambda a: None))
            moved = [a.short_address for a in found[1:]]
            for a in found[1:]:
                self._on_assigned(space, "duplicate")(a)
            partial.append({"short_address": short, "units": len(found), "moved_to": moved})
            self.save()
        return {"resolved": [r for r in partial if r["units"] > 1]}

    async def _address(self, space: AddressSpace) -> dict[str, Any]:
        found = await self.runner.run(addressing.address_unaddressed(
            space, self.free(space), on_assigned=self._on_assigned(space, "new")))
        return {"found": len(found)}

    async def _readdress(self, space: AddressSpace) -> dict[str, Any]:
        self.journal.data["assigned"][space.kind] = []
        found = await self.runner.run(addressing.readdress_all(
            space, on_assigned=self._on_assigned(space, "new")))
        return {"found": len(found)}

    def _units(self, space: AddressSpace) -> None:
        units = self.journal.data["units"][space.kind]
        for a in sorted(self.used(space)):
            units.setdefault(str(a), {})
        self.save()

    async def _inventory(self) -> dict[str, Any]:
        units = self.journal.data["units"]["gear"]
        todo = sorted(int(a) for a, info in units.items() if "device_types" not in info)
        for n, short in enumerate(todo):
            self._tell("inventory", n, len(todo), f"reading gear {short}")
            info = await self.runner.run(inventory.luminaire_info(short))
            info["device_types"] = await self.runner.run(inventory.device_types(short))
            units[str(short)] = info
            self.save()
        return {"read": len(todo)}

    async def _device_setup(self) -> dict[str, Any]:
        units = self.journal.data["units"]["device"]
        todo = sorted(int(a) for a, info in units.items() if "instances" not in info)
        for n, short in enumerate(todo):
            self._tell("device_setup", n, len(todo), f"setting up control device {short}")
            units[str(short)] = await self.runner.run(inventory.control_device_info(short))
            self.save()
        return {"set_up": len(todo)}

    # -- report, self-test, identify, assign -----------------------------------------------

    def report(self, plan: list[PlannedLuminaire] | None = None) -> dict[str, Any]:
        """The report of everything done so far."""
        bus = str(self.journal.data.get("args", {}).get("bus", self.bus.name))
        return build_report(self.journal.data, plan=plan, bus=bus, cost=asdict(self.cost))

    async def _query(self, command: Any) -> int | None:
        r = await self.runner.run(_one(command))
        return r.raw_value.as_integer if answer(r) == "one" else None

    async def selftest(self) -> dict[str, Any]:
        """On (RECALL MAX), dim (RECALL MIN) and off, each read back per luminaire (level and
        status); the bus is left at full light. Returns results by short address."""
        self.runner.step = "selftest"
        shorts = sorted(int(a) for a in self.journal.data["units"]["gear"])
        limits: dict[int, tuple[int | None, int | None]] = {}
        for a in shorts:
            limits[a] = (await self._query(gear.QueryMaxLevel(dali_address.GearShort(a))),
                         await self._query(gear.QueryMinLevel(dali_address.GearShort(a))))
        results: dict[int, dict[str, Any]] = {a: {"ok": True, "problems": []} for a in shorts}
        broadcast = dali_address.GearBroadcast()
        phases = [("on", gear.RecallMaxLevel(broadcast)), ("dim", gear.RecallMinLevel(broadcast)),
                  ("off", gear.Off(broadcast))]
        try:
            for n, (phase, command) in enumerate(phases):
                self._tell("selftest", n, len(phases), phase)
                await self.runner.run(_one(command))
                for a in shorts:
                    short = dali_address.GearShort(a)
                    level = await self._query(gear.QueryActualLevel(short))
                    status = await self._query(gear.QueryStatus(short))
                    want = {"on": limits[a][0], "dim": limits[a][1], "off": 0}[phase]
                    problems = results[a]["problems"]
                    results[a][phase] = {"level": level, "status": status}
                    if level is None or status is None:
                        problems.append(f"{phase}: no answer")
                    elif level == 255 or status & 0x02:
                        problems.append(f"{phase}: lamp failure")
                    elif want is not None and level != want:
                        problems.append(f"{phase}: level {level}, expected {want}")
                    elif phase != "off" and not status & 0x04:
                        problems.append(f"{phase}: lamp not on")
        finally:
            await self.runner.run(_one(gear.RecallMaxLevel(broadcast)))  # fail safe: lit
        for r in results.values():
            r["ok"] = not r["problems"]
        out = {"results": {str(a): r for a, r in results.items()},
               "failed": [a for a, r in results.items() if not r["ok"]]}
        self._finish("selftest", out)
        return out

    async def identify(self, target: int, *, group: bool = False, seconds: float = 10.0,
                       period_s: float = 1.0) -> float:
        """Blink luminaire ``target`` (or group ``target``) between full light and off for
        ``seconds``; afterwards it returns to the level it had (full light for a group)."""
        self.runner.step = "identify"
        addr: Any = dali_address.GearGroup(target) if group else dali_address.GearShort(target)
        before = None if group else await self._query(gear.QueryActualLevel(addr))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        on = True
        try:
            while loop.time() - t0 < seconds:
                await self.runner.run(_one(gear.RecallMaxLevel(addr) if on else gear.Off(addr)))
                on = not on
                await self.sleep_fn(period_s / 2)
        finally:
            restore = gear.DAPC(addr, before) if before not in (None, 255) else \
                gear.RecallMaxLevel(addr)
            await self.runner.run(_one(restore))
        return loop.time() - t0

    async def assign(self, plan: list[PlannedLuminaire], *,
                     confirm: Callable[[int, PlannedLuminaire], Awaitable[bool]] | None = None
                     ) -> list[dict[str, Any]]:
        """Map the found gear to ``plan`` and program each matched luminaire's DALI group.
        ``confirm`` (e.g. blink and ask the technician) may refuse a match. Returns the
        inventory rows (id, zone, position_m, bus, short_address, group)."""
        self.runner.step = "assign"
        found = {int(a): info for a, info in self.journal.data["units"]["gear"].items()}
        matches, _missing, _unexpected = match_plan(found, plan)
        rows = []
        for short, p in sorted(matches.items()):
            if confirm is not None and not await confirm(short, p):
                continue
            if p.group is not None:
                await self.runner.run(SetGroups(dali_address.GearShort(short), {p.group}))
            rows.append({"id": p.id, "zone": p.zone, "position_m": p.position_m,
                         "short_address": short, "group": p.group})
        self._finish("assign", {"rows": rows})
        return rows


def _one(command: Any) -> addressing.Sequence:
    """A sequence of one command, returning its response."""
    return (yield command)
