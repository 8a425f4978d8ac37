"""The controller's ingest: MQTT in, strict decoding, gateway tracking, InfluxDB out.

Nothing is lost on the way. End to end: every batch and event that is stored is confirmed to
its gateway (:mod:`controller.confirmations`), which keeps it in its outbox until then and
sends it again otherwise; a re-send this process already took is confirmed and dropped (by
gateway, seq and ts). Within the broker hop: the controller's MQTT session persists (clean
start off, session expiry), messages are acknowledged to the broker only after their readings
are in InfluxDB or in the writer's disk spool (manual PUBACK), and MQTT v5 *Receive Maximum*
caps how many unacknowledged messages the broker sends, so a slow database slows the broker's
delivery instead of filling memory. Whatever is unacknowledged when the controller dies, the
broker delivers again; identical points overwrite in InfluxDB, so a replay never duplicates.

Telemetry and events come through a shared subscription (``$share/controllers/...``) so
several controller processes split the load; gateway state is subscribed by every controller
(retained births/deaths are not delivered on shared subscriptions).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiomqtt
import paho.mqtt.client as paho

from controller.admission import Admission, Rejected
from controller.commands import CommandIssuer
from controller.confirmations import EVENT as C_EVENT
from controller.confirmations import TELEMETRY as C_TELEMETRY
from controller.confirmations import Confirmations, Key
from controller.datamodel import Placement, event_lines, state_lines, telemetry_lines
from controller.gateways import Gap, GatewayTracker
from controller.influx_writer import InfluxWriter
from lykta.clock import now_ms
from lykta.config import MqttConfig
from lykta.contract import (
    CommandName,
    CommandResult,
    ContractError,
    Event,
    EventKind,
    State,
    TelemetryBatch,
    Topic,
    TopicError,
    TopicKind,
    decode,
    encode,
)
from lykta.contract.topics import subscription
from lykta.mqtt import BoundedClient, publish_properties

log = logging.getLogger("lykta.controller.ingest")

REBIRTH_EXPIRY_S = 60
# Mosquitto 2.0 stops honouring Receive Maximum once PUBACKs flow and sends up to
# max_queued_messages more: past this many waiting messages the client stops reading its
# socket, so TCP pushes back on the broker instead of the backlog filling our memory.
INCOMING_HIGH_WATER = 1000


@dataclass(slots=True)
class IngestStats:
    """Counters for the live view and the summary."""

    messages: int = 0
    batches: int = 0
    readings: int = 0
    readings_committed: int = 0  # in InfluxDB or the writer's spool, acknowledged to broker
    events: int = 0
    malformed: int = 0
    malformed_reasons: dict[str, int] = field(default_factory=dict)
    readings_rejected: int = 0  # single readings dropped from an otherwise admitted batch
    acked: int = 0  # messages acknowledged (stored, or dropped as malformed)
    gaps: int = 0
    rebirths_requested: int = 0
    duplicates: int = 0  # re-sent batches/events this process had already taken


class IngestObserver(Protocol):
    """Gets every decoded message (the alarm engine, command results). Called on the hot path
    before the message is acknowledged: it must be quick and never block."""

    def telemetry(self, gateway: str, batch: TelemetryBatch) -> None:
        """A telemetry batch of ``gateway``."""

    def state(self, gateway: str, state: State, changed: bool | None) -> None:
        """A birth, or a current (not stale) death; ``changed`` as from the tracker."""

    def event(self, gateway: str, event: Event) -> None:
        """An event of ``gateway``."""

    def command_result(self, gateway: str, result: CommandResult) -> None:
        """A gateway's answer on ``cmd/res``."""

    def unknown_gateway(self, gateway: str, ts: int) -> None:
        """The first message of a gateway the directory does not know (once per id)."""


class Ingest:
    """One controller process's ingest for ``site``; ``async with`` runs it in the background.

    ``receive_maximum`` bounds in-flight (unacknowledged) messages; ``ack_every`` messages
    (or ``ack_interval_s``) form one write + flush + acknowledge round.
    """

    def __init__(
        self,
        mqtt: MqttConfig,
        site: str,
        writer: InfluxWriter,
        *,
        client_id: str | None = None,
        session_expiry_s: int = 300,
        receive_maximum: int = 2000,
        ack_every: int = 500,
        ack_interval_s: float = 0.2,
        detect_gaps: bool = True,
        clock: Callable[[], int] = now_ms,
        observer: IngestObserver | None = None,
        placement: Placement | None = None,
        issuer: CommandIssuer | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.mqtt = mqtt
        # signs the resume/rebirth commands (the service passes its own, with the key)
        self.issuer = issuer or CommandIssuer(site, None, None, clock=clock)
        self.site = site
        self.writer = writer
        # The service passes its stable identity (controller.identity); a random id here would
        # leave an orphaned session in the shared group after every restart.
        self.client_id = client_id or f"lykta-controller-{site}"
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = receive_maximum
        self.ack_every = ack_every
        self.ack_interval_s = ack_interval_s
        self.detect_gaps = detect_gaps
        self.clock = clock
        self.observer = observer
        self._background: set[asyncio.Task[None]] = set()
        self.placement = placement
        """Luminaire id -> (zone, group) to tag readings with; replace it when it changes."""
        self.admission = admission or Admission()
        """Limits and the site's directory; replace its ``directory`` when the registry changes."""
        self.unknown_gateways: set[str] = set()
        self._logged: dict[str, float] = {}
        self.tracker = GatewayTracker()
        self.stats = IngestStats()
        self.gap_log: list[Gap] = []
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: BoundedClient | None = None
        self.confirmations = Confirmations(mqtt, site, client_id=self.client_id, clock=clock)
        self._keys: list[Key] = []  # what the open round will confirm once it is stored

    async def __aenter__(self) -> Ingest:
        await self.confirmations.__aenter__()
        self._task = asyncio.create_task(self._run(), name="ingest")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop ingesting; what was received is written and acknowledged first."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        await self.confirmations.__aexit__(None, None, None)

    def tasks(self) -> list[asyncio.Task[None]]:
        """The loops that run while ingest does (for the service's supervisor)."""
        return [t for t in (self._task, self.confirmations.task) if t is not None]

    async def wait_connected(self, within_s: float = 10.0) -> None:
        """Return once subscribed; raise ``TimeoutError`` otherwise."""
        async with asyncio.timeout(within_s):
            await self.connected.wait()

    # -- internals ---------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = 0.5
        while True:
            ctl_state = str(Topic.controller_state(self.site))
            will = aiomqtt.Will(ctl_state, encode(State(online=False, bdseq=0)), qos=1, retain=True)
            # acknowledge only what is stored; stop reading the socket when behind (see
            # the module doc and lykta.mqtt.BoundedClient)
            client = BoundedClient(
                self.mqtt,
                self.client_id,
                will=will,
                clean_start=False,
                session_expiry_s=self.session_expiry_s,
                max_inflight=1000,
                receive_maximum=self.receive_maximum,
                high_water=INCOMING_HIGH_WATER,
            )
            try:
                async with client:
                    self._client = client
                    # Consume from the first moment: a persistent session's backlog arrives
                    # at once, and the acknowledgements of our own publish/subscribe queue
                    # behind it.
                    consumer = asyncio.create_task(self._consume(client), name="ingest-consume")
                    setup = asyncio.create_task(self._setup(client, ctl_state))
                    try:
                        await consumer  # ends only when the link fails, or on close
                    finally:
                        setup.cancel()
                        consumer.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await setup
                        with contextlib.suppress(asyncio.CancelledError):
                            await consumer
                    delay = 0.5
            except aiomqtt.MqttError as e:
                log.warning("controller: broker link lost (%s); retrying in %.1f s", e, delay)
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _setup(self, client: BoundedClient, ctl_state: str) -> None:
        # No timeouts: behind a large backlog the broker's answers take as long as the
        # backlog; a dead link ends the consumer, which cancels this.
        forever = math.inf
        await client.publish(
            ctl_state,
            encode(State(online=True, bdseq=0, ts=self.clock())),
            qos=1,
            retain=True,
            timeout=forever,
        )
        for kind in (TopicKind.TELEMETRY, TopicKind.EVENT, TopicKind.CMD_RES):
            await client.subscribe(
                subscription(self.site, kind, shared=True), qos=1, timeout=forever
            )
        await client.subscribe(subscription(self.site, TopicKind.STATE), qos=1, timeout=forever)
        self.connected.set()

    async def _consume(self, client: BoundedClient) -> None:
        """Decode messages into rounds; each round's lines go to the writer while the next
        round is decoded, and its messages are acknowledged once the writer has stored them."""
        pending: list[paho.MQTTMessage] = []
        lines: list[str] = []
        rounds: asyncio.Queue[tuple[int, list[paho.MQTTMessage], int, list[Key]]] = (
            asyncio.Queue()
        )

        async def acknowledge() -> None:
            while True:
                mark, msgs, readings, keys = await rounds.get()
                await self.writer.committed(mark)
                self.confirmations.stored(keys)  # durable now: tell the gateways
                for m in msgs:
                    client.ack(m)
                self.stats.acked += len(msgs)
                self.stats.readings_committed = readings
                rounds.task_done()

        async def close_round() -> None:
            nonlocal pending, lines
            if lines:
                await self.writer.write(lines)  # waits while the writer's queue is full
            rounds.put_nowait((self.writer.checkpoint(), pending, self.stats.readings, self._keys))
            pending, lines, self._keys = [], [], []

        acker = asyncio.create_task(acknowledge(), name="ingest-ack")
        messages = aiter(client.messages)
        deadline = time.monotonic() + self.ack_interval_s
        # One long-lived "next message" task, never cancelled by a timeout: cancelling
        # aiomqtt's __anext__ just as it got a message would drop that message.
        next_msg: asyncio.Task[paho.MQTTMessage] | None = None
        try:
            while True:
                if next_msg is None:
                    next_msg = asyncio.ensure_future(anext(messages))
                timeout = max(0.0, deadline - time.monotonic()) if pending else None
                done, _ = await asyncio.wait({next_msg}, timeout=timeout)
                message = None
                if done:
                    message, next_msg = next_msg.result(), None
                    pending.append(message)
                    lines.extend(self._handle(client, message))
                if pending and (
                    len(pending) >= self.ack_every
                    or message is None
                    or time.monotonic() >= deadline
                ):
                    await close_round()
                    if message is None:
                        await self.writer.flush()  # idle: the open batch goes now
                if not pending:
                    deadline = time.monotonic() + self.ack_interval_s
        except asyncio.CancelledError:
            # shutting down: store what we have, then acknowledge it
            with contextlib.suppress(Exception):
                if pending:
                    await close_round()
                await self.writer.flush()
                await rounds.join()
            raise
        finally:
            acker.cancel()
            if next_msg is not None:
                next_msg.cancel()

    def _handle(self, client: BoundedClient, message: paho.MQTTMessage) -> list[str]:
        """Decode, admit and handle one message; return its lines.

        The one guard of ingest: whatever a message makes go wrong (a contract violation, a
        limit, an unknown gateway, or any exception in decoding or in the observer) counts it
        as malformed with the reason and drops it; the caller acknowledges it with its round
        and ingest goes on. Nothing from outside can end this loop."""
        self.stats.messages += 1
        topic = str(message.topic)
        try:
            return self._handle_unguarded(client, topic, message.payload)
        except (ContractError, TopicError, Rejected) as e:
            self._malformed(topic, e)
        except RecursionError:
            self._malformed(topic, Rejected("too_deep", "nesting beyond the decoder's limit"))
        except Exception as e:  # noqa: BLE001 - the guard: nothing from outside stops ingest
            self._malformed(topic, e, unexpected=True)
        return []

    def _handle_unguarded(self, client: BoundedClient, topic: str, raw: object) -> list[str]:
        payload = raw if isinstance(raw, bytes | bytearray) else b""
        admit = self.admission
        t = Topic.parse(topic)
        if t.gateway == "_controller":
            return []
        admit.payload(payload)
        try:
            admit.gateway(t.gateway)
        except Rejected:
            if t.gateway not in self.unknown_gateways and len(self.unknown_gateways) < 10_000:
                self.unknown_gateways.add(t.gateway)
                if self.observer is not None:
                    self.observer.unknown_gateway(t.gateway, self.clock())
            raise
        now = self.clock()
        if t.kind is TopicKind.TELEMETRY:
            batch = decode(payload, TelemetryBatch)
            batch, dropped = admit.telemetry(t.gateway, batch, now)
            for reason in dropped:
                self._malformed(topic, reason, reading=True)
            self._keys.append((t.gateway, C_TELEMETRY, batch.seq, batch.ts))
            if self.confirmations.seen.stored_before(t.gateway, C_TELEMETRY, batch.seq, batch.ts):
                self.stats.duplicates += 1
                return []
            self.stats.batches += 1
            self.stats.readings += batch.reading_count()
            lines = telemetry_lines(t.site, t.gateway, batch, placement=self.placement)
            if self.observer is not None:
                self.observer.telemetry(t.gateway, batch)
            if self.detect_gaps:
                gap = self.tracker.on_telemetry(t.gateway, batch.seq)
                if gap is not None:
                    lines += event_lines(
                        t.site, t.gateway, self._on_gap(client, gap), placement=self.placement
                    )
            return lines
        if t.kind is TopicKind.STATE:
            if not payload:
                return []  # a cleared retained state
            state = decode(payload, State)
            admit.state(state, now)
            if state.online:
                # Our subscriptions are in place (we are consuming): the gateway may send
                # its outbox. Mosquitto does not restore shared subscriptions after a
                # broker restart, so a gateway that sent before we resubscribed would
                # lose its backlog; it waits for this instead.
                self._command(client, t.gateway, CommandName.RESUME)
            known_bdseq = self.tracker.status(t.gateway).bdseq
            changed = self.tracker.on_state(t.gateway, state, now)
            stale = not state.online and known_bdseq not in (None, state.bdseq)
            if self.observer is not None and not stale:
                self.observer.state(t.gateway, state, changed)
            if changed is not None:
                log.info(
                    "gateway %s %s (bdseq %d)",
                    t.gateway,
                    "online" if changed else "OFFLINE",
                    state.bdseq,
                )
                return state_lines(
                    t.site, t.gateway, state, received_ms=now, placement=self.placement
                )
            return []
        if t.kind is TopicKind.EVENT:
            event = decode(payload, Event)
            admit.event(t.gateway, event, now)
            if event.seq is not None:
                self._keys.append((t.gateway, C_EVENT, event.seq, event.ts))
                if self.confirmations.seen.stored_before(t.gateway, C_EVENT, event.seq, event.ts):
                    self.stats.duplicates += 1
                    return []
            self.stats.events += 1
            if self.observer is not None:
                self.observer.event(t.gateway, event)
            return event_lines(t.site, t.gateway, event, placement=self.placement)
        if t.kind is TopicKind.CMD_RES:
            result = decode(payload, CommandResult)
            admit.command_result(result, now)
            if self.observer is not None:
                self.observer.command_result(t.gateway, result)
        return []

    def _malformed(
        self, topic: str, e: Exception, *, reading: bool = False, unexpected: bool = False
    ) -> None:
        """Count a dropped message (or, ``reading``, one reading of a batch) by its reason;
        log it, at most once a minute per reason (a flood must not flood the log too)."""
        if reading:
            self.stats.readings_rejected += 1
        else:
            self.stats.malformed += 1
        if isinstance(e, Rejected):
            key = e.key
        elif isinstance(e, ContractError):
            key = e.field
        elif isinstance(e, TopicError):
            key = "topic"
        else:
            key = f"error: {type(e).__name__}"
        reasons = self.stats.malformed_reasons
        if key not in reasons and len(reasons) >= 1000:
            key = "other"  # the reasons themselves must stay bounded
        reasons[key] = reasons.get(key, 0) + 1
        now = time.monotonic()
        if now - self._logged.get(key, -math.inf) >= 60.0:
            self._logged[key] = now
            what = "a reading of" if reading else "a message on"
            text = str(e)[:300]
            if unexpected:
                log.exception("dropped %s %s (%s); %d so far with this reason",
                              what, topic[:200], text, reasons[key])  # fmt: skip
            else:
                log.warning("dropped %s %s: %s (%d so far with this reason)",
                            what, topic[:200], text, reasons[key])  # fmt: skip

    def _command(
        self, client: BoundedClient, gateway: str, name: CommandName, args: dict | None = None
    ) -> None:
        """Publish a short-lived command to ``gateway`` (in the background)."""
        cmd = self.issuer.issue(gateway, name, args or {}, REBIRTH_EXPIRY_S)
        topic = str(Topic(self.site, gateway, TopicKind.CMD))
        task = asyncio.get_running_loop().create_task(
            client.publish(
                topic, encode(cmd), qos=1, properties=publish_properties(expiry_s=REBIRTH_EXPIRY_S)
            )
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_gap(self, client: BoundedClient, gap: Gap) -> Event:
        """Ask the gateway for a rebirth; return the event recording the gap."""
        self.stats.gaps += 1
        self.gap_log.append(gap)
        log.warning(
            "gateway %s: telemetry seq %d..%d missing; asking for a rebirth",
            gap.gateway,
            gap.first,
            gap.last,
        )
        now = self.clock()
        self.stats.rebirths_requested += 1
        self._command(
            client,
            gap.gateway,
            CommandName.REBIRTH,
            {"missing_from": gap.first, "missing_to": gap.last},
        )
        return Event(
            ts=now,
            kind=EventKind.SEQ_GAP,
            source=gap.gateway,
            detail={"first": gap.first, "last": gap.last},
        )
