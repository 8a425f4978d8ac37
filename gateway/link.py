"""The gateway's MQTT link: birth/will, store-and-forward telemetry, commands, programs.

One object with an ``async with`` lifecycle. It keeps reconnecting while the broker is away;
every connection registers a will (``online: false``) and publishes a retained birth carrying
the same ``bdseq``, so the controller can tell a current death from a stale one.

Telemetry and events go through the on-disk outbox (:mod:`gateway.outbox`) first and are
published from there; a record leaves the outbox only once a controller confirmed it durable
(``confirm`` topic, :class:`~lykta.contract.Confirm`), not at the broker's PUBACK, so a broker
crash without persistence, a lost session, a controller killed before it wrote, or a gateway
restart loses nothing. Unconfirmed records are sent again after ``confirm_timeout_s`` and
whenever a controller says ``resume``.

Presence events in a zone shared with neighbouring gateways also take a live path: published
at once on the ``event`` topic, without waiting for the outbox's turn or a controller (a
neighbouring gateway lights its part of a corridor from them, see
:meth:`GatewayLink.set_neighbours`); the outbox keeps them until a controller confirms them,
as every event.

Counters that must never repeat (``seq`` of batches and events, ``bdseq`` of connections) are
written durably (fsync) before they are used, so not even a power cut makes one repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import aiomqtt

from gateway.outbox import EVENT, TELEMETRY, Outbox
from gateway.outbox import MAX_BYTES as OUTBOX_MAX_BYTES
from lykta.clock import now_ms
from lykta.config import MqttConfig
from lykta.contract import (
    Command,
    CommandName,
    CommandResult,
    Confirm,
    ContractError,
    Event,
    EventKind,
    OfflineReason,
    State,
    TelemetryBatch,
    Topic,
    TopicKind,
    decode,
    encode,
)
from lykta.contract.program import Program
from lykta.contract.topics import check_id
from lykta.mqtt import make_client, publish_properties
from lykta.signing import PublicKeys, ReplayWindow, trusted_keys, verify_command

log = logging.getLogger("lykta.gateway.link")

CommandHandler = Callable[[Command], Awaitable[CommandResult]]
ProgramHandler = Callable[[Program | None, bytes], Awaitable[None]]
NeighbourHandler = Callable[[str, Event], object]

REPLAY_FILE = "command-counters.json"  # the accepted command counters (lykta.signing)
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 30.0
CONFIRM_TIMEOUT_S = 30.0
DROP_REPORT_S = 60.0  # at most one outbox_dropped event this often
LIVE_EXPIRY_S = 300  # a presence event older than any hold time lights nothing: let it die
LIVE_MAX = 256  # presence events waiting for the live path; beyond, the outbox sends them


async def cancel_and_wait(task: asyncio.Task, within_s: float = 5.0) -> None:
    """Cancel ``task`` and wait for it, but not forever: on Python 3.11 a cancellation can be
    swallowed by a ``wait_for`` inside aiomqtt that completes at the same moment (and its
    disconnect waits for the broker without a limit), which would hang a shutdown."""
    for _ in range(3):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=within_s)
        if done:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
            return
    log.warning("task %s did not stop; leaving it", task.get_name())


class GatewayLink:
    """The MQTT side of one gateway.

    ``on_command`` is called for every command that verifies (:func:`lykta.signing.
    verify_command`: signed by one of ``command_keys``, for this gateway, a counter not seen
    before, not expired); its result, or the reason for refusing, is published on
    ``cmd/res``. ``on_program`` gets every retained program (decoded, or ``None`` with the
    raw bytes when it does not decode — the gateway then keeps its fail-safe default).
    """

    def __init__(
        self,
        mqtt: MqttConfig,
        site: str,
        gateway: str,
        state_dir: Path,
        *,
        on_command: CommandHandler | None = None,
        on_program: ProgramHandler | None = None,
        clock: Callable[[], int] = now_ms,
        version: str = "lykta-gateway",
        wait_for_controller: bool = True,
        confirm_timeout_s: float = CONFIRM_TIMEOUT_S,
        outbox_max_bytes: int | None = None,
        command_keys: PublicKeys | None = None,
        on_neighbour_event: NeighbourHandler | None = None,
    ) -> None:
        self.mqtt = mqtt
        # Controller keys commands must be signed with; none: only rebirth/resume run.
        self.command_keys = trusted_keys(command_keys)
        self.site = site
        self.gateway = gateway
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(
            self.state_dir / "outbox",
            confirm_timeout_s=confirm_timeout_s,
            max_bytes=OUTBOX_MAX_BYTES if outbox_max_bytes is None else outbox_max_bytes,
        )
        self.on_command = on_command
        self.on_program = on_program
        self.on_neighbour_event = on_neighbour_event
        self._neighbours: frozenset[str] = frozenset()
        self._neighbours_changed = asyncio.Event()
        self._live: deque[bytes] = deque()
        self._live_wake = asyncio.Event()
        self.clock = clock
        self.version = version
        self.program_hash: str | None = None
        self.luminaire_count: int | None = None
        self.connected = asyncio.Event()
        # Set when a controller answered our birth with "resume": its subscriptions exist, so
        # what we send now reaches it (see controller.ingest). Cleared on every reconnect.
        self.controller_ready = asyncio.Event()
        self.wait_for_controller = wait_for_controller
        self.stats = {
            "published_batches": 0,
            "published_readings": 0,
            "connects": 0,
            "births": 0,
            "commands": 0,
            "commands_expired": 0,
            "commands_refused": 0,
            "malformed": 0,
            "confirms": 0,
            "state_write_errors": 0,
            "live_published": 0,
            "neighbour_events": 0,
            "neighbour_malformed": 0,
            "neighbour_ignored": 0,
        }
        self.replay = self._load_replay()
        # The next numbers to use; the outbox may hold higher ones than a counter file that
        # could not be written (disk full), so take the larger.
        self._seq = max(self._load_counter("seq"), (self.outbox.max_seq(TELEMETRY) or -1) + 1)
        self._eseq = max(self._load_counter("eseq"), (self.outbox.max_seq(EVENT) or -1) + 1)
        self._bdseq = self._load_counter("bdseq")
        # seq and eseq are stored lazily: a number is durable in its spool record from the
        # moment it is assigned (fsync per record), and the counter file is brought past it
        # before the record is published (see _publisher), so no number that ever left the
        # gateway can be handed out again, whatever the outbox forgets or finds corrupt later.
        # One store per publishing round instead of two fsyncs per event on the caller's path
        # (a presence event's, among others).
        self._stored = {"seq": self._load_counter("seq"), "eseq": self._load_counter("eseq")}
        self._last_drop_report = 0.0
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        if not len(self.outbox):
            self._empty.set()
        self._rebirth = asyncio.Event()
        self._closing = False

    # -- public API --------------------------------------------------------------------------

    def topic(self, kind: TopicKind) -> str:
        """This gateway's topic of ``kind``."""
        return str(Topic(self.site, self.gateway, kind))

    @property
    def bdseq(self) -> int:
        """The birth/death sequence number of the current (or next) connection."""
        return self._bdseq

    def send_telemetry(self, batch: TelemetryBatch) -> None:
        """Queue ``batch`` for publishing (durably, on disk). Assigns ``batch.seq``.

        Never raises for a full disk: the outbox then holds it in memory (and counts it)."""
        batch.seq = self._seq
        self._seq += 1
        self.outbox.add(TELEMETRY, batch.seq, encode(batch), batch.reading_count())
        self._empty.clear()
        self._wake.set()

    def send_event(self, event: Event, *, live: bool = False) -> None:
        """Queue an event for publishing (durably; events go before waiting telemetry).
        Assigns ``event.seq``. ``live``: a presence detection neighbouring gateways light
        their part of a corridor from — published at once as well (see the module doc)."""
        event.seq = self._eseq
        self._eseq += 1
        payload = encode(event)
        entry = self.outbox.add(EVENT, event.seq, payload)
        self._empty.clear()
        if live and self.connected.is_set() and len(self._live) < LIVE_MAX:
            # the live path publishes it now; the outbox sends it again only if no controller
            # confirms it in time (or one says resume), as any event
            self.outbox.mark_sent(entry, time.monotonic())
            self._live.append(payload)
            self._live_wake.set()
        self._wake.set()

    def set_neighbours(self, gateways: Iterable[str]) -> None:
        """Read the ``presence`` events of these gateways of the site (the program's presence
        neighbours): each one reaches ``on_neighbour_event``. Replaces the previous set."""
        new = frozenset(check_id(g, "gateway") for g in gateways if g != self.gateway)
        if new != self._neighbours:
            self._neighbours = new
            self._neighbours_changed.set()

    @property
    def neighbours(self) -> frozenset[str]:
        """The gateways whose events this link reads."""
        return self._neighbours

    def next_seq(self) -> int:
        """The ``seq`` the next telemetry batch will get."""
        return self._seq

    def request_rebirth(self) -> None:
        """Publish a fresh birth on the current connection (the controller asked for it)."""
        self._rebirth.set()

    def dead(self) -> BaseException | None:
        """Why the link's loop ended on its own (None while it runs or after :meth:`close`):
        the gateway's supervisor then ends the process."""
        task = self._task
        if task is None or not task.done() or self._closing:
            return None
        if task.cancelled():
            return asyncio.CancelledError("link loop cancelled")
        return task.exception() or RuntimeError("link loop returned")

    async def drained(self, within_s: float = 10.0) -> bool:
        """Wait until the outbox is empty (everything confirmed by a controller); False if it
        is not within ``within_s`` seconds."""
        try:
            async with asyncio.timeout(within_s):
                await self._empty.wait()
        except TimeoutError:
            return False
        return True

    async def __aenter__(self) -> GatewayLink:
        self._task = asyncio.create_task(self._run(), name=f"link-{self.gateway}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close(graceful=True)

    async def close(self, *, graceful: bool = True) -> None:
        """Stop the link. ``graceful`` publishes ``online: false`` first (a clean shutdown is
        not a fault); otherwise the connection is just dropped and the broker sends the will."""
        if self._task is None:
            return
        client = self._client
        if graceful and client is not None and self.connected.is_set():
            with contextlib.suppress(Exception):
                await client.publish(
                    self.topic(TopicKind.STATE),
                    encode(self._state(False, OfflineReason.SHUTDOWN)),
                    qos=1,
                    retain=True,
                    timeout=2,
                )
        # End the connection ourselves and let the run loop see it, rather than cancelling
        # it inside aiomqtt's disconnect (which can swallow the cancellation on 3.11).
        self._closing = True
        if client is not None:
            if graceful:
                client._client.disconnect()  # noqa: SLF001 - MQTT DISCONNECT: no will
            else:
                # Simulates a cut cable: the TCP connection ends without an MQTT DISCONNECT,
                # so the broker publishes the will.
                sock = client._client.socket()  # noqa: SLF001
                if isinstance(sock, socket.socket):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
        done, _ = await asyncio.wait({self._task}, timeout=5)
        if not done:
            await cancel_and_wait(self._task)
        self._task = None
        self._store_counters()
        self.outbox.close()

    # -- internals ---------------------------------------------------------------------------

    def _state(self, online: bool, reason: OfflineReason | None = None) -> State:
        return State(
            online=online,
            reason=reason,
            bdseq=self._bdseq,
            ts=self.clock(),
            version=self.version,
            program_hash=self.program_hash,
            luminaires=self.luminaire_count,
        )

    async def _run(self) -> None:
        delay = RECONNECT_MIN_S
        while not self._closing:
            # Every connection is a new life with its own bdseq, stored as used *before* the
            # will is registered: a crash or power cut can never make the next start reuse it.
            self._store_counter("bdseq", self._bdseq + 1)
            # The will carries no ts: the broker sends it later, the controller stamps it.
            will_state = State(online=False, bdseq=self._bdseq, version=self.version)
            will = aiomqtt.Will(self.topic(TopicKind.STATE), encode(will_state), qos=1, retain=True)
            client = make_client(self.mqtt, f"lykta-gw-{self.site}-{self.gateway}", will=will)
            try:
                async with client:
                    self._client = client
                    self.stats["connects"] += 1
                    # Subscribe before the birth: a controller answers the birth at once
                    # (resume, rebirth), and the answer must find us listening.
                    await client.subscribe(self.topic(TopicKind.CMD), qos=1)
                    await client.subscribe(self.topic(TopicKind.PROGRAM), qos=1)
                    await client.subscribe(self.topic(TopicKind.CONFIRM), qos=1)
                    self.stats["births"] += 1
                    await client.publish(
                        self.topic(TopicKind.STATE), encode(self._state(True)), qos=1, retain=True
                    )
                    self.connected.set()
                    delay = RECONNECT_MIN_S
                    log.info("%s connected (bdseq %d)", self.gateway, self._bdseq)
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._publisher(client))
                        tg.create_task(self._receiver(client))
                        tg.create_task(self._rebirther(client))
                        tg.create_task(self._live_publisher(client))
                        tg.create_task(self._neighbour_subscriber(client))
            except* aiomqtt.MqttError as eg:
                if not self._closing:
                    log.warning(
                        "%s: broker link lost (%s); retrying in %.1f s",
                        self.gateway,
                        eg.exceptions[0],
                        delay,
                    )
            finally:
                self._client = None
                self._live.clear()  # the outbox has them; a new connection's resume resends
                self.connected.clear()
                self.controller_ready.clear()
                # The next connection is a new life: its will and birth carry the next bdseq.
                self._bdseq += 1
            if not self._closing:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)

    async def _publisher(self, client: aiomqtt.Client) -> None:
        topics = {
            TELEMETRY: self.topic(TopicKind.TELEMETRY),
            EVENT: self.topic(TopicKind.EVENT),
        }
        if self.wait_for_controller:
            await self.controller_ready.wait()
        while True:
            self._wake.clear()
            self._report_drops()
            entries = self.outbox.due(time.monotonic(), 64)
            if any(not e.sends for e in entries):
                self._store_counters()  # before any of their numbers leaves the gateway
            for e in entries:
                if e.gone:  # confirmed (or dropped) while we were publishing others
                    continue
                await client.publish(topics[e.kind], self.outbox.payload(e), qos=1)  # PUBACK
                if e.kind == TELEMETRY and not e.sends and not e.recovered:
                    # counted once, and only what this process made (the demo compares it)
                    self.stats["published_batches"] += 1
                    self.stats["published_readings"] += e.readings
                self.outbox.mark_sent(e, time.monotonic())
            if not entries:
                wait = self.outbox.next_due_in(time.monotonic())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()

    def _report_drops(self) -> None:
        """Turn telemetry the full outbox dropped into an ``outbox_dropped`` event."""
        now = time.monotonic()
        if now - self._last_drop_report < DROP_REPORT_S:
            return
        drops = self.outbox.take_drops()
        if drops is None:
            return
        self._last_drop_report = now
        log.error(
            "%s: outbox full: dropped %d telemetry batch(es), %d readings (seq %s..%s)",
            self.gateway, drops.batches, drops.readings, drops.first_seq, drops.last_seq,
        )
        self.send_event(
            Event(
                ts=self.clock(),
                kind=EventKind.OUTBOX_DROPPED,
                source=self.gateway,
                detail={
                    "batches": drops.batches,
                    "readings": drops.readings,
                    "first_seq": drops.first_seq,
                    "last_seq": drops.last_seq,
                },
            )
        )

    def _handle_confirm(self, payload: bytes) -> None:
        try:
            c = decode(payload, Confirm)
        except ContractError as e:
            self.stats["malformed"] += 1
            log.warning("%s: malformed confirmation dropped: %s", self.gateway, e)
            return
        self.stats["confirms"] += 1
        self.outbox.confirm(TELEMETRY, c.telemetry)
        self.outbox.confirm(EVENT, c.events)
        if not len(self.outbox):
            self._empty.set()

    async def _live_publisher(self, client: aiomqtt.Client) -> None:
        topic = self.topic(TopicKind.EVENT)
        props = publish_properties(expiry_s=LIVE_EXPIRY_S)
        while True:
            self._live_wake.clear()
            if self._live:
                self._store_counters()  # before their numbers leave the gateway (see __init__)
            while self._live:
                await client.publish(topic, self._live.popleft(), qos=1, properties=props)
                self.stats["live_published"] += 1
            await self._live_wake.wait()

    async def _neighbour_subscriber(self, client: aiomqtt.Client) -> None:
        """Keep this connection subscribed to exactly the neighbours' ``event`` topics (QoS 0:
        a presence event is worth something only now; the broker need not queue them)."""
        subscribed: set[str] = set()
        while True:
            self._neighbours_changed.clear()
            want = set(self._neighbours)
            for gw in sorted(subscribed - want):
                await client.unsubscribe(str(Topic(self.site, gw, TopicKind.EVENT)))
            for gw in sorted(want - subscribed):
                await client.subscribe(str(Topic(self.site, gw, TopicKind.EVENT)), qos=0)
            if want != subscribed:
                names = ", ".join(sorted(want)) or "none"
                log.info("%s: reading the presence of %s", self.gateway, names)
            subscribed = want
            await self._neighbours_changed.wait()

    def _handle_neighbour_event(self, t: Topic, payload: bytes) -> None:
        if t.site != self.site or t.gateway not in self._neighbours or not self.on_neighbour_event:
            self.stats["neighbour_ignored"] += 1  # left over from an older neighbour set
            return
        try:
            event = decode(payload, Event)
        except ContractError as e:
            self.stats["neighbour_malformed"] += 1
            log.warning("%s: malformed event from %s dropped: %s", self.gateway, t.gateway, e)
            return
        self.stats["neighbour_events"] += 1
        try:
            self.on_neighbour_event(t.gateway, event)
        except Exception:  # noqa: BLE001 - a neighbour's message must not take the link down
            log.exception("%s: event from %s failed", self.gateway, t.gateway)

    async def _rebirther(self, client: aiomqtt.Client) -> None:
        while True:
            await self._rebirth.wait()
            self._rebirth.clear()
            self.stats["births"] += 1
            await client.publish(
                self.topic(TopicKind.STATE), encode(self._state(True)), qos=1, retain=True
            )

    async def _receiver(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = Topic.parse(str(message.topic))
            kind = topic.kind
            payload = bytes(message.payload) if message.payload is not None else b""
            if kind is TopicKind.CONFIRM:
                self._handle_confirm(payload)
            elif kind is TopicKind.PROGRAM:
                await self._handle_program(payload)
            elif kind is TopicKind.CMD:
                await self._handle_command(client, message, payload)
            elif kind is TopicKind.EVENT:
                self._handle_neighbour_event(topic, payload)

    async def _handle_program(self, payload: bytes) -> None:
        if self.on_program is None:
            return
        try:
            program = decode(payload, Program) if payload else None
        except ContractError as e:
            self.stats["malformed"] += 1
            log.warning("%s: program rejected: %s", self.gateway, e)
            program = None
        await self.on_program(program, payload)

    async def _handle_command(
        self, client: aiomqtt.Client, message: aiomqtt.Message, payload: bytes
    ) -> None:
        try:
            cmd: Command = decode(payload, Command)
        except ContractError as e:
            self.stats["malformed"] += 1
            log.warning("%s: malformed command dropped: %s", self.gateway, e)
            return
        now = self.clock()
        reason = verify_command(cmd, keys=self.command_keys, site=self.site,
                                gateway=self.gateway, now_ms=now, replay=self.replay)  # fmt: skip
        if reason is not None:
            # A stale, forged, replayed or misaddressed command never runs; the controller
            # (or whoever sent it) is told why.
            self.stats["commands_expired" if cmd.expires_ts <= now else "commands_refused"] += 1
            log.warning("%s: command %s (%s) refused: %s", self.gateway, cmd.id, cmd.name, reason)
            result = CommandResult(id=cmd.id, ts=now, ok=False, detail=reason)
        elif self.command_keys and not self._accept_counter(cmd.counter):
            result = CommandResult(id=cmd.id, ts=now, ok=False,
                                   detail="cannot record the counter; not executed")  # fmt: skip
        elif cmd.name == CommandName.REBIRTH:
            self.request_rebirth()
            result = CommandResult(id=cmd.id, ts=now, ok=True, detail="rebirth published")
        elif cmd.name == CommandName.RESUME:
            # A controller (re)subscribed: send everything it has not confirmed, now.
            self.outbox.resend_all()
            self.controller_ready.set()
            self._wake.set()
            result = CommandResult(
                id=cmd.id, ts=now, ok=True, detail=f"sending {len(self.outbox)} spooled records"
            )
        elif self.on_command is None:
            result = CommandResult(
                id=cmd.id, ts=now, ok=False, detail=f"unknown command {cmd.name}"
            )
        else:
            self.stats["commands"] += 1
            try:
                result = await self.on_command(cmd)
            except Exception as e:  # a bad command must not take the link down
                log.exception("%s: command %s failed", self.gateway, cmd.name)
                result = CommandResult(id=cmd.id, ts=now, ok=False, detail=f"failed: {e}")
        corr = (
            message.properties.CorrelationData
            if message.properties and hasattr(message.properties, "CorrelationData")
            else None
        )
        await client.publish(
            self.topic(TopicKind.CMD_RES),
            encode(result),
            qos=1,
            properties=publish_properties(correlation=corr),
        )

    def _load_replay(self) -> ReplayWindow:
        path = self.state_dir / REPLAY_FILE
        try:
            return ReplayWindow.loads(path.read_bytes())
        except FileNotFoundError:
            return ReplayWindow()
        except (OSError, ValueError, TypeError, KeyError) as e:
            # Which counters ran is unknown: accept only commands issued from now on.
            log.warning("%s: %s unreadable (%s); refusing commands issued before now",
                        self.gateway, path, e)  # fmt: skip
            w = ReplayWindow()
            w.highest = self.clock() + w.window
            return w

    def _accept_counter(self, counter: int) -> bool:
        """Record ``counter`` durably before the command runs, so no restart can replay it."""
        self.replay.accept(counter)
        tmp = self.state_dir / f"{REPLAY_FILE}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(self.replay.dumps())
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(self.state_dir / REPLAY_FILE)
        except OSError:
            log.exception("%s: cannot store %s", self.gateway, REPLAY_FILE)
            return False
        return True

    def _load_counter(self, name: str) -> int:
        try:
            return int((self.state_dir / name).read_text())
        except (OSError, ValueError):
            return 0

    def _store_counters(self) -> None:
        """Store ``seq`` and ``eseq`` where the files lag behind the numbers handed out."""
        for name, value in (("seq", self._seq), ("eseq", self._eseq)):
            if self._stored[name] < value and self._store_counter(name, value):
                self._stored[name] = value

    def _store_counter(self, name: str, value: int) -> bool:
        """Durably (fsync, atomic rename); a full disk is counted and logged, never raised.
        Returns whether it was stored."""
        tmp = self.state_dir / f"{name}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, str(value).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(self.state_dir / name)
            dfd = os.open(self.state_dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as e:
            self.stats["state_write_errors"] += 1
            log.error("%s: cannot store %s=%d (%s)", self.gateway, name, value, e)
            return False
        return True
