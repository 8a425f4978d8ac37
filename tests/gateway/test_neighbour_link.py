"""The gateway link's side of corridors across cabinets, on a real Mosquitto: a placed presence
event goes out at once (no controller needed) and once; a neighbour reads exactly the event
topics it is told to, and a malformed message is counted, not fatal."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from gateway.link import GatewayLink
from lykta.clock import now_ms
from lykta.config import MqttConfig
from lykta.contract import Event, EventKind, Topic, TopicKind
from lykta.mqtt import make_client
from tests.waiting import eventually


def _presence() -> Event:
    detail = {"occupied": True, "zone": "path", "position_m": 12.5}
    return Event(ts=now_ms(), kind=EventKind.PRESENCE, source="dali1/sensor-0", detail=detail)


async def test_presence_goes_live_once_and_neighbours_read_only_what_they_are_told(
    mqtt_cfg: MqttConfig, site_id: str, tmp_path: Path
) -> None:
    got: list[tuple[str, Event]] = []
    a = GatewayLink(mqtt_cfg, site_id, "gwA", tmp_path / "a")
    c = GatewayLink(mqtt_cfg, site_id, "gwC", tmp_path / "c")
    b = GatewayLink(mqtt_cfg, site_id, "gwB", tmp_path / "b",
                    on_neighbour_event=lambda gw, e: got.append((gw, e)))  # fmt: skip
    b.set_neighbours(["gwA", "gwB"])  # its own id is never a neighbour
    assert b.neighbours == {"gwA"}
    wire: list[bytes] = []
    async with a, b, c, make_client(mqtt_cfg, f"{site_id}-watch") as watch:
        await watch.subscribe(str(Topic(site_id, "gwA", TopicKind.EVENT)), qos=1)

        async def collect() -> None:
            async for m in watch.messages:
                wire.append(bytes(m.payload))  # type: ignore[arg-type]

        collector = asyncio.create_task(collect())
        for link in (a, b, c):
            await eventually(link.connected.is_set)
        await asyncio.sleep(0.3)  # B's subscription is in place
        # no controller has said resume: the outbox waits, the live path does not
        a.send_event(_presence(), live=True)
        await eventually(lambda: len(got) == 1, within_s=5)
        assert got[0][0] == "gwA" and got[0][1].detail["zone"] == "path"
        # with a controller ready, the outbox does not publish it a second time
        a.controller_ready.set()
        a.send_event(_presence(), live=True)
        a.send_event(_presence())  # no neighbour shares its zone: the outbox's way only
        c.send_event(_presence(), live=True)  # C is nobody's neighbour here
        await eventually(lambda: len(wire) == 3, within_s=5)
        await asyncio.sleep(1.0)
        seqs = sorted(e.seq for _, e in got)
        assert len(wire) == 3 and a.stats["live_published"] == 2
        assert [gw for gw, _ in got] == ["gwA"] * 3 and seqs == [0, 1, 2]
        # a malformed message on a neighbour's topic is dropped and counted; the link lives on
        async with make_client(mqtt_cfg, f"{site_id}-junk") as junk:
            await junk.publish(str(Topic(site_id, "gwA", TopicKind.EVENT)), b"{not json", qos=1)
        await eventually(lambda: b.stats["neighbour_malformed"] == 1, within_s=5)
        assert b.dead() is None
        # no longer a neighbour: nothing more arrives
        b.set_neighbours([])
        await asyncio.sleep(0.3)
        a.send_event(_presence(), live=True)
        await eventually(lambda: len(wire) == 5, within_s=5)  # the junk and this one
        await asyncio.sleep(0.5)
        assert len(got) == 3 and b.dead() is None
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
