"""The pure level decision: program, presence, overrides, and the floor above them all."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.levels import ActiveOverride, Boost, desired_levels
from lykta.contract.program import Program
from lykta.strategy import in_lit_window, program_target


def test_without_a_program_every_luminaire_gets_the_fail_safe() -> None:
    assert desired_levels(None, 0, ["a", "b"], fail_safe_level=254) == {"a": 254, "b": 254}
    # overrides may raise the fail-safe but never lower it
    low = ActiveOverride("m", frozenset({"a"}), 0, until_ms=10, mode="set")
    assert desired_levels(None, 0, ["a"], fail_safe_level=254, overrides=[low]) == {"a": 254}


@settings(max_examples=200, deadline=None)
@given(
    t=st.floats(0, 1),
    lum_i=st.integers(0, 10_000),
    ov_level=st.integers(0, 254),
    mode=st.sampled_from(["raise", "set"]),
    boost=st.integers(0, 254),
)
def test_while_lit_nothing_goes_below_the_floor(
    program: Program, t: float, lum_i: int, ov_level: int, mode: str, boost: int
) -> None:
    lum = program.luminaires[lum_i % len(program.luminaires)]
    now = int(program.valid_from + t * (program.valid_until - program.valid_from - 1))
    ov = ActiveOverride("x", frozenset({lum.id}), ov_level, until_ms=now + 1000, mode=mode)
    got = desired_levels(
        program,
        now,
        [lum.id],
        fail_safe_level=254,
        overrides=[ov],
        boosts={lum.id: Boost(boost, now + 1000)},
    )[lum.id]
    if in_lit_window(program, now):
        assert got >= lum.floor_level
    if mode == "raise":
        # the level commanded is the switch point's target: the gear runs the fade itself
        assert got >= max(ov_level, program_target(program, now, luminaire=lum.id).level)


@settings(max_examples=100, deadline=None)
@given(t=st.floats(0, 1), lum_i=st.integers(0, 10_000))
def test_expired_overrides_and_boosts_change_nothing(
    program: Program, t: float, lum_i: int
) -> None:
    lum = program.luminaires[lum_i % len(program.luminaires)]
    now = int(program.valid_from + t * (program.valid_until - program.valid_from - 1))
    ov = ActiveOverride("x", frozenset({lum.id}), 254, until_ms=now, mode="raise")
    plain = desired_levels(program, now, [lum.id], fail_safe_level=254)
    assert (
        desired_levels(
            program,
            now,
            [lum.id],
            fail_safe_level=254,
            overrides=[ov],
            boosts={lum.id: Boost(254, now)},
        )
        == plain
    )
