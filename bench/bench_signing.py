"""What signed commands cost, per command, on the paths production runs.

- controller: ``CommandIssuer.issue`` (args checked against the contract, the per-gateway
  counter persisted, Ed25519 signature) for an incident ``override`` of 45 luminaires;
- gateway: ``decode`` + ``verify_command`` (signature, addressee, replay window) of that
  command's wire bytes, with one trusted key and during a key rotation (two keys, signed by
  the second: the worst case), and recording the counter durably (``GatewayLink``'s fsync'd
  write before the command runs).

Baselines, measured in the same run and independent of the code judged: a bare Ed25519
``sign`` / ``verify`` of the same number of bytes (cryptography), and a bare ``json.loads``
of the wire bytes. Prints medians of repeated runs (µs per command) and the ratios.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.commands import CommandIssuer
from gateway.link import GatewayLink
from lykta.config import MqttConfig
from lykta.contract import Command, decode, encode
from lykta.signing import ReplayWindow, command_signing_payload, verify_command

RUNS = 7
N = 2000
SITE, GW = "norrkoping", "gw-centrum"


def _median_us(fn: Callable[[int], None], n: int = N) -> float:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        times.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(times)


def main() -> None:
    key, old = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    args = {"id": "inc-1", "level": 254, "until_ms": 1_790_000_600_000, "mode": "raise",
            "luminaires": [f"STR-{i:03d}" for i in range(45)]}  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        issuer = CommandIssuer(SITE, key, Path(d) / "controller")
        issue_us = _median_us(lambda i: issuer.issue(GW, "override", args, 60))
        cmds = [issuer.issue(GW, "override", args, 60) for _ in range(N)]
        wires = [encode(c) for c in cmds]
        payload = command_signing_payload(cmds[0])
        sig = key.sign(payload)
        sign_us = _median_us(lambda i: key.sign(payload))
        pub, both = key.public_key(), [old.public_key(), key.public_key()]
        verify_base_us = _median_us(lambda i: pub.verify(sig, payload))
        loads_us = _median_us(lambda i: json.loads(wires[i]))

        def gateway_path(keys: list) -> Callable[[int], None]:  # noqa: ANN001
            def run(i: int) -> None:
                cmd = decode(wires[i], Command)
                reason = verify_command(cmd, keys=keys, site=SITE, gateway=GW,
                                        now_ms=cmd.issued_ts, replay=ReplayWindow())  # fmt: skip
                assert reason is None, reason

            return run

        verify_us = _median_us(gateway_path([pub]))
        rotation_us = _median_us(gateway_path(both))
        link = GatewayLink(MqttConfig(), SITE, GW, Path(d) / "gateway", command_keys=pub)
        record_us = _median_us(lambda i: link._accept_counter(cmds[i].counter),  # noqa: SLF001
                               n=200)  # fmt: skip
    print(f"command: override of {len(args['luminaires'])} luminaires, "
          f"{len(wires[0])} bytes on the wire, {len(payload)} bytes signed")  # fmt: skip
    print(f"controller issue (check args, counter to disk, sign): {issue_us:8.1f} µs/command"
          f"   baseline bare Ed25519 sign {sign_us:6.1f} µs   ratio {issue_us / sign_us:.2f}")
    print(f"gateway decode + verify, 1 trusted key:              {verify_us:8.1f} µs/command"
          f"   baseline bare verify + json.loads {verify_base_us + loads_us:6.1f} µs   "
          f"ratio {verify_us / (verify_base_us + loads_us):.2f}")
    print(f"gateway decode + verify, 2 keys (rotation, worst):  {rotation_us:8.1f} µs/command"
          f"   ratio to 1 key {rotation_us / verify_us:.2f}")
    print(f"gateway records the counter (fsync) before running: {record_us:8.1f} µs/command")
