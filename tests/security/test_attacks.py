"""Attacks on commands and programs through the shipped broker config, against the real
gateway (simulated cabinet, program runner, MQTT link): the attacker holds the controller's
broker password (leaked, or an ACL mistake), but not its signing key.

Every refused command is answered on ``cmd/res`` with the reason; none changes the light; the
same holds after the gateway restarts (its accepted counters are on disk)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.commands import CommandIssuer
from fieldsim.cabinet import SimulatedCabinet
from gateway.daemon import Gateway
from gateway.program_runner import ProgramRunner
from lykta.clock import now_ms
from lykta.contract import Command, CommandResult, EventKind, Topic, TopicKind, decode, encode
from lykta.contract.program import GroupProgram, LitWindow, Program, SwitchPoint
from lykta.contract.topics import subscription
from lykta.mqtt import make_client, publish_properties
from lykta.signing import program_hash, sign_command, sign_program
from tests.security.broker import SITE, SecureBroker
from tests.waiting import eventually

KEY = Ed25519PrivateKey.generate()  # the controller's signing key
ATTACKER = Ed25519PrivateKey.generate()


class Results:
    """The controller's view of ``cmd/res``: CommandResult by command id."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.got: dict[str, CommandResult] = {}

    async def run(self) -> None:
        async for m in self.client.messages:
            r = decode(bytes(m.payload), CommandResult)  # type: ignore[arg-type]
            self.got[r.id] = r

    async def send(self, gateway: str, cmd: Command | bytes, *, expiry_s: int | None = 60,
                   wait: bool = True) -> CommandResult | None:  # fmt: skip
        payload = cmd if isinstance(cmd, bytes) else encode(cmd)
        cmd_id = decode(payload, Command).id
        self.got.pop(cmd_id, None)
        await self.client.publish(str(Topic(SITE, gateway, TopicKind.CMD)), payload, qos=1,
                                  properties=publish_properties(expiry_s=expiry_s))  # fmt: skip
        if not wait:
            return None
        await eventually(lambda: cmd_id in self.got, within_s=10)
        return self.got[cmd_id]


@contextlib.asynccontextmanager
async def gateway(broker: SecureBroker, state: Path) -> AsyncIterator[tuple[Gateway, list]]:
    events: list = []
    async with SimulatedCabinet(luminaires=2, sensors=0) as cabinet:
        reader = cabinet.field_reader(interval_s=0.5)
        async with reader:
            runner = ProgramRunner(
                site=SITE, gateway="gw-a", drivers={"dali1": reader.drivers[0]},
                luminaires={"L00": "dali1", "L01": "dali1"}, state_dir=state / "program",
                public_key=KEY.public_key(), latitude=58.59, longitude=16.19,
            )  # fmt: skip
            gw = Gateway(SITE, "gw-a", broker.cfg("gw-a"), reader, state,
                         telemetry_interval_s=0.5, runner=runner)  # fmt: skip
            await gw.__aenter__()
            try:
                emit = runner.emit

                def record(e) -> None:  # noqa: ANN001
                    events.append(e)
                    emit(e)

                runner.emit = record
                await eventually(gw.link.connected.is_set)
                await asyncio.sleep(0.3)  # its subscriptions are in place
                yield gw, events
            finally:
                # no controller resumes it here, so its outbox never empties: do not wait
                await gw.stop(drain_s=0)


@pytest.fixture
async def controller(secure_broker: SecureBroker) -> AsyncIterator[Results]:
    """The controller's account (the attacker has the same password)."""
    async with make_client(secure_broker.cfg("lykta-controller", controller=True),
                           "lykta-controller-test") as client:  # fmt: skip
        await client.subscribe(subscription(SITE, TopicKind.CMD_RES), qos=1)
        res = Results(client)
        task = asyncio.create_task(res.run())
        try:
            yield res
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def override(issuer: CommandIssuer, gw: str = "gw-a", ov: str = "inc-1", ttl: int = 60) -> Command:
    return issuer.issue(gw, "override", {"id": ov, "luminaires": ["L00", "L01"], "level": 254,
                                         "mode": "raise", "until_ms": now_ms() + 600_000}, ttl)


async def test_forged_replayed_misaddressed_expired_commands_are_refused_also_after_restart(
    secure_broker: SecureBroker, controller: Results, tmp_path: Path
) -> None:
    issuer = CommandIssuer(SITE, KEY, tmp_path / "controller")
    state = tmp_path / "gw-a"
    genuine = override(issuer, ov="genuine")
    async with gateway(secure_broker, state) as (gw, _):
        runner = gw.runner
        assert runner is not None
        r = await controller.send("gw-a", genuine)
        assert r is not None and r.ok, r.detail
        assert "genuine" in runner.overrides  # executed
        attacks = {
            "replayed": (encode(genuine), f"replayed counter {genuine.counter}"),
            "forged": (encode(sign_command(override(issuer, ov="forged"), ATTACKER)),
                       "bad signature"),
            "unsigned": (encode(msgspec.structs.replace(override(issuer, ov="unsigned"),
                                                        signature=None)), "unsigned command"),
            "for gw-b": (encode(override(issuer, gw="gw-b", ov="for-b")),
                         f"command is for {SITE}/gw-b, not {SITE}/gw-a"),
            "expired": (encode(override(CommandIssuer(SITE, KEY, None, clock=lambda:
                               now_ms() - 120_000), ov="expired")), "expired"),
        }  # fmt: skip
        for what, (payload, reason) in attacks.items():
            runner.overrides.clear()
            r = await controller.send("gw-a", payload, expiry_s=None)
            assert r is not None and not r.ok and r.detail.startswith(reason), (what, r)
            assert runner.overrides == {}, what  # not executed
        assert gw.link.stats["commands_refused"] == 4 and gw.link.stats["commands_expired"] == 1
    # the gateway restarts on the same state dir: the old command is still a replay
    async with gateway(secure_broker, state) as (gw, _):
        r = await controller.send("gw-a", encode(genuine))
        assert r is not None and not r.ok and r.detail.startswith("replayed counter"), r
        # only the genuine override, resumed from the gateway's disk with its original expiry
        # (commanded state survives restarts); the replay ran nothing
        assert gw.runner is not None and set(gw.runner.overrides) == {"genuine"}
        assert gw.runner.overrides["genuine"].until_ms == genuine.args.until_ms
        r = await controller.send("gw-a", override(issuer, ov="after-restart"))
        assert r is not None and r.ok and "after-restart" in gw.runner.overrides


def _program(created: int, level: int = 200) -> Program:
    now = now_ms()
    return Program(
        version=f"v{created}-{level}", site=SITE, gateway="gw-a", created_ts=created,
        valid_from=now - 60_000, valid_until=now + 3_600_000,
        lit=[LitWindow(from_ts=now - 60_000, until_ts=now + 3_600_000)],
        groups=[GroupProgram(bus="dali1", group=0, zone="z", design_class="P2", floor_level=80,
                             points=[SwitchPoint(ts=now - 60_000, level=level)])],
    )  # fmt: skip


async def test_tampered_truncated_unsigned_and_older_programs_are_rejected(
    secure_broker: SecureBroker, controller: Results, tmp_path: Path
) -> None:
    topic = str(Topic(SITE, "gw-a", TopicKind.PROGRAM))
    now = now_ms()
    current = sign_program(_program(now), KEY)
    older = sign_program(_program(now - 86_400_000, level=30), KEY)  # genuine, but superseded
    tampered = encode(msgspec.structs.replace(current, groups=[msgspec.structs.replace(
        current.groups[0], floor_level=0, points=[SwitchPoint(ts=now - 60_000, level=0)])]))
    attacks = {
        "tampered": (tampered, "bad signature"),
        "truncated": (encode(current)[:-40], "not a valid program message"),
        "unsigned": (encode(msgspec.structs.replace(current, signature=None)), "bad signature"),
        "other key": (encode(sign_program(_program(now + 1), ATTACKER)), "bad signature"),
        "older": (encode(older), "older than the program in force"),
    }  # fmt: skip
    state = tmp_path / "gw-a"
    pub = controller.client.publish
    async with gateway(secure_broker, state) as (gw, events):
        runner = gw.runner
        assert runner is not None
        await pub(topic, encode(current), qos=1, retain=True)
        await eventually(lambda: runner.program_hash == program_hash(current))
        for what, (payload, reason) in attacks.items():
            events.clear()
            await pub(topic, payload, qos=1, retain=True)
            await eventually(lambda: any(e.kind == EventKind.PROGRAM_REJECTED for e in events))
            rejected = [e for e in events if e.kind == EventKind.PROGRAM_REJECTED]
            assert rejected[0].detail["reason"].startswith(reason), (what, rejected)
            assert runner.program_hash == program_hash(current), what  # the running one stays
    # restarted, with the older program retained on the broker: it still runs the current one
    async with gateway(secure_broker, state) as (gw, events):
        assert gw.runner is not None
        await eventually(lambda: any(e.kind == EventKind.PROGRAM_REJECTED for e in events))
        assert gw.runner.program_hash == program_hash(current)
    await pub(topic, b"", qos=1, retain=True)
