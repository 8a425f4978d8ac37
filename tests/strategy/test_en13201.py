"""EN 13201 classes and the output a design class needs."""

from __future__ import annotations

import pytest

from lykta.strategy.en13201 import LightingClass, LightingClassError, output_fraction


def test_values_from_the_standard() -> None:
    assert [LightingClass.parse(f"M{i}").value for i in range(1, 7)] == [
        2.0,
        1.5,
        1.0,
        0.75,
        0.5,
        0.3,
    ]
    assert [LightingClass.parse(f"C{i}").value for i in range(0, 6)] == [50, 30, 20, 15, 10, 7.5]
    assert [LightingClass.parse(f"P{i}").value for i in range(1, 7)] == [15, 10, 7.5, 5.0, 3.0, 2.0]


def test_parse_errors_name_the_input() -> None:
    with pytest.raises(LightingClassError, match="P7 is not an EN 13201 class"):
        LightingClass.parse("P7")
    assert LightingClass.parse(" p3 ").name == "P3"


def test_output_fraction() -> None:
    p = LightingClass.parse
    assert output_fraction(p("P4"), p("P2")) == pytest.approx(0.5)
    assert output_fraction(p("P1"), p("P2")) == 1.0  # capped
    with pytest.raises(LightingClassError, match="series"):
        output_fraction(p("M3"), p("P2"))
