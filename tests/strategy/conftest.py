"""Shared fixtures for the strategy engine tests: the Norrköping example and a small strategy."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from lykta.strategy import Strategy, load_strategy, parse_strategy

ROOT = Path(__file__).resolve().parents[2]
NORRKOPING = ROOT / "config" / "norrkoping" / "strategy.toml"

MINI: dict[str, Any] = {
    "site": {"name": "Test", "latitude": 58.59, "longitude": 16.19, "timezone": "Europe/Stockholm"},
    "switching": {"sun_elevation_deg": -4.0},
    "profiles": {
        "weekday": {
            "periods": [
                {"name": "evening", "start": "dusk"},
                {"name": "late", "start": "22:00"},
                {"name": "night", "start": "02:30"},
            ]
        }
    },
    "calendar": [{"profile": "weekday"}],
    "zones": {
        "path": {
            "kind": "pedestrian_cycle_path",
            "safety_route": True,
            "classes": {"evening": "P2", "late": "P3", "night": "P5"},
            "safety_floor": "P4",
            "fade_down_s": 45.0,
            "presence": {"boost": "P2", "hold_s": 60, "ahead": 2, "behind": 1},
        },
        "street": {
            "kind": "residential_street",
            "classes": {"evening": "P4", "late": "P5", "night": "P6"},
            "safety_floor": "P6",
        },
    },
    "luminaires": [
        *(
            {"id": f"p{i}", "zone": "path", "position_m": 20.0 * i, "gateway": "gw1",
             "bus": "b1", "short_address": i, "group": 0, "design_class": "P2",
             "rated_power_w": 30}
            for i in range(10)
        ),
        *(
            {"id": f"s{i}", "zone": "street", "position_m": 30.0 * i, "gateway": "gw1",
             "bus": "b2", "short_address": i, "group": None if i == 0 else 1,
             "design_class": "P3", "rated_power_w": 20}
            for i in range(5)
        ),
    ],
}  # fmt: skip
for _lum in MINI["luminaires"]:
    if _lum["group"] is None:
        del _lum["group"]


def mini_doc() -> dict[str, Any]:
    """A fresh copy of the small test strategy document."""
    return copy.deepcopy(MINI)


@pytest.fixture(scope="session")
def norrkoping() -> Strategy:
    """The Norrköping example strategy."""
    return load_strategy(NORRKOPING)


@pytest.fixture(scope="session")
def mini() -> Strategy:
    """The small test strategy (two zones, 15 luminaires, one gateway)."""
    return parse_strategy(mini_doc(), "mini.toml")
