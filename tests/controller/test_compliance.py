"""The minute judge (pure): dark minutes, answering, presence reactions, per zone and gateway."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.compliance import Minutes
from lykta.contract import Event, EventKind, LuminaireReading, TelemetryBatch
from lykta.strategy import Strategy, evaluate

# a December night in Norrköping: every zone with a floor is lit
NIGHT_MS = int(datetime(2026, 12, 1, 22, 0, tzinfo=UTC).timestamp() * 1000)


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
    assert safety and all(z.lit and z.level_pct >= z.floor_pct for z in safety)


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
