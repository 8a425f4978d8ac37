"""The read planner: every wanted register read, limits respected, fewest transactions."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.modbus.planner import PlanError, ReadRequest, Span, plan_profile, plan_reads
from gateway.modbus.profile import ForbiddenRange, load_profiles
from gateway.modbus.wire import plan_chars

spans_st = st.lists(
    st.builds(Span, st.sampled_from([3, 4]), st.integers(0, 300), st.sampled_from([1, 2])),
    min_size=1, max_size=12)


def _forbidden(spans: list[Span], cuts: list[tuple[int, int, int]]) -> list[ForbiddenRange]:
    """Forbidden ranges that avoid every wanted register."""
    wanted = {(s.function, s.start + i) for s in spans for i in range(s.count)}
    out = []
    for fn, start, length in cuts:
        regs = {(fn, a) for a in range(start, start + length)}
        if not regs & wanted:
            out.append(ForbiddenRange(function=fn, start=start, end=start + length - 1))
    return out


def _check(plan: list[ReadRequest], spans: list[Span], max_registers: int, max_gap: int,
           forbidden: list[ForbiddenRange]) -> None:
    for s in spans:
        assert any(r.function == s.function and r.start <= s.start and s.end <= r.end
                   for r in plan), f"{s} not read whole by one request"
    for r in plan:
        assert 1 <= r.count <= max_registers
        for f in forbidden:
            assert not (f.function == r.function and r.start <= f.end and f.start <= r.end)
        wanted = sorted({a for s in spans if s.function == r.function
                         for a in range(s.start, s.end + 1) if r.start <= a <= r.end})
        assert wanted[0] == r.start and wanted[-1] == r.end  # no wasted edges
        assert all(b - a - 1 <= max_gap for a, b in itertools.pairwise(wanted))


@settings(max_examples=300, deadline=None)
@given(spans=spans_st, max_registers=st.integers(2, 40), max_gap=st.integers(0, 20),
       cuts=st.lists(st.tuples(st.sampled_from([3, 4]), st.integers(0, 300),
                               st.integers(1, 10)), max_size=4))
def test_plan_reads_every_register_within_limits(spans: list[Span], max_registers: int,
                                                 max_gap: int,
                                                 cuts: list[tuple[int, int, int]]) -> None:
    """Invariant: each wanted span is read whole by one request, no request exceeds the
    device limit, touches a forbidden register, or fills a gap wider than max_gap."""
    forbidden = _forbidden(spans, cuts)
    plan = plan_reads(spans, max_registers=max_registers, max_gap=max_gap, forbidden=forbidden)
    _check(plan, spans, max_registers, max_gap, forbidden)


def _brute_force_transactions(spans: list[Span], max_registers: int, max_gap: int) -> int:
    """Fewest transactions by trying every way to cut the sorted spans into requests."""
    return _brute_force(spans, max_registers, max_gap)[0]


def _brute_force(spans: list[Span], max_registers: int, max_gap: int) -> tuple[int, int]:
    """(fewest transactions, least wire characters) over every way to cut the sorted spans
    into requests; characters computed here from the RTU frame layout, not the planner's."""
    units = sorted(set(spans))
    best = len(units)
    best_chars = 10**9
    for cuts in itertools.product([False, True], repeat=len(units) - 1):
        groups: list[list[Span]] = [[units[0]]]
        for u, cut in zip(units[1:], cuts, strict=True):
            if cut:
                groups.append([u])
            else:
                groups[-1].append(u)
        ok = True
        for g in groups:
            end = max(s.end for s in g)
            regs = sorted({a for s in g for a in range(s.start, s.end + 1)})
            if len({s.function for s in g}) > 1 or end - g[0].start + 1 > max_registers \
                    or any(b - a - 1 > max_gap for a, b in itertools.pairwise(regs)):
                ok = False
                break
        if ok:
            best = min(best, len(groups))
            chars = 0
            for g in groups:
                n = max(s.end for s in g) - g[0].start + 1
                # request 8 bytes, reply 5 + 2n, two 3.5-character silences
                chars += 8 + 5 + 2 * n + 7
            best_chars = min(best_chars, chars)
    return best, best_chars


@settings(max_examples=150, deadline=None)
@given(spans=st.lists(st.builds(Span, st.just(4), st.integers(0, 60), st.sampled_from([1, 2])),
                      min_size=1, max_size=8),
       max_registers=st.integers(2, 20), max_gap=st.integers(0, 8))
def test_plan_is_minimal(spans: list[Span], max_registers: int, max_gap: int) -> None:
    """Invariant: no valid plan has fewer transactions (checked by exhaustive search)."""
    plan = plan_reads(spans, max_registers=max_registers, max_gap=max_gap,
                      objective="transactions")
    assert len(plan) == _brute_force_transactions(spans, max_registers, max_gap)


@settings(max_examples=150, deadline=None)
@given(spans=st.lists(st.builds(Span, st.just(4), st.integers(0, 60), st.sampled_from([1, 2])),
                      min_size=1, max_size=8),
       max_registers=st.integers(2, 40), max_gap=st.integers(0, 30))
def test_default_plan_has_the_least_wire_time(spans: list[Span], max_registers: int,
                                              max_gap: int) -> None:
    """Invariant: no valid plan takes less wire time than the default plan (brute force)."""
    plan = plan_reads(spans, max_registers=max_registers, max_gap=max_gap)
    _check(plan, spans, max_registers, max_gap, [])
    assert plan_chars(plan) == _brute_force(spans, max_registers, max_gap)[1]


def test_coils_are_planned_in_bits() -> None:
    spans = [Span(1, 0, 1), Span(1, 15, 1), Span(1, 100, 1), Span(1, 1900, 1), Span(3, 0, 1)]
    plan = plan_reads(spans, max_registers=10, max_gap=2000)
    # 101 coils are 13 bytes: one read beats three; 1801 more bits (226 bytes) do not
    assert plan == [ReadRequest(1, 0, 101), ReadRequest(1, 1900, 1), ReadRequest(3, 0, 1)]


def test_forbidden_range_splits_a_read() -> None:
    spans = [Span(3, 0, 1), Span(3, 4, 1)]
    assert plan_reads(spans, max_registers=10, max_gap=5) == [ReadRequest(3, 0, 5)]
    forbidden = [ForbiddenRange(function=3, start=2, end=2)]
    assert plan_reads(spans, max_registers=10, max_gap=5, forbidden=forbidden) == [
        ReadRequest(3, 0, 1), ReadRequest(3, 4, 1)]


def test_wanted_register_in_forbidden_range_is_an_error() -> None:
    forbidden = [ForbiddenRange(function=4, start=0, end=3)]
    try:
        plan_reads([Span(4, 2, 1)], max_registers=10, max_gap=0, forbidden=forbidden)
    except PlanError as exc:
        assert "0x0002" in str(exc)
    else:
        raise AssertionError("expected PlanError")


def test_shipped_profiles_plan_as_well_as_the_wire_optimum() -> None:
    for name, profile in load_profiles().items():
        plan = plan_profile(profile)
        best = plan_reads([Span(r.function, r.address, r.count) for r in profile.registers],
                          max_registers=profile.max_registers, max_gap=125,
                          forbidden=profile.forbidden, objective="wire")
        assert plan_chars(plan) <= 1.1 * plan_chars(best), name
    sdm630 = plan_profile(load_profiles()["eastron_sdm630"])
    assert all(r.count <= 80 for r in sdm630) and len(sdm630) == 5
