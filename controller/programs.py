"""Program distribution: compile a strategy version per gateway, sign it, publish it retained.

The pure part (:func:`signed_programs`, :func:`refresh_due`, :func:`program_start`) decides
what to send; :class:`ProgramDistributor` sends it and records it:

- **apply** a strategy version: compile for every gateway of its inventory with the strategy
  engine (:func:`lykta.strategy.compile_program`, the same code the gateway executes), sign
  with Ed25519 (:mod:`lykta.signing`), publish retained with QoS 1 on each gateway's
  ``program`` topic, remember the expected :func:`~lykta.signing.program_hash` per gateway;
  gateways that are no longer in the inventory get their retained program cleared (they fall
  back to the fail-safe);
- **refresh**: re-compile before a program's window runs out (``refresh_margin_h`` before
  ``valid_until``), so a gateway always holds a program covering the next day;
- **rollback** to any earlier version: the same as apply, audited as a rollback;
- **drift**: the gateway's reported ``program_hash`` (its birth) is compared with the expected
  one by the alarm engine (:meth:`controller.alarms.AlarmEngine.expect_program`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.publisher import Publisher
from controller.registry import Registry, RegistryError
from lykta.contract import Program, Topic, TopicKind, encode
from lykta.signing import program_hash, sign_program
from lykta.strategy import Strategy, compile_program

log = logging.getLogger("lykta.controller.programs")

ProgramObserver = Callable[[str, str, int], None]
"""Called with (gateway, expected program hash, published ms) after each publish."""


def program_start(now_ms: int) -> datetime:
    """Where a program compiled at ``now_ms`` starts: the current minute (UTC)."""
    return datetime.fromtimestamp((now_ms // 60_000) * 60, UTC)


def signed_programs(
    strategy: Strategy,
    site: str,
    key: Ed25519PrivateKey,
    start: datetime,
    hours: float,
    *,
    gateways: list[str] | None = None,
) -> dict[str, Program]:
    """Compile and sign the program of every gateway of ``strategy`` (or of ``gateways``).

    ``Program.site`` is set to the MQTT site id ``site`` (the strategy's ``site.name`` is a
    display name such as "Norrköping"): the gateway refuses a program for another site.
    """
    return {
        gw: sign_program(
            msgspec.structs.replace(compile_program(strategy, gw, start, hours), site=site), key
        )
        for gw in (gateways if gateways is not None else strategy.gateways())
    }


def refresh_due(valid_until_ms: int, now_ms: int, margin_ms: int) -> bool:
    """Whether a program valid until ``valid_until_ms`` must be replaced now."""
    return now_ms >= valid_until_ms - margin_ms


class ProgramDistributor:
    """Compiles, signs, publishes and records the programs of one site."""

    def __init__(
        self,
        registry: Registry,
        publisher: Publisher,
        site: str,
        key: Ed25519PrivateKey,
        *,
        clock: Callable[[], int],
        program_hours: float = 48.0,
        refresh_margin_h: float = 24.0,
        observer: ProgramObserver | None = None,
    ) -> None:
        if refresh_margin_h >= program_hours:
            raise ValueError(
                f"refresh_margin_h ({refresh_margin_h}) must be below program_hours "
                f"({program_hours}), or every refresh would be due at once"
            )
        self.registry = registry
        self.publisher = publisher
        self.site = site
        self.key = key
        self.clock = clock
        self.program_hours = program_hours
        self.refresh_margin_ms = int(refresh_margin_h * 3600_000)
        self.observer = observer
        self._lock = asyncio.Lock()

    def topic(self, gateway: str) -> str:
        """The retained program topic of ``gateway``."""
        return str(Topic(self.site, gateway, TopicKind.PROGRAM))

    async def apply(self, version: int, actor: str, *, action: str = "apply") -> dict[str, str]:
        """Compile ``version`` for every gateway, sign, publish; return gateway -> hash.

        Raises :class:`~controller.registry.RegistryError` for an unknown version,
        :class:`lykta.strategy.CompileError` if it does not compile, ``aiomqtt.MqttError`` if
        the broker is unreachable (then nothing is recorded as applied).
        """
        async with self._lock:
            strategy = await asyncio.to_thread(self.registry.strategy, self.site, version)
            now = self.clock()
            programs = await asyncio.to_thread(
                signed_programs,
                strategy,
                self.site,
                self.key,
                program_start(now),
                self.program_hours,
            )
            previous = {p["gateway"] for p in await asyncio.to_thread(self.registry.programs,
                                                                      self.site)}  # fmt: skip
            hashes = await self._publish(version, programs)
            for gone in sorted(previous - programs.keys()):
                # no luminaires left there: clear the retained program (gateway -> fail-safe)
                await self.publisher.publish(self.topic(gone), b"", qos=1, retain=True)
            await asyncio.to_thread(self._record_apply, strategy, version, actor, action, hashes)
            return hashes

    def _record_apply(
        self, strategy: Strategy, version: int, actor: str, action: str, hashes: dict[str, str]
    ) -> None:
        now = self.clock()
        self.registry.sync_inventory(self.site, strategy)
        self.registry.mark_applied(self.site, version, now)
        self.registry.audit(
            actor, action, f"strategy/{version}", {"site": self.site, "programs": hashes}, now
        )

    async def rollback(self, version: int, actor: str) -> dict[str, str]:
        """Apply an earlier ``version`` again (audited as a rollback)."""
        current = await asyncio.to_thread(self.registry.applied_version, self.site)
        if current == version:
            raise ValueError(f"strategy version {version} is already in force")
        await asyncio.to_thread(self.registry.strategy_version, self.site, version)
        return await self.apply(version, actor, action="rollback")

    async def _publish(self, version: int, programs: dict[str, Program]) -> dict[str, str]:
        hashes: dict[str, str] = {}
        for gw, program in sorted(programs.items()):
            h = program_hash(program)
            await self.publisher.publish(self.topic(gw), encode(program), qos=1, retain=True)
            now = self.clock()
            await asyncio.to_thread(
                self.registry.record_program, self.site, version, program, h, now
            )
            if self.observer is not None:
                self.observer(gw, h, now)
            hashes[gw] = h
        log.info("published %d program(s) of strategy version %d", len(programs), version)
        return hashes

    async def refresh(self) -> dict[str, str]:
        """Re-compile and publish the programs whose window runs out within the margin (of
        the version in force); return gateway -> new hash for those replaced."""
        async with self._lock:
            version = await asyncio.to_thread(self.registry.applied_version, self.site)
            if version is None:
                return {}
            now = self.clock()
            rows = await asyncio.to_thread(self.registry.programs, self.site)
            due = [
                r["gateway"]
                for r in rows
                if r["strategy_version"] == version
                and refresh_due(r["valid_until"], now, self.refresh_margin_ms)
            ]
            if not due:
                return {}
            try:
                strategy = await asyncio.to_thread(self.registry.strategy, self.site, version)
            except RegistryError:
                return {}
            programs = await asyncio.to_thread(
                signed_programs,
                strategy,
                self.site,
                self.key,
                program_start(now),
                self.program_hours,
                gateways=[g for g in due if g in strategy.gateways()],
            )
            hashes = await self._publish(version, programs)
            await asyncio.to_thread(
                self.registry.audit, "controller", "refresh", f"strategy/{version}",
                {"site": self.site, "programs": hashes}, self.clock(),
            )  # fmt: skip
            return hashes

    def restore_expectations(self) -> None:
        """Tell the observer the expected hash of every gateway (after a restart)."""
        if self.observer is None:
            return
        for r in self.registry.programs(self.site):
            self.observer(r["gateway"], r["program_hash"], r["published_ts"])
