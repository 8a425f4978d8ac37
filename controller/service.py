"""The controller process: ingest, registry, program distribution, alarms and the HTTP API.

``async with ControllerService(config) as svc`` starts everything; leaving the block stops it
(what was received is stored first). :func:`run` is what ``lykta controller run`` calls: it
adds the HTTP server and systemd's ``sd_notify`` (``READY=1`` once subscribed, ``WATCHDOG=1``
every tick, ``STOPPING=1``).

Alarm changes come from the pure :class:`~controller.alarms.AlarmEngine`, fed by ingest's
observer hook and a periodic tick; each change is stored in the registry, written to InfluxDB
(``alarm`` measurement) and published as a notice on ``lykta/v1/{site}/_controller/event``
(QoS 1, not retained; format in ``docs/controller.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sdnotify

from controller.admission import Admission, Directory
from controller.alarms import AlarmChange, AlarmEngine, SiteMap
from controller.commands import CommandIssuer
from controller.config import ControllerConfig
from controller.datamodel import Placement
from controller.identity import claim
from controller.incidents import (
    IncidentError,
    active_override_args,
    incident_override,
    maintenance_override,
    override_commands,
)
from controller.influx_writer import InfluxWriter
from controller.ingest import Ingest
from controller.minute_writer import MinuteWriter
from controller.programs import ProgramDistributor
from controller.publisher import Publisher
from controller.registry import Registry
from lykta.clock import now_ms
from lykta.contract import (
    AlarmNotice,
    Command,
    CommandName,
    CommandResult,
    Event,
    State,
    TelemetryBatch,
    Topic,
    TopicKind,
)
from lykta.contract import encode as encode_message
from lykta.contract.topics import CONTROLLER_ID
from lykta.mqtt import publish_properties
from lykta.neighbour_acl import NeighbourAclCheck, check_neighbour_acl
from lykta.signing import load_or_generate_key
from lykta.strategy import Override, Strategy, load_strategy, presence_neighbours

log = logging.getLogger("lykta.controller")


def _acl_stamp(path: Path) -> tuple[int, int] | None:
    """(mtime_ns, size) of the broker's ACL file, None if it cannot be stat'ed."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _read_acl(path: Path) -> tuple[tuple[int, int] | None, str | None, str]:
    """(mtime_ns, size), text and name of the broker's ACL file; no stamp or text if it cannot
    be read (the name then says why: the alarm reports it, so it is not logged every tick)."""
    stamp = _acl_stamp(path)  # before the read: a change after it shows at the next tick
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        return None, None, f"{path} ({getattr(e, 'strerror', None) or e})"
    return stamp, text, str(path)


class LoopFailed(RuntimeError):
    """One of the service's loops ended: the process must end (non-zero) and be restarted."""


class ControllerService:
    """One controller process for ``config.site``."""

    def __init__(self, config: ControllerConfig, *, clock: Callable[[], int] = now_ms) -> None:
        self.config = config
        self.site = config.site
        self.clock = clock
        config.state_dir.mkdir(parents=True, exist_ok=True)
        # refuses to start when another process runs on this state dir (IdentityError)
        self.identity = claim(config.state_dir, self.site, config.mqtt.client_id)
        self.registry = Registry(config.registry())
        self.key = load_or_generate_key(config.programs.key_file)
        self.engine = AlarmEngine(config.alarms)
        self.writer = InfluxWriter(config.influx, spool_dir=config.state_dir / "spool")
        self.publisher = Publisher(config.mqtt, self.site)
        self.programs = ProgramDistributor(
            self.registry,
            self.publisher,
            self.site,
            self.key,
            clock=clock,
            program_hours=config.programs.hours,
            refresh_margin_h=config.programs.refresh_margin_h,
            observer=self.engine.expect_program,
        )
        self.issuer = CommandIssuer(self.site, self.key, config.state_dir, clock=clock)
        self.ingest = Ingest(
            config.mqtt,
            self.site,
            self.writer,
            client_id=self.identity.client_id,
            session_expiry_s=config.mqtt.session_expiry_s,
            clock=clock,
            observer=self,
            issuer=self.issuer,
            admission=Admission(config.limits),
        )
        self.strategy: Strategy | None = None
        self._version: int | None = None
        self.minutes = MinuteWriter(
            self.site,
            self.writer,
            clock=clock,
            strategy=lambda: self.strategy,
            placement=lambda: self.ingest.placement,
            online=lambda: {g: s.online for g, s in self.ingest.tracker.gateways.items()},
            program_ok=self._program_ok,
        )
        self._changes: asyncio.Queue[AlarmChange | None] = asyncio.Queue()  # None: stop
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[Any]] = set()  # command results being recorded
        self._stack = contextlib.AsyncExitStack()
        self._progress: tuple[int, int] = (-1, -1)
        # (strategy version, file stamp) of the last broker ACL check: re-read only on a change
        self._acl_checked: tuple[int | None, tuple[int, int] | None] | None = None
        self._neighbours: tuple[int | None, dict[str, list[str]]] = (None, {})
        self.notifier: sdnotify.SystemdNotifier | None = None
        from controller.api import create_app  # the API imports this module's types

        self.app = create_app(self)

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> ControllerService:
        try:
            await self._load_applied()
            await self._stack.enter_async_context(self.writer)
            await self._stack.enter_async_context(self.publisher)
            # The site map (gateways, luminaires, zone priorities) is in place before the first
            # message: a retained death judged without it would get the wrong priority.
            if self.strategy is None and self.config.programs.strategy is not None:
                await self._initial_strategy(self.config.programs.strategy)
            await self._stack.enter_async_context(self.ingest)
            self._tasks = [
                asyncio.create_task(self._alarm_sink(), name="alarm-sink"),
                asyncio.create_task(self._ticker(), name="controller-tick"),
                asyncio.create_task(self.minutes.run(), name="controller-minutes"),
            ]
        except BaseException:
            await self.close()
            raise
        return self

    async def _initial_strategy(self, path: Path) -> None:
        s = load_strategy(path)  # a broken file is a config error: refuse to start
        v = await asyncio.to_thread(
            self.registry.add_strategy_version,
            self.site,
            s,
            author="controller",
            comment=f"initial strategy from {path.name}",
            now_ms=self.clock(),
        )
        try:
            await self.apply(v["id"], "controller")
        except Exception:
            log.exception("applying the initial strategy (version %d) failed; apply it "
                          "through the API once the cause is fixed", v["id"])  # fmt: skip

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop ticking, flush alarm changes, stop ingest, close the connections."""
        # The sink stops at a sentinel and the ticker at a flag rather than by cancellation
        # alone: on Python 3.11 a cancel can be swallowed by a wait_for inside aiomqtt that
        # finishes at the same moment, and the task would then wait forever.
        self._stopping = True
        self._changes.put_nowait(None)
        for t in self._tasks:
            if t.get_name() in ("controller-tick", "controller-minutes"):
                t.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        self._tasks = []
        await self._flush_changes()
        await self._stack.aclose()
        self.registry.close()
        self.identity.release()

    def loops(self) -> list[asyncio.Task[Any]]:
        """The tasks that must run as long as the service does (ingest, its confirmations,
        the writer, the alarm sink and the ticker)."""
        return [t for t in (*self.ingest.tasks(), *self.writer.tasks(), *self._tasks) if t]

    async def supervise(self) -> None:
        """Wait on :meth:`loops`; raise :class:`LoopFailed` as soon as one ends (none may)."""
        done, _ = await asyncio.wait(self.loops(), return_when=asyncio.FIRST_COMPLETED)
        task = done.pop()
        exc = None if task.cancelled() else task.exception()
        raise LoopFailed(f"{task.get_name()} ended ({exc!r})") from exc

    def healthy(self) -> bool:
        """True if ingest and the writer made progress since the last call, or are idle and
        connected: what feeds systemd's watchdog. A loop that is stuck (the writer's queue not
        moving, received messages never acknowledged) or a lost broker link starves it, and
        systemd restarts the process."""
        w, i = self.writer.stats, self.ingest.stats
        moved = (w.lines_written + w.lines_spooled + w.lines_dropped, i.acked)
        last, self._progress = self._progress, moved
        writer_ok = moved[0] != last[0] or w.queued_lines == 0
        idle = i.acked == i.messages
        ingest_ok = self.ingest.connected.is_set() and (moved[1] != last[1] or idle)
        return writer_ok and ingest_ok

    async def publish_offline(self) -> None:
        """Retain ``_controller/state`` offline (a clean stop or a failed loop: ingest's
        will only covers a lost connection)."""
        with contextlib.suppress(Exception):
            await self.publisher.publish(
                str(Topic.controller_state(self.site)),
                encode_message(State(online=False, bdseq=0, ts=self.clock())),
                qos=1,
                retain=True,
                timeout_s=5.0,
            )

    async def wait_ready(self, within_s: float = 10.0) -> None:
        """Return once ingest is subscribed."""
        await self.ingest.wait_connected(within_s)

    async def _load_applied(self) -> None:
        version = await asyncio.to_thread(self.registry.applied_version, self.site)
        if version is not None:
            strategy = await asyncio.to_thread(self.registry.strategy, self.site, version)
            self._use_strategy(strategy, version)
        self.engine.restore(await asyncio.to_thread(self.registry.open_alarms, self.site))
        await asyncio.to_thread(self.programs.restore_expectations)

    async def _follow_applied(self) -> None:
        """Several controllers share the registry: use the version any of them applied."""
        version = await asyncio.to_thread(self.registry.applied_version, self.site)
        if version is not None and version != self._version:
            strategy = await asyncio.to_thread(self.registry.strategy, self.site, version)
            self._use_strategy(strategy, version)
            await asyncio.to_thread(self.programs.restore_expectations)

    def _use_strategy(self, strategy: Strategy, version: int) -> None:
        self._version = version
        self.strategy = strategy
        self.engine.site_map = SiteMap.from_strategy(strategy)
        self.ingest.placement = Placement.from_strategy(strategy)
        directory = Directory.of((lum.id, lum.gateway) for lum in strategy.luminaires)
        self.ingest.admission.directory = directory
        for ch in self.engine.known_gateways(directory.gateways, self.clock()):
            self._changes.put_nowait(ch)

    # -- strategy ----------------------------------------------------------------------------

    async def apply(
        self, version: int, actor: str, *, rollback: bool = False, notes: list[str] | None = None
    ) -> dict[str, str]:
        """Apply (or roll back to) a strategy version; return gateway -> program hash.

        What the operator must do besides (the broker ACL to regenerate) is logged, audited
        and appended to ``notes``."""
        had = self.strategy is not None
        before = await asyncio.to_thread(self._neighbours_of, self._version, self.strategy)
        if rollback:
            hashes = await self.programs.rollback(version, actor)
        else:
            hashes = await self.programs.apply(version, actor)
        strategy = await asyncio.to_thread(self.registry.strategy, self.site, version)
        self._use_strategy(strategy, version)
        note = None
        if self.config.programs.broker_acl_file is not None:
            check = await self.check_neighbour_acl()
            if check is not None and not check.ok:
                note = self._acl_message(check, version)
        elif had and await asyncio.to_thread(self._neighbours_of, version, strategy) != before:
            note = (f"the presence neighbours changed: regenerate the broker ACL (lykta "
                    f"provision neighbours --strategy FILE --site {self.site} --acl ACL) and "
                    "reload the broker, or corridors stop at the cabinet boundary")  # fmt: skip
            log.warning("strategy version %d: %s", version, note)
            await asyncio.to_thread(self.registry.audit, actor, "broker_acl",
                                    f"strategy/{version}", {"site": self.site, "note": note},
                                    self.clock())  # fmt: skip
        if note is not None and notes is not None:
            notes.append(note)
        return hashes

    def _neighbours_of(
        self, version: int | None, strategy: Strategy | None
    ) -> dict[str, list[str]]:
        """The presence neighbours of ``strategy`` (cached per version)."""
        if strategy is None:
            return {}
        if self._neighbours[0] != version or version is None:
            self._neighbours = (version, presence_neighbours(strategy))
        return self._neighbours[1]

    def _acl_message(self, check: NeighbourAclCheck, version: int | None) -> str:
        return (f"broker ACL {self.config.programs.broker_acl_file} is stale for strategy "
                f"version {version}: {check.describe()}; run lykta provision neighbours "
                f"--strategy FILE --site {self.site} --acl "
                f"{self.config.programs.broker_acl_file} and reload the broker")  # fmt: skip

    async def check_neighbour_acl(self, *, if_changed: bool = False) -> NeighbourAclCheck | None:
        """Compare the broker ACL file (``[programs] broker_acl_file``) with the applied
        strategy's presence neighbours; raise or clear ``neighbour_acl_stale``. None if there
        is nothing to check (no file configured, no strategy applied) or, ``if_changed``,
        neither the file (mtime, size) nor the version changed since the last check."""
        path = self.config.programs.broker_acl_file
        if path is None or self.strategy is None:
            return None
        version, strategy = self._version, self.strategy
        if if_changed:
            stamp = await asyncio.to_thread(_acl_stamp, path)
            if stamp is not None and self._acl_checked == (version, stamp):
                return None
        stamp, text, where = await asyncio.to_thread(_read_acl, path)
        neighbours = await asyncio.to_thread(self._neighbours_of, version, strategy)
        check = check_neighbour_acl(text, neighbours, self.site, where=where)
        self._acl_checked = (version, stamp) if stamp is not None else None
        problem = None if check.ok else self._acl_message(check, version)
        for ch in self.engine.on_neighbour_acl(self.site, problem, check.gateways(), self.clock()):
            self._changes.put_nowait(ch)
        return check

    # -- commands and incidents --------------------------------------------------------------

    async def send_command(
        self, gateway: str, name: str, args: dict[str, Any], actor: str, *, ttl_s: int | None = None
    ) -> Command:
        """Send a command to ``gateway`` with MQTT message expiry, ``expires_ts`` and the
        command id as correlation data; the result comes back on ``cmd/res``."""
        ttl = ttl_s or self.config.command_ttl_s
        cmd = self.issuer.issue(gateway, name, args, ttl)  # ContractError: args do not fit
        now = cmd.issued_ts
        await asyncio.to_thread(self.registry.add_command, self.site, gateway, cmd, actor)
        await self.publisher.publish(
            str(Topic(self.site, gateway, TopicKind.CMD)),
            encode_message(cmd),
            qos=1,
            properties=publish_properties(
                expiry_s=ttl,
                correlation=cmd.id.encode(),
                response_topic=str(Topic(self.site, gateway, TopicKind.CMD_RES)),
            ),
        )
        await asyncio.to_thread(
            self.registry.audit,
            actor,
            "command",
            f"gateway/{gateway}",
            {"id": cmd.id, "name": name, "args": args},
            now,
        )
        return cmd

    async def create_incident(
        self,
        actor: str,
        *,
        lighting_class: str,
        minutes: int,
        reason: str,
        zones: list[str],
        luminaires: list[str],
    ) -> dict[str, Any]:
        """Create an incident override (trygghetsläge) and send it to the gateways of its
        area; its luminaires are exempt from day-burning while it lasts."""
        strategy = self._applied()
        ov = incident_override(
            strategy,
            f"incident-{uuid.uuid4().hex[:10]}",
            lighting_class=lighting_class,
            now_ms=self.clock(),
            minutes=minutes,
            max_minutes=self.config.api.incident_max_minutes,
            zones=zones,
            luminaires=luminaires,
        )
        return await self._send_override(strategy, ov, reason, actor)

    async def create_maintenance(
        self,
        actor: str,
        *,
        minutes: int,
        reason: str,
        zones: list[str],
        luminaires: list[str],
        lighting_class: str | None = None,
        level_percent: float | None = None,
        off: bool = False,
    ) -> dict[str, Any]:
        """Create a maintenance override (a fixed class, level or off; the gateway keeps the
        safety floor while lit) and send it."""
        strategy = self._applied()
        ov = maintenance_override(
            strategy,
            f"maintenance-{uuid.uuid4().hex[:10]}",
            now_ms=self.clock(),
            minutes=minutes,
            max_minutes=self.config.api.maintenance_max_minutes,
            zones=zones,
            luminaires=luminaires,
            lighting_class=lighting_class,
            level_percent=level_percent,
            off=off,
        )
        return await self._send_override(strategy, ov, reason, actor)

    def _applied(self) -> Strategy:
        if self.strategy is None:
            raise IncidentError("no strategy is applied yet")
        return self.strategy

    async def _send_override(
        self, strategy: Strategy, ov: Override, reason: str, actor: str
    ) -> dict[str, Any]:
        now = self.clock()
        per_gw = override_commands(strategy, ov)
        until = int(ov.expires.timestamp() * 1000)
        ids = {gw: [a["id"] for a in args] for gw, args in per_gw.items()}
        doc = ov.model_dump(mode="json", by_alias=True)
        await asyncio.to_thread(
            self.registry.add_incident,
            self.site,
            ov.id,
            doc,
            ids,
            reason=reason,
            actor=actor,
            now_ms=now,
            expires_ms=until,
        )
        commands = []
        for gw, arg_list in per_gw.items():
            for args in arg_list:
                cmd = await self.send_command(gw, CommandName.OVERRIDE, args, actor)
                commands.append(cmd.id)
                self.engine.exempt(args["luminaires"], until)
        await asyncio.to_thread(
            self.registry.audit,
            actor,
            f"{ov.kind}_create",
            f"{ov.kind}/{ov.id}",
            {"reason": reason, "override": doc, "commands": commands},
            now,
        )
        return {"id": ov.id, "expires_ts": until, "gateways": ids, "commands": commands}

    async def cancel_override(self, override: str, actor: str, *, kind: str) -> dict[str, Any]:
        """Cancel an incident or maintenance override (of ``kind``) on every gateway it was
        sent to."""
        now = self.clock()
        row = await asyncio.to_thread(
            self.registry.cancel_incident, self.site, override, actor, now, kind=kind
        )
        gws: dict[str, list[str]] = row["gateways"]
        for gw, ids in gws.items():
            for ov_id in ids:
                await self.send_command(gw, CommandName.CANCEL_OVERRIDE, {"id": ov_id}, actor)
        await asyncio.to_thread(
            self.registry.audit, actor, f"{kind}_cancel", f"{kind}/{override}", {}, now
        )
        return row

    # -- ingest observer (hot path: quick, never blocks) -------------------------------------

    def telemetry(self, gateway: str, batch: TelemetryBatch) -> None:
        """Ingest hook: judge readings."""
        self.minutes.telemetry(gateway, batch)
        for ch in self.engine.on_telemetry(gateway, batch):
            self._changes.put_nowait(ch)

    def state(self, gateway: str, state: State, changed: bool | None) -> None:
        """Ingest hook: birth or death."""
        ts = state.ts if state.ts is not None else self.clock()
        for ch in self.engine.on_gateway(gateway, state, state.online, ts):
            self._changes.put_nowait(ch)
        if state.online:  # commanded state survives: every birth gets the active overrides
            self._background(asyncio.get_running_loop().create_task(self._resend(gateway)))

    async def _resend(self, gateway: str) -> None:
        """Re-send the overrides in force for ``gateway`` (idempotent at the gateway: same
        id, same expiry), so one a gateway lost or never got is back after its birth."""
        strategy = self.strategy
        if strategy is None:
            return
        rows = await asyncio.to_thread(self.registry.incidents, self.site, active_at=self.clock())
        for args in active_override_args(strategy, rows, gateway):
            try:
                await self.send_command(gateway, CommandName.OVERRIDE, args, "controller")
            except Exception:  # noqa: BLE001 - the next birth tries again
                log.exception("re-sending override %s to %s failed", args.get("id"), gateway)

    def event(self, gateway: str, event: Event) -> None:
        """Ingest hook: gateway events."""
        self.minutes.event(gateway, event)
        for ch in self.engine.on_event(gateway, event):
            self._changes.put_nowait(ch)

    def command_result(self, gateway: str, result: CommandResult) -> None:
        """Ingest hook: a command's result; recorded in the registry (off the hot path)."""
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self.registry.command_result, self.site, gateway, result)
        )
        self._background(task)

    def unknown_gateway(self, gateway: str, ts: int) -> None:
        """Ingest hook: the first message of a gateway the registry does not know."""
        for ch in self.engine.on_unknown_gateway(gateway, ts):
            self._changes.put_nowait(ch)

    def _program_ok(self) -> dict[str, bool | None]:
        """Gateway -> whether it reports the program hash last published to it."""
        e = self.engine
        return {gw: e.reported_hash.get(gw) == exp[0] for gw, exp in e.expected_hash.items()}

    def _background(self, task: asyncio.Task[Any]) -> None:
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # -- background tasks --------------------------------------------------------------------

    async def _alarm_sink(self) -> None:
        while True:
            ch = await self._changes.get()
            if ch is None:
                return
            try:
                await self._store_change(ch)
            except Exception:  # a failed store must not stop alarm handling
                log.exception("storing alarm %s %s failed", ch.kind, ch.source)

    async def _flush_changes(self) -> None:
        while not self._changes.empty():
            ch = self._changes.get_nowait()
            if ch is None:
                continue
            with contextlib.suppress(Exception):
                await self._store_change(ch)
        for t in list(self._pending):
            with contextlib.suppress(Exception):
                await t

    async def _store_change(self, ch: AlarmChange) -> None:
        log.log(
            logging.WARNING if ch.active else logging.INFO,
            "alarm %s %s (priority %d) %s: %s",
            ch.kind.value,
            ch.source,
            ch.priority,
            "RAISED" if ch.active else "cleared",
            ch.message,
        )
        await asyncio.to_thread(self.registry.record_alarm, self.site, ch)
        await self.writer.write(ch.lines(self.site))
        notice = AlarmNotice(
            kind=ch.kind.value,
            source=ch.source,
            gateway=ch.gateway,
            zone=ch.zone,
            priority=ch.priority,
            active=ch.active,
            ts=ch.ts,
            message=ch.message,
        )
        with contextlib.suppress(Exception):  # stored already; the notice is best effort
            await self.publisher.publish(
                str(Topic(self.site, CONTROLLER_ID, TopicKind.EVENT)),
                encode_message(notice),
                qos=1,
                timeout_s=2.0,
            )

    async def tick(self) -> None:
        """One round of the periodic work: pick up a strategy applied by another controller,
        silence alarms, the broker ACL (if its file changed), program refresh, watchdog."""
        try:
            await self._follow_applied()
        except Exception:
            log.exception("reading the applied strategy from the registry failed")
        for ch in self.engine.tick(self.clock()):
            self._changes.put_nowait(ch)
        try:
            await self.check_neighbour_acl(if_changed=True)
        except Exception:
            log.exception("checking the broker ACL failed; retrying next tick")
        try:
            await self.programs.refresh()
        except Exception:
            log.exception("program refresh failed; retrying next tick")
        if self.notifier is not None and self.healthy():
            self.notifier.notify("WATCHDOG=1")

    async def _ticker(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.config.tick_s)
            if not self._stopping:
                await self.tick()


async def run(config: ControllerConfig) -> None:
    """Run the controller until cancelled: the service, the HTTP API and sd_notify."""
    import uvicorn

    svc = ControllerService(config)
    svc.notifier = sdnotify.SystemdNotifier()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # uvicorn takes these over while it serves and re-raises them when it has stopped
        loop.add_signal_handler(sig, stop.set)
    async with svc:
        try:
            await svc.wait_ready(60)
        except TimeoutError:
            log.warning("not subscribed within 60 s (broker down?); ingest keeps retrying")
        server = None
        if config.api.enabled:
            server = uvicorn.Server(
                uvicorn.Config(
                    svc.app,
                    host=config.api.host,
                    port=config.api.port,
                    log_level="info",
                    lifespan="off",
                )
            )
        svc.notifier.notify("READY=1")
        log.info("controller for site %s running", config.site)
        try:
            # One group: the supervisor raises if any loop of the service ends, which ends the
            # API server too; the server returning (SIGTERM) ends the supervisor.
            async with asyncio.TaskGroup() as tg:
                supervisor = tg.create_task(svc.supervise(), name="supervisor")
                main = tg.create_task(
                    server.serve() if server is not None else stop.wait(), name="api"
                )
                main.add_done_callback(lambda _: supervisor.cancel())
        except* LoopFailed as group:
            failure = group.exceptions[0]
            log.critical("%s: stopping so that systemd restarts the controller", failure)
            svc.notifier.notify("STOPPING=1")
            await svc.publish_offline()
            raise failure from None
        finally:
            svc.notifier.notify("STOPPING=1")
        await svc.publish_offline()
