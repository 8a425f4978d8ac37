"""The pure alarm rules: hysteresis, priorities, every fault kind."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.alarms import (
    AlarmEngine,
    AlarmKind,
    AlarmRules,
    Band,
    Condition,
    Debounce,
    OpenAlarm,
    SiteMap,
    expected_power_w,
    zone_priority,
)
from lykta.contract import (
    Basis,
    Event,
    EventKind,
    LuminaireReading,
    MeterReading,
    State,
    TelemetryBatch,
)
from lykta.strategy import load_strategy

STRATEGY = Path(__file__).parents[2] / "config" / "norrkoping" / "strategy.toml"
NIGHT = int(datetime(2026, 11, 20, 22, tzinfo=UTC).timestamp() * 1000)  # dark in Norrköping
NOON = int(datetime(2026, 6, 20, 11, tzinfo=UTC).timestamp() * 1000)  # sun ~55° up


@pytest.fixture(scope="module")
def site_map() -> SiteMap:
    return SiteMap.from_strategy(load_strategy(STRATEGY))


def reading(lid: str, ts: int, *, level: int = 254, power: float = 28.0, status: int = 0):
    return LuminaireReading(id=lid, ts=ts, level=level, power_w=power, energy_wh=1.0, status=status)


def batch(ts: int, *lums: LuminaireReading, meters: list[MeterReading] | None = None):
    return TelemetryBatch(seq=0, ts=ts, luminaires=list(lums), meters=meters or [])


# -- hysteresis (the invariants) ----------------------------------------------------------

bands = st.tuples(st.floats(-100, 100), st.floats(0.01, 50), st.booleans()).map(
    lambda t: Band(t[0] + t[1], t[0], True) if t[2] else Band(t[0], t[0] + t[1], False)
)


@settings(max_examples=200, deadline=None)
@given(
    band=bands,
    fractions=st.lists(st.floats(0.001, 0.999), min_size=1, max_size=60),
    start_active=st.booleans(),
    raise_after=st.integers(1, 4),
    clear_after=st.integers(1, 4),
)
def test_value_inside_the_band_never_changes_the_alarm(
    band: Band, fractions: list[float], start_active: bool, raise_after: int, clear_after: int
) -> None:
    """Invariant: a value oscillating strictly between the clear and raise thresholds is no
    evidence, so the alarm neither raises nor clears, however long it goes on."""
    lo, hi = sorted((band.raise_at, band.clear_at))
    cond = Condition(active=start_active)
    deb = Debounce(raise_after=raise_after, clear_after=clear_after)
    for f in fractions:
        assert not cond.step(band.judge(lo + f * (hi - lo)), deb)
    assert cond.active is start_active


@settings(max_examples=200, deadline=None)
@given(
    band=bands,
    values=st.lists(st.floats(-200, 200), max_size=120),
    raise_after=st.integers(1, 4),
    clear_after=st.integers(1, 4),
)
def test_every_change_needs_a_full_crossing_and_a_run(
    band: Band, values: list[float], raise_after: int, clear_after: int
) -> None:
    """Invariant: the alarm raises only after ``raise_after`` consecutive values beyond the
    raise threshold and clears only after ``clear_after`` consecutive values beyond the clear
    threshold; changes alternate; so there are never more changes than full band crossings."""
    cond = Condition()
    deb = Debounce(raise_after=raise_after, clear_after=clear_after)
    verdicts = [band.judge(v) for v in values]
    for i, v in enumerate(verdicts):
        was = cond.active
        if cond.step(v, deb):
            assert cond.active is (not was) and v is cond.active
            need = raise_after if cond.active else clear_after
            assert i + 1 >= need and all(x is v for x in verdicts[i + 1 - need : i + 1])
    crossings, side = 0, None
    for v in verdicts:
        if v is not None and v != side:
            crossings += side is not None or v is True
            side = v
    changes = Condition()
    n = sum(changes.step(v, deb) for v in verdicts)
    assert n <= crossings


def test_band_must_have_hysteresis() -> None:
    with pytest.raises(ValueError, match="clear must lie below raise"):
        Band(5, 5)
    with pytest.raises(ValueError, match="clear must lie above raise"):
        Band(20, 10, rising=False)


# -- priorities ---------------------------------------------------------------------------


def test_zone_priority_puts_safety_routes_and_exposed_places_first(site_map: SiteMap) -> None:
    assert zone_priority("motorised_road", True) == 1
    assert zone_priority("exposed_place", False) == 1
    assert zone_priority("bus_stop", False) == 2
    assert zone_priority("residential_street", False) == 3
    assert site_map.luminaires["STR-001"].priority == 1  # trygghetsstråket
    assert site_map.gateway_priority["gw-ektorp"] == 3
    assert site_map.gateway_priority["gw-centrum"] == 1


# -- the rules ----------------------------------------------------------------------------


def test_lamp_failure_raises_after_debounce_and_clears_when_repaired(site_map: SiteMap) -> None:
    eng = AlarmEngine(AlarmRules(), site_map)
    assert (
        eng.on_telemetry("gw-centrum", batch(NIGHT, reading("STR-001", NIGHT, status=0x02))) == []
    )
    [ch] = eng.on_telemetry(
        "gw-centrum", batch(NIGHT + 1, reading("STR-001", NIGHT + 1, status=0x02))
    )
    assert (ch.kind, ch.source, ch.active, ch.priority, ch.zone) == (
        AlarmKind.LAMP_FAILURE,
        "STR-001",
        True,
        1,
        "stromstraket",
    )
    assert "lamp failure" in ch.message
    # a flicker of one good reading does not clear it
    assert eng.on_telemetry("gw-centrum", batch(NIGHT + 2, reading("STR-001", NIGHT + 2))) == []
    assert (
        eng.on_telemetry("gw-centrum", batch(NIGHT + 3, reading("STR-001", NIGHT + 3, status=2)))
        == []
    )
    eng.on_telemetry("gw-centrum", batch(NIGHT + 4, reading("STR-001", NIGHT + 4)))
    [ch] = eng.on_telemetry("gw-centrum", batch(NIGHT + 5, reading("STR-001", NIGHT + 5)))
    assert ch.kind is AlarmKind.LAMP_FAILURE and not ch.active
    lines = ch.lines("norrkoping")
    assert lines[0].startswith("alarm,gateway=gw-centrum,kind=lamp_failure,priority=1,")


def test_lamp_failure_event_decides_at_once(site_map: SiteMap) -> None:
    eng = AlarmEngine(AlarmRules(), site_map)
    [ch] = eng.on_event("gw-ektorp", Event(ts=NIGHT, kind=EventKind.LAMP_FAILURE, source="EKT-001"))
    assert ch.active and ch.priority == 3
    [ch] = eng.on_event("gw-ektorp", Event(ts=NIGHT + 9, kind=EventKind.LAMP_OK, source="EKT-001"))
    assert not ch.active


def test_gateway_offline_and_back(site_map: SiteMap) -> None:
    eng = AlarmEngine(AlarmRules(), site_map)
    assert eng.on_gateway("gw-centrum", State(online=True, bdseq=0), True, NIGHT) == []
    [ch] = eng.on_gateway("gw-centrum", State(online=False, bdseq=0), False, NIGHT + 10)
    assert (ch.kind, ch.active, ch.priority) == (AlarmKind.GATEWAY_OFFLINE, True, 1)
    [ch] = eng.on_gateway("gw-centrum", State(online=True, bdseq=1), True, NIGHT + 20)
    assert not ch.active and "back online" in ch.message


def test_not_responding_after_silence_only_while_gateway_online(site_map: SiteMap) -> None:
    rules = AlarmRules(not_responding_after_s=60)
    eng = AlarmEngine(rules, site_map)
    eng.on_gateway("gw-saltangen", State(online=True, bdseq=0), True, NIGHT)
    eng.on_telemetry(
        "gw-saltangen", batch(NIGHT, *(reading(f"RES-{i:03d}", NIGHT) for i in range(1, 17)))
    )
    assert eng.tick(NIGHT + 59_000) == []
    changes = eng.tick(NIGHT + 61_000)
    assert {c.kind for c in changes} == {AlarmKind.NOT_RESPONDING}
    assert len(changes) == sum(
        1 for i in site_map.luminaires.values() if i.gateway == "gw-saltangen"
    )
    assert eng.tick(NIGHT + 62_000) == []  # raised once
    [ch] = eng.on_telemetry(
        "gw-saltangen", batch(NIGHT + 70_000, reading("RES-001", NIGHT + 70_000))
    )
    assert not ch.active and ch.source == "RES-001"
    eng2 = AlarmEngine(rules, site_map)
    eng2.on_gateway("gw-ektorp", State(online=False, bdseq=0), False, NIGHT)
    assert [c.kind for c in eng2.tick(NIGHT + 3600_000)] == []  # offline covers it


def test_day_burning(site_map: SiteMap) -> None:
    eng = AlarmEngine(AlarmRules(), site_map)
    out = []
    for i in range(3):
        out += eng.on_telemetry(
            "gw-ektorp", batch(NOON + i, reading("EKT-001", NOON + i, level=200, power=2.0))
        )
    assert [(c.kind, c.active) for c in out if c.kind is AlarmKind.DAY_BURNING] == [
        (AlarmKind.DAY_BURNING, True)
    ]
    out = []
    for i in range(2):
        out += eng.on_telemetry(
            "gw-ektorp", batch(NOON + 10 + i, reading("EKT-001", NOON + 10 + i, level=0, power=0.3))
        )
    assert [(c.kind, c.active) for c in out] == [(AlarmKind.DAY_BURNING, False)]
    # lit at night is fine; lit by day under an incident override is fine
    eng2 = AlarmEngine(AlarmRules(), site_map)
    for i in range(5):
        assert (
            eng2.on_telemetry(
                "gw-ektorp", batch(NIGHT + i, reading("EKT-001", NIGHT + i, level=254, power=30))
            )
            == []
        )
    eng2.exempt(["EKT-002"], NOON + 3600_000)
    for i in range(5):
        assert not [
            c
            for c in eng2.on_telemetry(
                "gw-ektorp", batch(NOON + i, reading("EKT-002", NOON + i, level=254, power=30))
            )
            if c.kind is AlarmKind.DAY_BURNING
        ]


def test_always_lit_zone_is_never_day_burning(site_map: SiteMap) -> None:
    """The Resecentrum underpass is lit around the clock on purpose (``always_lit``): lit at
    noon in June is no fault there, while the same reading in a street zone raises."""
    assert site_map.luminaires["RES-001"].always_lit
    assert not site_map.luminaires["EKT-001"].always_lit
    eng = AlarmEngine(AlarmRules(), site_map)
    raised = []
    for i in range(10):
        ts = NOON + i * 60_000
        raised += eng.on_telemetry(
            "gw-saltangen", batch(ts, reading("RES-001", ts, level=254, power=40.0))
        )
        raised += eng.on_telemetry(
            "gw-ektorp", batch(ts, reading("EKT-001", ts, level=254, power=28.0))
        )
    burning = [c.source for c in raised if c.kind is AlarmKind.DAY_BURNING and c.active]
    assert burning == ["EKT-001"]


def test_energy_anomaly(site_map: SiteMap) -> None:
    rated = site_map.luminaires["SDL-001"].rated_power_w
    exp = expected_power_w(rated, 254)
    eng = AlarmEngine(AlarmRules(), site_map)
    ok = [
        eng.on_telemetry(
            "gw-soderleden", batch(NIGHT + i, reading("SDL-001", NIGHT + i, power=exp + 1))
        )
        for i in range(5)
    ]
    assert not any(ok)
    out = []
    for i in range(3):
        out += eng.on_telemetry(
            "gw-soderleden",
            batch(NIGHT + 10 + i, reading("SDL-001", NIGHT + 10 + i, power=exp * 2 + 10)),
        )
    [ch] = out
    assert ch.kind is AlarmKind.ENERGY_ANOMALY and ch.active and "expected" in ch.message
    out = []
    for i in range(3):
        out += eng.on_telemetry(
            "gw-soderleden", batch(NIGHT + 20 + i, reading("SDL-001", NIGHT + 20 + i, power=exp))
        )
    assert [(c.kind, c.active) for c in out] == [(AlarmKind.ENERGY_ANOMALY, False)]


def test_a_clear_lands_in_the_series_of_its_raise(site_map: SiteMap) -> None:
    """A retained death judged before the site map is known gets the default priority; its
    clear, judged after the map arrived, keeps the raise's zone and priority (both are tags of
    the InfluxDB series, so a clear in another series would leave the raise open for good)."""
    eng = AlarmEngine(AlarmRules())
    [up] = eng.on_gateway("gw-centrum", State(online=False, bdseq=1), False, NIGHT)
    eng.site_map = site_map
    [down] = eng.on_gateway("gw-centrum", State(online=True, bdseq=2), True, NIGHT + 1)
    assert (up.active, down.active) == (True, False)
    assert (up.priority, up.zone) == (down.priority, down.zone)
    assert up.lines("s")[0].split(" ")[0] == down.lines("s")[0].split(" ")[0]  # same series
    [again] = eng.on_gateway("gw-centrum", State(online=False, bdseq=2), False, NIGHT + 2)
    assert again.priority == 1  # a new raise is judged with what is known now


def test_alarms_are_per_gateway_and_source(site_map: SiteMap) -> None:
    """Two cabinets may both have a meter-1: their supply alarms are two alarms."""
    eng = AlarmEngine(AlarmRules(), site_map)
    dead = [MeterReading(device="meter-1", ts=NIGHT, values={"voltage_l1": 0.0})]
    out = []
    for i in range(2):
        out += eng.on_telemetry("gw-centrum", batch(NIGHT + i, meters=dead))
        out += eng.on_telemetry("gw-ektorp", batch(NIGHT + i, meters=dead))
    assert sorted((c.gateway, c.source, c.active) for c in out) == [
        ("gw-centrum", "meter-1", True), ("gw-ektorp", "meter-1", True)]  # fmt: skip
    ok = [MeterReading(device="meter-1", ts=NIGHT, values={"voltage_l1": 230.0})]
    out = []
    for i in range(2):
        out += eng.on_telemetry("gw-centrum", batch(NIGHT + 5 + i, meters=ok))
    assert [(c.gateway, c.active) for c in out] == [("gw-centrum", False)]
    assert eng.active() == [(AlarmKind.SUPPLY_LOSS, "gw-ektorp", "meter-1")]


@pytest.mark.parametrize("basis", [None, "estimated"])
def test_power_not_measured_is_no_evidence_of_an_energy_anomaly(
    site_map: SiteMap, basis: str | None
) -> None:
    """Unknown is not zero: a reading without power (gear without D4i, or before the first D4i
    read) or with an estimated power neither raises nor clears an energy anomaly."""
    eng = AlarmEngine(AlarmRules(), site_map)

    def unmeasured(ts: int) -> LuminaireReading:
        if basis is None:
            return LuminaireReading(id="SDL-001", ts=ts, level=254)
        return LuminaireReading(
            id="SDL-001", ts=ts, level=254, power_w=0.0, energy_wh=0.0, basis=Basis(basis)
        )

    assert not any(
        eng.on_telemetry("gw-soderleden", batch(NIGHT + i, unmeasured(NIGHT + i)))
        for i in range(10)
    )
    out = []
    for i in range(3):  # a measured 0 W at full level is a fault
        out += eng.on_telemetry(
            "gw-soderleden", batch(NIGHT + 20 + i, reading("SDL-001", NIGHT + 20 + i, power=0))
        )
    assert [(c.kind, c.active) for c in out] == [(AlarmKind.ENERGY_ANOMALY, True)]
    assert not any(
        eng.on_telemetry("gw-soderleden", batch(NIGHT + 30 + i, unmeasured(NIGHT + 30 + i)))
        for i in range(10)
    )  # nor clears it


def test_supply_loss(site_map: SiteMap) -> None:
    eng = AlarmEngine(AlarmRules(), site_map)

    def meter(ts: int, v: float) -> MeterReading:
        return MeterReading(
            device="meter1", ts=ts, values={"voltage_l1_v": v, "voltage_l2_v": v, "power_w": 10.0}
        )

    out = []
    for i, v in enumerate([230, 0.0, 0.0, 100, 0.0, 150, 231, 232]):
        out += eng.on_telemetry("gw-centrum", batch(NIGHT + i, meters=[meter(NIGHT + i, v)]))
    assert [(c.kind, c.source, c.active, c.priority) for c in out] == [
        (AlarmKind.SUPPLY_LOSS, "meter1", True, 1),
        (AlarmKind.SUPPLY_LOSS, "meter1", False, 1),
    ]


def test_program_drift(site_map: SiteMap) -> None:
    eng = AlarmEngine(AlarmRules(drift_grace_s=60), site_map)
    eng.on_gateway("gw-centrum", State(online=True, bdseq=0, program_hash="old"), True, NIGHT)
    eng.expect_program("gw-centrum", "new", NIGHT)
    assert eng.tick(NIGHT + 30_000) == []  # still in its grace time
    [ch] = eng.tick(NIGHT + 61_000)
    assert ch.kind is AlarmKind.PROGRAM_DRIFT and ch.active and "expected new" in ch.message
    [ch] = eng.on_gateway(
        "gw-centrum", State(online=True, bdseq=0, program_hash="new"), True, NIGHT + 70_000
    )
    assert ch.kind is AlarmKind.PROGRAM_DRIFT and not ch.active


def test_restore_clears_instead_of_raising_again(site_map: SiteMap) -> None:
    eng = AlarmEngine(AlarmRules(lamp_failure=Debounce(raise_after=1, clear_after=1)), site_map)
    eng.restore([OpenAlarm("lamp_failure", "gw-centrum", "STR-002", "stromstraket", 1)])
    assert eng.on_telemetry("gw-centrum", batch(NIGHT, reading("STR-002", NIGHT, status=2))) == []
    [ch] = eng.on_telemetry("gw-centrum", batch(NIGHT + 1, reading("STR-002", NIGHT + 1)))
    assert not ch.active


readings_st = st.lists(
    st.tuples(
        st.sampled_from([0, 100, 170, 200, 254]),  # arc level
        st.floats(0, 80),  # power
        st.sampled_from([0, 0, 0, 1, 2, 4]),  # status byte
        st.integers(0, 20 * 3600_000),  # offset from NIGHT: night, morning, day
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(readings=readings_st)
def test_engine_changes_alternate_per_alarm(site_map: SiteMap, readings) -> None:
    """Invariant: for every (kind, source) the changes the engine reports alternate raise,
    clear, raise, … starting with a raise, and the engine's active set matches the last one."""
    eng = AlarmEngine(AlarmRules(), site_map)
    last: dict[tuple, bool] = {}
    for level, power, status, offset in readings:
        ts = NIGHT + offset
        b = batch(ts, reading("SDL-003", ts, level=level, power=power, status=status))
        for ch in eng.on_telemetry("gw-soderleden", b):
            key = (ch.kind, ch.gateway, ch.source)
            assert ch.active is not last.get(key, False), f"{key} repeated {ch.active}"
            assert ch.priority == 3 and ch.zone == "soderleden"  # a motorised road
            last[key] = ch.active
    assert {k for k, v in last.items() if v} == set(eng.active())


@settings(max_examples=60, deadline=None)
@given(deviations=st.lists(st.floats(0.21, 0.49), min_size=1, max_size=40))
def test_power_wandering_inside_the_energy_band_never_flaps(site_map: SiteMap, deviations):
    """Invariant: measured power whose deviation stays between the clear (0.2) and raise (0.5)
    thresholds neither raises nor clears the energy anomaly, whatever its history."""
    rules = AlarmRules(energy_tolerance_w=0.0)
    rated = site_map.luminaires["SDL-001"].rated_power_w
    exp = expected_power_w(rated, 254)
    for start_active in (False, True):
        eng = AlarmEngine(rules, site_map)
        if start_active:
            eng.restore([OpenAlarm("energy_anomaly", "gw-soderleden", "SDL-001")])
        for i, d in enumerate(deviations):
            power = exp * (1 + d if i % 2 else 1 - d)
            b = batch(NIGHT + i, reading("SDL-001", NIGHT + i, power=power))
            assert [c for c in eng.on_telemetry("gw-soderleden", b)
                    if c.kind is AlarmKind.ENERGY_ANOMALY] == []  # fmt: skip
        assert ((AlarmKind.ENERGY_ANOMALY, "gw-soderleden", "SDL-001") in eng.active()) is (
            start_active
        )


def test_program_events_decide_drift_at_once(site_map: SiteMap) -> None:
    eng = AlarmEngine(AlarmRules(drift_grace_s=600), site_map)
    eng.on_gateway("gw-ektorp", State(online=True, bdseq=0, program_hash="old"), True, NIGHT)
    eng.expect_program("gw-ektorp", "new", NIGHT)
    rejected = Event(ts=NIGHT + 5, kind=EventKind.PROGRAM_REJECTED, source="gw-ektorp",
                     detail={"reason": "bad signature", "version": "abc"})  # fmt: skip
    [ch] = eng.on_event("gw-ektorp", rejected)
    assert ch.kind is AlarmKind.PROGRAM_DRIFT and ch.active
    assert ch.message == "gateway rejected the program: bad signature"
    applied = Event(ts=NIGHT + 9, kind=EventKind.PROGRAM_APPLIED, source="gw-ektorp",
                    detail={"version": "abc", "hash": "new"})  # fmt: skip
    [ch] = eng.on_event("gw-ektorp", applied)
    assert ch.kind is AlarmKind.PROGRAM_DRIFT and not ch.active
