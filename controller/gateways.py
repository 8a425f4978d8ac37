"""Which gateways are online, and whether their telemetry arrives without gaps (pure).

Birth/death follows Sparkplug: a death (will) only counts if its ``bdseq`` matches the birth
it belongs to; a late will from an older connection must not mark a reconnected gateway
offline. Telemetry carries a per-gateway ``seq``; a jump forward is a gap (readings the
controller never saw), and the caller asks the gateway for a rebirth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lykta.contract import OfflineReason, State


@dataclass(slots=True)
class GatewayStatus:
    """What the controller knows about one gateway."""

    online: bool = False
    bdseq: int | None = None
    since_ms: int | None = None
    last_seq: int | None = None
    gaps: int = 0
    missing: int = 0
    program_hash: str | None = None
    luminaires: int | None = None
    offline_reason: OfflineReason | None = None  # SHUTDOWN: stopped on purpose; None: lost


@dataclass(frozen=True, slots=True)
class Gap:
    """Telemetry ``seq`` numbers ``first``..``last`` (inclusive) never arrived."""

    gateway: str
    first: int
    last: int


@dataclass(slots=True)
class GatewayTracker:
    """Online state and sequence tracking for all gateways of a site."""

    gateways: dict[str, GatewayStatus] = field(default_factory=dict)

    def status(self, gateway: str) -> GatewayStatus:
        """The status record of ``gateway`` (created on first use)."""
        st = self.gateways.get(gateway)
        if st is None:
            st = self.gateways[gateway] = GatewayStatus()
        return st

    def on_state(self, gateway: str, state: State, now_ms: int) -> bool | None:
        """Apply a birth or death; return the new online flag if it changed, else ``None``."""
        st = self.status(gateway)
        if state.online:
            changed = not st.online
            st.online, st.bdseq = True, state.bdseq
            st.program_hash, st.luminaires = state.program_hash, state.luminaires
        else:
            if st.bdseq is not None and state.bdseq != st.bdseq:
                return None  # the will of an older connection: that life already ended
            changed = st.online
            st.online = False
            st.offline_reason = state.reason
        if changed:
            st.since_ms = state.ts or now_ms
            return st.online
        return None

    def on_telemetry(self, gateway: str, seq: int) -> Gap | None:
        """Record batch ``seq``; return the :class:`Gap` it reveals, if any.

        A ``seq`` at or below the last one is a replay (the gateway's spool resending after a
        reconnect); it is not a gap, and InfluxDB overwrites identical points.
        """
        st = self.status(gateway)
        last = st.last_seq
        if last is None or seq <= last:
            st.last_seq = seq if last is None else max(last, seq)
            return None
        st.last_seq = seq
        if seq == last + 1:
            return None
        st.gaps += 1
        st.missing += seq - last - 1
        return Gap(gateway, last + 1, seq - 1)

    def online_count(self) -> int:
        """How many gateways are online now."""
        return sum(1 for s in self.gateways.values() if s.online)
