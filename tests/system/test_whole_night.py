"""Whole nights at Norrköping on the demo's clock, pedestrians walking: from 15:00 to 09:00
the street never goes below a floor while the strategy says lit (``dark_minutes``) and shows
what the preview shows (``preview_mismatch_minutes``) — through dusk, the evening/late/night/
morning periods, dawn, and both nights the clocks change (Europe/Stockholm: 2027-03-28 02:00
CET -> 03:00 CEST, a 17-hour night; 2027-10-31 03:00 CEST -> 02:00 CET, a 19-hour one).

In the suite the nights run at 3600× (an hour a second, ~25 s each) with one pedestrian an
hour per cabinet: switch points, fades and the fail-safe are judged all night; presence only
roughly, because at that speed a hold lasts milliseconds and its transitions are excused
(:mod:`lykta.cli.demo_metrics`). ``./run.sh soak`` runs the same nights at 300× with six
pedestrians an hour (about 4 minutes a night), where a corridor's transitions are 90 s.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lykta.cli.demo import _run, _start_ms
from lykta.clock import ScaledClock
from lykta.stack import LocalStack, StackInfo

SOAK = os.environ.get("LYKTA_SOAK") == "1"
SPEED, PEDESTRIANS = (300, 6) if SOAK else (3600, 1)
GATEWAYS, LUMINAIRES = 2, 12

NIGHTS = {
    "winter": ("2027-01-15T15:00", "2027-01-16T09:00", 18),
    "spring-forward": ("2027-03-27T15:00", "2027-03-28T09:00", 17),
    "fall-back": ("2027-10-30T15:00", "2027-10-31T09:00", 19),
}


@pytest.fixture(scope="module")
def night_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackInfo, Path]]:
    """A stack of their own and one demo directory for the nights. A demo controller keeps its
    broker session (and its share of the shared subscription) for minutes after it stops, so
    that nothing is lost when it comes back; a second demo with another controller identity on
    the same broker would see part of its telemetry go to the first one's session."""
    with LocalStack(tmp_path_factory.mktemp("night-stack")) as info:
        yield info, tmp_path_factory.mktemp("night-demo")


@pytest.mark.parametrize("night", list(NIGHTS))
async def test_a_whole_night_is_lit_as_previewed(
    night: str, night_stack: tuple[StackInfo, Path]
) -> None:
    stack, demo_dir = night_stack
    start, end, hours = NIGHTS[night]
    start_ms, end_ms = _start_ms(start), _start_ms(end)
    assert start_ms is not None and end_ms is not None
    assert (end_ms - start_ms) == hours * 3600_000  # the DST nights are an hour short / long
    seconds = (end_ms - start_ms) / 1000 / SPEED
    s = await _run(
        stack.mqtt_port, stack.influx_url, demo_dir, GATEWAYS, LUMINAIRES, seconds, 1.0,
        clock=ScaledClock(start_ms, SPEED, running=False), pedestrians=PEDESTRIANS,
    )  # fmt: skip
    # the night's figures (shown by ./run.sh soak, which passes -rP)
    print(night, {k: s[k] for k in ("dark_minutes", "preview_mismatch_minutes",
                                    "compared_luminaire_minutes", "presence_reactions",
                                    "presence_p99_ms", "first_mismatches")})  # fmt: skip
    assert s["clock_start"] == f"{start}:00{'+01:00' if night != 'fall-back' else '+02:00'}"
    assert s["gateways_running_program"] == GATEWAYS
    assert s["readings_stored"] == s["readings_published"] > 0
    assert s["dark_minutes"] == 0, s
    assert s["preview_mismatch_minutes"] == 0, s
    # judged for most of the night, not excused away as transitions
    assert s["compared_luminaire_minutes"] > 0.5 * GATEWAYS * LUMINAIRES * hours * 60, s
    assert s["presence_reactions"] > 0, s  # people walked in the dark and were lit
    assert s["lit_luminaires"] == 0, s  # 09:00: day again, everything switched off
