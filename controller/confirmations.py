"""End-to-end confirmation, the controller's side: what is stored is confirmed to the gateway,
and what was already stored is recognised when it comes again.

A gateway keeps every telemetry batch and event in its outbox until a controller confirms it
durable (see :mod:`gateway.outbox`). Ingest notes each message's ``(gateway, kind, seq)`` in
the round it belongs to; once the writer has committed that round (InfluxDB or the disk
spool), :meth:`Confirmations.stored` queues the keys, and a sender task publishes one
:class:`~lykta.contract.Confirm` per gateway with coalesced ranges (QoS 1) on the gateway's
``confirm`` topic. Under load the queue coalesces further: one message per gateway carries all
that was stored while the previous one was being published. A confirmation lost on the way is
harmless: the gateway sends the batch again after its timeout, this controller recognises it
and confirms again.

:class:`Seen` is the de-duplication memory: per gateway the ``ts`` of the last ``window``
``seq`` numbers *stored* (a message is remembered only once its round is committed: one
received but lost with a broken connection must be taken again when it is re-sent). A batch
with a known ``(seq, ts)`` is a re-send: it is confirmed but neither written again (writes are
idempotent anyway) nor judged by the alarm engine a second time. A known ``seq`` with another
``ts`` is new data (a gateway whose state dir was wiped counts from 0 again) and is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable

import aiomqtt

from controller.publisher import Publisher
from lykta.clock import now_ms
from lykta.config import MqttConfig
from lykta.contract import Confirm, Topic, TopicKind, encode
from lykta.contract.messages import MAX_CONFIRM_RANGES
from lykta.contract.ranges import coalesce

log = logging.getLogger("lykta.controller.confirm")

TELEMETRY = "T"
EVENT = "E"
Key = tuple[str, str, int, int]  # gateway, kind, seq, ts


class Seen:
    """Which ``(kind, seq, ts)`` of each gateway this process already took (bounded)."""

    def __init__(self, window: int = 8192) -> None:
        self.window = window
        self._seen: dict[tuple[str, str], OrderedDict[int, int]] = {}

    def stored_before(self, gateway: str, kind: str, seq: int, ts: int) -> bool:
        """True if this exact message was stored before (a re-send)."""
        memo = self._seen.get((gateway, kind))
        return memo is not None and memo.get(seq) == ts

    def add(self, gateway: str, kind: str, seq: int, ts: int) -> None:
        """Remember a stored message."""
        memo = self._seen.get((gateway, kind))
        if memo is None:
            memo = self._seen[(gateway, kind)] = OrderedDict()
        memo[seq] = ts
        memo.move_to_end(seq)
        if len(memo) > self.window:
            memo.popitem(last=False)


def confirm_messages(
    keys: list[Key], *, ts: int, controller: str | None
) -> list[tuple[str, Confirm]]:
    """``(gateway, Confirm)`` pairs for ``keys``: ranges coalesced per gateway, split so no
    message exceeds the contract's range limit (pure)."""
    per: dict[str, tuple[list[int], list[int]]] = {}
    for gw, kind, seq, _ts in keys:
        t, e = per.setdefault(gw, ([], []))
        (t if kind == TELEMETRY else e).append(seq)
    out: list[tuple[str, Confirm]] = []
    for gw, (t, e) in per.items():
        tr, er = coalesce(t), coalesce(e)
        while tr or er:
            out.append(
                (
                    gw,
                    Confirm(
                        ts=ts,
                        telemetry=tr[:MAX_CONFIRM_RANGES],
                        events=er[:MAX_CONFIRM_RANGES],
                        controller=controller,
                    ),
                )
            )
            tr, er = tr[MAX_CONFIRM_RANGES:], er[MAX_CONFIRM_RANGES:]
    return out


class Confirmations:
    """Publishes confirmations for ``site`` on a connection of its own (``async with``).

    Its own connection, because ingest's may be paused for backpressure: a confirmation must
    not wait behind the very backlog it would help to drain.
    """

    def __init__(
        self,
        mqtt: MqttConfig,
        site: str,
        *,
        client_id: str,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.site = site
        self.controller = client_id
        self.clock = clock
        self.publisher = Publisher(mqtt, site, client_id=f"{client_id}-confirm")
        self.seen = Seen()
        self.sent = 0  # Confirm messages published
        self.failed = 0  # Confirm messages the broker did not take (the gateway re-sends)
        self._keys: list[Key] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The sending loop (``None`` outside ``async with``)."""
        return self._task

    async def __aenter__(self) -> Confirmations:
        await self.publisher.__aenter__()
        self._task = asyncio.create_task(self._send(), name="ingest-confirm")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            # what was stored before the stop is confirmed before it (within reason)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._idle.wait()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.publisher.close()

    def stored(self, keys: list[Key]) -> None:
        """``keys`` are durable: remember and confirm them (soon, coalesced)."""
        for gw, kind, seq, ts in keys:
            self.seen.add(gw, kind, seq, ts)
        if keys:
            self._keys.extend(keys)
            self._idle.clear()
            self._wake.set()

    async def _send(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._keys:
                keys, self._keys = self._keys, []
                for gw, msg in confirm_messages(keys, ts=self.clock(), controller=self.controller):
                    topic = str(Topic(self.site, gw, TopicKind.CONFIRM))
                    try:
                        await self.publisher.publish(topic, encode(msg), qos=1)
                        self.sent += 1
                    except aiomqtt.MqttError as e:
                        self.failed += 1
                        log.warning("confirmation to %s not published (%s); it re-sends", gw, e)
            self._idle.set()
