"""The macros ``lykta dashboards check`` expands as Grafana does (pure)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from lykta.cli.dashboard_influxql import expand, interval_s

ranges = st.integers(min_value=1, max_value=400 * 86_400_000)


@given(a=ranges, b=ranges)
def test_the_interval_is_a_whole_step_of_at_least_a_minute_and_grows_with_the_range(
    a: int, b: int
) -> None:
    """Invariant: ≥ 60 s (one point per minute is what Lykta writes), at least range/1000
    unless capped at a week, and never smaller for a longer range."""
    lo, hi = sorted((a, b))
    assert interval_s(lo) >= 60
    assert interval_s(lo) >= min(lo / 1000 / 1000, 604_800)
    assert interval_s(lo) <= interval_s(hi)


names = st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True)


@given(start=st.integers(0, 2**41), length=st.integers(60_000, 10**10),
       values=st.dictionaries(names, st.from_regex(r"[a-z.*]{1,6}", fullmatch=True),
                              min_size=1, max_size=4))  # fmt: skip
def test_every_macro_and_variable_is_replaced(start: int, length: int,
                                              values: dict[str, str]) -> None:  # fmt: skip
    """Invariant: nothing with a ``$`` is left, the time filter is the exact range in ms, and
    each variable (both ``$x`` and ``${x}``) becomes its value."""
    uses = " AND ".join(f'"{k}" =~ /^${k}$/ AND "{k}2" = \'${{{k}}}\'' for k in values)
    q = f"SELECT sum(x) FROM m WHERE $timeFilter AND {uses} GROUP BY time($__interval)"
    out = expand(q, from_ms=start, to_ms=start + length, variables=values)
    assert "$" not in out.replace("$/", "")  # a regex's end anchor stays
    assert f"time >= {start}ms and time <= {start + length}ms" in out
    assert re.search(rf"GROUP BY time\({interval_s(length)}s\)$", out)
    for k, v in values.items():
        assert f'"{k}" =~ /^{v}$/' in out and f"\"{k}2\" = '{v}'" in out


def test_energy_panels_count_the_minute_writers_points_as_kwh() -> None:
    """An hour of zone_compliance points at 1000 W is 1 kWh in the energy panels, whatever
    interval the minute writer uses (the divisor is derived from it, not copied)."""
    from controller.compliance import MINUTE_MS
    from lykta.cli.dashboard_defs import KWH

    divisor = float(KWH.rsplit("/", 1)[1])
    points_per_hour = 3_600_000 // MINUTE_MS
    assert points_per_hour * 1000.0 / divisor == 1.0
