"""Corridors across cabinets: the gateways of a path light, together, exactly the preview's
corridor, each its own part, from the programs compiled for them."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lykta.strategy import (
    compile_program,
    load_strategy,
    parse_strategy,
    presence_corridor,
    presence_neighbours,
    presence_reach,
)
from lykta.strategy.presence import corridor

from .conftest import NORRKOPING, mini_doc

START = datetime(2026, 11, 25, 15, tzinfo=UTC)
GATEWAYS = ["gw1", "gw2", "gw3"]


def _strategy(gaps: list[float], owners: list[int], ahead: int, behind: int):
    doc = mini_doc()
    doc["zones"]["path"]["presence"].update(ahead=ahead, behind=behind)
    del doc["zones"]["street"]
    pos, lums = 0.0, []
    for i, (gap, owner) in enumerate(zip(gaps, owners, strict=True)):
        pos += gap
        lums.append({"id": f"p{i:02d}", "zone": "path", "position_m": pos,
                     "gateway": GATEWAYS[owner], "bus": "b1", "short_address": i, "group": 0,
                     "design_class": "P2", "rated_power_w": 30})  # fmt: skip
    doc["luminaires"] = lums
    return parse_strategy(doc, "split.toml")


paths = st.integers(2, 18).flatmap(
    lambda n: st.tuples(
        st.lists(st.sampled_from([0.0, 5.0, 12.5, 25.0, 40.0]), min_size=n, max_size=n),
        # owners in runs along the path (cabinets), sometimes interleaved
        st.lists(st.integers(0, 2), min_size=n, max_size=n),
    )
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(paths, st.integers(0, 4), st.integers(0, 4), st.lists(st.floats(-50, 800), max_size=8))
def test_the_gateways_of_a_path_light_exactly_the_preview_corridor(
    path, ahead: int, behind: int, detections: list[float]
) -> None:
    """Invariant: for any split of a path among gateways and any detection position, the union
    of every gateway's own corridor (computed from its program alone) is the preview's corridor
    over the whole path, and each gateway lights only its own luminaires; every pair of
    gateways sharing a corridor names each other as presence neighbours; a gateway whose own
    luminaires are in the corridor names the others' luminaires of it (``presence_reach``)."""
    gaps, owners = path
    strategy = _strategy(gaps, owners, ahead, behind)
    zone_path = strategy.zone_path("path")
    positions = [x.position_m for x in zone_path]
    programs = {gw: compile_program(strategy, gw, START, 1) for gw in strategy.gateways()}
    listens = presence_neighbours(strategy)
    for p in [*detections, *positions]:
        want = {zone_path[i].id for i in corridor(positions, p, ahead, behind)}
        got: set[str] = set()
        owner = {x.id: x.gateway for x in zone_path}
        for gw, prog in programs.items():
            mine = {lum.id for lum, _ in presence_corridor(prog, "path", p)}
            assert all(owner[x] == gw for x in mine)
            got |= mine
            if mine:
                assert {x.id for x in presence_reach(prog, "path", p)} == want - mine
        assert got == want, (p, positions, owners)
        sharing = {owner[x] for x in want}
        for a in sharing:
            assert sharing - {a} <= set(listens.get(a, [])), (a, sharing, listens)
            rule = next(r for r in programs[a].presence if r.zone == "path")
            assert sharing - {a} <= set(rule.neighbours)


def test_the_norrkoping_boundary_corridor_is_the_previews_and_the_acl_neighbours() -> None:
    """The issue's case: a detection at 1100 m on Strömstråket lights STR-044..048 in the
    preview; gw-centrum lights STR-044..045 and gw-saltangen STR-046..048."""
    nk = load_strategy(NORRKOPING)
    centrum = compile_program(nk, "gw-centrum", START, 2)
    saltangen = compile_program(nk, "gw-saltangen", START, 2)
    assert [x.id for x, _ in presence_corridor(centrum, "stromstraket", 1100.0)] == [
        "STR-044", "STR-045"]  # fmt: skip
    assert [x.id for x, _ in presence_corridor(saltangen, "stromstraket", 1100.0)] == [
        "STR-046", "STR-047", "STR-048"]  # fmt: skip
    assert [x.id for x in presence_reach(centrum, "stromstraket", 1100.0)] == [
        "STR-046", "STR-047", "STR-048"]  # fmt: skip
    assert presence_neighbours(nk) == {"gw-centrum": ["gw-saltangen"],
                                       "gw-saltangen": ["gw-centrum"]}  # fmt: skip
    # a zone in one cabinet names no neighbours, and a program without any is unchanged
    park = next(r for r in centrum.presence if r.zone == "strompparken")
    assert park.neighbours == []
    ektorp = compile_program(nk, "gw-ektorp", START, 2)
    assert ektorp.neighbours == [] and all(r.neighbours == [] for r in ektorp.presence)
