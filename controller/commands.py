"""Issuing commands: typed args checked against the contract, a per-gateway counter, signed.

Every command the controller sends (``override``, ``cancel_override`` from the API and
incidents; ``resume``, ``rebirth`` from ingest) is made here, so none leaves unsigned. The
counter of a gateway is ``max(last + 1, now in ms)`` and the last one is persisted in
``<state_dir>/command-counters/<gateway>``: it keeps increasing across restarts, and the time
base keeps it increasing if the state dir is lost or several controllers command one gateway
(the gateway's replay window tolerates the small reorderings that leaves).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lykta.clock import now_ms
from lykta.contract import Command, build_command
from lykta.contract.topics import check_id
from lykta.signing import sign_command


class CommandIssuer:
    """Makes the signed commands of one site. ``key=None`` issues unsigned ones (only for a
    development setup whose gateways have no key; they then refuse everything but
    ``rebirth`` and ``resume``)."""

    def __init__(
        self,
        site: str,
        key: Ed25519PrivateKey | None,
        state_dir: Path | None,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.site = site
        self.key = key
        self.dir = None if state_dir is None else Path(state_dir) / "command-counters"
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.time_scale = 1.0
        """Clock ms per real ms. A ttl is how long a command may travel in real time; on a
        sped-up clock (``lykta demo --speed 3600``) its ``expires_ts`` lies this many times
        further ahead, or a command would expire on the way."""
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()  # the API issues from worker threads too

    def issue(self, gateway: str, name: str, args: Any, ttl_s: int) -> Command:
        """A new command ``name`` for ``gateway`` expiring in ``ttl_s``; raises
        :class:`lykta.contract.ContractError` if ``args`` do not fit the contract."""
        check_id(gateway, "gateway")  # it names a file below
        now = self.clock()
        cmd = build_command(
            name,
            args,
            id=uuid.uuid4().hex,
            site=self.site,
            gateway=gateway,
            counter=1,  # validated first, so a bad command does not use up a counter
            issued_ts=now,
            expires_ts=now + int(ttl_s * 1000 * self.time_scale),
        )
        cmd = msgspec.structs.replace(cmd, counter=self._next_counter(gateway, now))
        return sign_command(cmd, self.key) if self.key is not None else cmd

    def _next_counter(self, gateway: str, now: int) -> int:
        with self._lock:
            last = self._last.get(gateway)
            if last is None:
                last = self._load(gateway)
            counter = max(last + 1, now)
            self._last[gateway] = counter
            self._store(gateway, counter)
            return counter

    def _load(self, gateway: str) -> int:
        if self.dir is None:
            return 0
        try:
            return int((self.dir / gateway).read_text())
        except (OSError, ValueError):
            return 0

    def _store(self, gateway: str, counter: int) -> None:
        # Rename is atomic; no fsync: after a power cut the time base still keeps the counter
        # above what was sent, unless the clock also went back.
        if self.dir is None:
            return
        tmp = self.dir / f".{gateway}.tmp"
        tmp.write_text(str(counter))
        os.replace(tmp, self.dir / gateway)
