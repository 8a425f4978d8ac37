"""The minute judge (pure): dark minutes, answering, presence reactions, per zone and gateway."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.compliance import Minutes, ZoneMinute
from lykta.contract import Event, EventKind, LuminaireReading, TelemetryBatch
from lykta.contract.messages import MAX_ADAPTIVE_STEP
from lykta.strategy import Strategy, evaluate
from lykta.strategy.dali_curve import arc_level_to_percent

# a December night in Norrköping: every zone with a floor is lit
NIGHT_MS = int(datetime(2026, 12, 1, 22, 0, tzinfo=UTC).timestamp() * 1000)
# Thursday 10 December 2026, 17:00 local: Ektorp's evening, P4, which traffic steps down
# (P5, then its P6 floor)
EVENING_MS = int(datetime(2026, 12, 10, 16, 0, tzinfo=UTC).timestamp() * 1000)
EKTORP_GW = "gw-ektorp"


def _feed(m: Minutes, s: Strategy, levels: dict[str, tuple[int, int]], ts: int) -> None:
    by_gw: dict[str, list[LuminaireReading]] = {}
    for lum in s.luminaires:
        if lum.id in levels:
            level, status = levels[lum.id]
            by_gw.setdefault(lum.gateway, []).append(
                LuminaireReading(id=lum.id, ts=ts, level=level, status=status)
            )
    for gw, readings in by_gw.items():
        m.telemetry(gw, TelemetryBatch(seq=1, ts=ts, luminaires=readings))


def test_a_healthy_night_has_no_dark_minutes(norrkoping: Strategy) -> None:
    at = datetime.fromtimestamp(NIGHT_MS / 1000, UTC)
    m = Minutes()
    # every luminaire at what the strategy asks for
    _feed(m, norrkoping, {lum.id: (evaluate(norrkoping, lum.id, at).level, 0)
                          for lum in norrkoping.luminaires}, NIGHT_MS - 5000)  # fmt: skip
    zones, gateways = m.close(norrkoping, NIGHT_MS, online={}, program_ok={})
    assert {z.zone for z in zones} == set(norrkoping.zones)
    assert all(z.dark == 0 and z.not_answering == 0 for z in zones)
    assert all(g.answering == g.luminaires for g in gateways)
    safety = [z for z in zones if z.safety_route]
    assert safety and all(z.lit and z.level_pct is not None and z.floor_pct is not None
                          and z.level_pct >= z.floor_pct for z in safety)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_dark_counts_exactly_the_lit_luminaires_below_their_floor(
    norrkoping: Strategy, data: st.DataObject
) -> None:
    at = datetime.fromtimestamp(NIGHT_MS / 1000, UTC)
    lums = norrkoping.luminaires
    levels = {
        lum.id: (data.draw(st.integers(0, 254)), data.draw(st.sampled_from([0, 0, 2])))
        for lum in lums
        if data.draw(st.booleans())  # some do not answer
    }
    stale = NIGHT_MS - 3 * 60_000  # too old to count as answering
    m = Minutes()
    _feed(m, norrkoping, levels, NIGHT_MS - 1000)
    m.telemetry("gw-x", TelemetryBatch(seq=1, ts=stale, luminaires=[]))
    zones, _ = m.close(norrkoping, NIGHT_MS, online={}, program_ok={})
    for z in zones:
        mine = [lum for lum in lums if lum.zone == z.zone]
        want_dark = 0
        for lum in mine:
            t = evaluate(norrkoping, lum.id, at)
            if lum.id in levels and t.lit:
                level, status = levels[lum.id]
                want_dark += level < t.floor_level or status & 2 != 0
        assert z.dark == want_dark
        assert z.answering + z.not_answering == z.luminaires == len(mine)
        assert z.not_answering == sum(lum.id not in levels for lum in mine)


def test_presence_reactions_are_counted_per_zone_and_reset_each_minute(
    norrkoping: Strategy,
) -> None:
    m = Minutes()
    for boosted in (3, 0, 5):
        m.event("stromstraket", Event(ts=NIGHT_MS - 100, kind=EventKind.PRESENCE, source="s/1",
                                      detail={"boosted": boosted}))  # fmt: skip
    m.event("stromstraket", Event(ts=NIGHT_MS, kind=EventKind.LAMP_OK, source="x"))
    zones, _ = m.close(norrkoping, NIGHT_MS, online={}, program_ok={})
    [z] = [z for z in zones if z.zone == "stromstraket"]
    assert (z.presence, z.reactions, z.boosted) == (3, 2, 8)
    zones, _ = m.close(norrkoping, NIGHT_MS + 60_000, online={}, program_ok={})
    [z] = [z for z in zones if z.zone == "stromstraket"]
    assert (z.presence, z.reactions, z.boosted) == (0, 0, 0)


def test_luminaire_states_and_the_all_on_reference(norrkoping: Strategy) -> None:
    """Every luminaire gets a map state (not answering included); the zone's baseline is the
    energy estimate's all-on reference and its power the sum of what the luminaires report."""
    from controller.compliance import LuminaireState
    from lykta.strategy.energy import baseline_lit, luminaire_power_w

    at = datetime.fromtimestamp(NIGHT_MS / 1000, UTC)
    zone = "stromstraket"
    lums = [lum for lum in norrkoping.luminaires if lum.zone == zone]
    full, dimmed, failed, silent = lums[0], lums[1], lums[2], lums[3]
    floor = evaluate(norrkoping, full.id, at).floor_level
    readings = [
        LuminaireReading(id=full.id, ts=NIGHT_MS - 1000, level=254, power_w=20.0),
        LuminaireReading(id=dimmed.id, ts=NIGHT_MS - 1000, level=floor + 10, power_w=10.5),
        LuminaireReading(id=failed.id, ts=NIGHT_MS - 1000, level=254, status=2),
    ] + [LuminaireReading(id=lum.id, ts=NIGHT_MS - 1000, level=floor - 1) for lum in lums[4:]]
    m = Minutes()
    m.telemetry(full.gateway, TelemetryBatch(seq=1, ts=NIGHT_MS - 1000, luminaires=readings))
    zones, _ = m.close(norrkoping, NIGHT_MS - 0, online={}, program_ok={})
    state = {s.luminaire: s.state for s in m.states}
    assert len(m.states) == len(norrkoping.luminaires)
    assert state[full.id] is LuminaireState.FULL
    assert state[dimmed.id] is LuminaireState.DIMMED
    assert state[failed.id] is LuminaireState.FAILED
    assert state[silent.id] is LuminaireState.NOT_ANSWERING
    assert all(state[lum.id] is LuminaireState.BELOW_FLOOR for lum in lums[4:])
    assert all(s.latitude is not None and s.longitude is not None for s in m.states)
    [z] = [z for z in zones if z.zone == zone]
    assert z.power_w == 30.5
    assert baseline_lit(norrkoping, at)
    assert z.baseline_w == round(sum(luminaire_power_w(lum, 100.0) for lum in lums), 3)
    # the saving's reference is the all-on draw of the two that report power: the silent
    # and the power-less ones are unknown, not energy saved
    assert z.power_baseline_w == round(sum(luminaire_power_w(lum, 100.0)
                                           for lum in (full, dimmed)), 3)
    assert z.power_baseline_w < z.baseline_w
    assert z.dark == len(lums) - 4 + 1  # below the floor, and the failed lamp


def _expected(s: Strategy, zone: str, end_ms: int, steps: int) -> float:
    """The zone's mean expected level with its luminaires at ``steps`` traffic steps."""
    at = datetime.fromtimestamp(end_ms / 1000, UTC)
    xs = [arc_level_to_percent(evaluate(s, lum.id, at, adaptive_steps=steps).level)
          for lum in s.luminaires if lum.zone == zone]  # fmt: skip
    return round(sum(xs) / len(xs), 2)


def _zone(zones: list[ZoneMinute], name: str) -> ZoneMinute:
    [z] = [z for z in zones if z.zone == name]
    return z


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_expected_follows_the_steps_of_the_gateways_newest_batch(
    norrkoping: Strategy, data: st.DataObject
) -> None:
    """Whatever order batches arrive in (replays from the outbox included), Ektorp's expected
    level is the schedule stepped down by the steps of gw-ektorp's newest batch (one without
    the field: none); steps another gateway reports for the zone do not count; dark is judged
    against the floor whatever the steps."""
    at = datetime.fromtimestamp(EVENING_MS / 1000, UTC)
    lums = [lum for lum in norrkoping.luminaires if lum.zone == "ektorp"]
    assert {lum.gateway for lum in lums} == {EKTORP_GW}
    floor = evaluate(norrkoping, lums[0].id, at).floor_level
    assert evaluate(norrkoping, lums[0].id, at).level > floor  # P4 above its P6 floor
    levels = {lum.id: data.draw(st.sampled_from([floor - 1, floor, 221, 240])) for lum in lums}
    steps = st.none() | st.integers(0, MAX_ADAPTIVE_STEP)
    batches = data.draw(st.lists(st.tuples(st.integers(1_000, 100_000), steps), min_size=1,
                                 max_size=6))  # fmt: skip
    foreign = data.draw(st.integers(1, MAX_ADAPTIVE_STEP))
    m = Minutes()
    m.telemetry("gw-centrum", TelemetryBatch(seq=1, ts=EVENING_MS - 500,
                                             zone_steps={"ektorp": foreign}))  # fmt: skip
    for seq, (ago, k) in enumerate(batches):
        ts = EVENING_MS - ago
        readings = [LuminaireReading(id=x, ts=ts, level=v) for x, v in levels.items()]
        m.telemetry(EKTORP_GW, TelemetryBatch(seq=seq, ts=ts, luminaires=readings,
                                              zone_steps={"ektorp": k} if k else {}))  # fmt: skip
    newest = min(ago for ago, _ in batches)
    # of the batches sharing the newest ts, the last one taken counts
    want = [k for ago, k in batches if ago == newest][-1] or 0
    zones, _ = m.close(norrkoping, EVENING_MS, online={}, program_ok={})
    z = _zone(zones, "ektorp")
    assert z.lit
    assert z.expected_pct == _expected(norrkoping, "ektorp", EVENING_MS, want)
    assert z.floor_pct == arc_level_to_percent(floor)  # no step lowers the floor
    assert z.dark == sum(v < floor for v in levels.values())


def test_a_batch_without_steps_resets_them_and_a_silent_gateway_has_none(
    norrkoping: Strategy,
) -> None:
    m = Minutes()
    unadapted = _expected(norrkoping, "ektorp", EVENING_MS, 0)
    p5 = _expected(norrkoping, "ektorp", EVENING_MS, 1)
    p6 = _expected(norrkoping, "ektorp", EVENING_MS, 2)
    assert unadapted > p5 > p6  # P4, P5, P6 (the floor)

    def expected(end_ms: int = EVENING_MS) -> float | None:
        zones, _ = m.close(norrkoping, end_ms, online={}, program_ok={})
        return _zone(zones, "ektorp").expected_pct

    assert expected() == unadapted  # nothing reported: the schedule's class
    m.telemetry(EKTORP_GW, TelemetryBatch(seq=1, ts=EVENING_MS - 30_000,
                                          zone_steps={"ektorp": 1}))  # fmt: skip
    assert expected() == p5
    # an older batch replayed from the outbox, without the field: the newest still holds
    m.telemetry(EKTORP_GW, TelemetryBatch(seq=0, ts=EVENING_MS - 40_000))
    assert expected() == p5
    m.telemetry(EKTORP_GW, TelemetryBatch(seq=2, ts=EVENING_MS - 20_000,
                                          zone_steps={"ektorp": 2}))  # fmt: skip
    assert expected() == p6
    # the next batch without the field: no zone stepped down any more
    m.telemetry(EKTORP_GW, TelemetryBatch(seq=3, ts=EVENING_MS - 10_000))
    assert expected() == unadapted
    m.telemetry(EKTORP_GW, TelemetryBatch(seq=4, ts=EVENING_MS - 5_000,
                                          zone_steps={"ektorp": 2}))  # fmt: skip
    assert expected() == p6
    # the gateway falls silent past the answer window: its steps are unknown, so none
    later = EVENING_MS + 3 * 60_000
    assert expected(later) == _expected(norrkoping, "ektorp", later, 0)
    assert _expected(norrkoping, "ektorp", later, 0) > _expected(norrkoping, "ektorp", later, 2)
