"""EN 13201-2 lighting classes and their maintained values.

Three series, each from brightest to darkest:

- **M** (motorised traffic), average road surface luminance in cd/m²: M1–M6
- **C** (conflict areas), average horizontal illuminance in lx: C0–C5
- **P** (pedestrians, cyclists, low-speed areas), average horizontal illuminance in lx: P1–P6

A luminaire designed for class D delivers D's value at 100 % output, so the output needed for
class T is ``value(T) / value(D)``, capped at 100 %. Classes of different series measure
different quantities and are never compared.
"""

from __future__ import annotations

from dataclasses import dataclass

MAINTAINED_VALUES: dict[str, float] = {
    "M1": 2.0, "M2": 1.5, "M3": 1.0, "M4": 0.75, "M5": 0.5, "M6": 0.3,
    "C0": 50.0, "C1": 30.0, "C2": 20.0, "C3": 15.0, "C4": 10.0, "C5": 7.5,
    "P1": 15.0, "P2": 10.0, "P3": 7.5, "P4": 5.0, "P5": 3.0, "P6": 2.0,
}  # fmt: skip

UNITS: dict[str, str] = {"M": "cd/m²", "C": "lx", "P": "lx"}


class LightingClassError(ValueError):
    """A name that is not an EN 13201 class, or classes of different series compared."""


@dataclass(frozen=True, slots=True)
class LightingClass:
    """One EN 13201 lighting class, e.g. ``LightingClass.parse("P3")``."""

    name: str

    @classmethod
    def parse(cls, text: str) -> LightingClass:
        """Parse ``"P3"`` (case-insensitive); raise :class:`LightingClassError` otherwise."""
        name = str(text).strip().upper()
        if name not in MAINTAINED_VALUES:
            raise LightingClassError(f"{text} is not an EN 13201 class")
        return cls(name)

    @property
    def series(self) -> str:
        """``"M"``, ``"C"`` or ``"P"``."""
        return self.name[0]

    @property
    def value(self) -> float:
        """Maintained average luminance (M, cd/m²) or illuminance (C and P, lx)."""
        return MAINTAINED_VALUES[self.name]

    def __str__(self) -> str:
        return self.name


def output_fraction(target: LightingClass, design: LightingClass) -> float:
    """Light output (0–1) a luminaire designed for ``design`` needs to deliver ``target``."""
    if target.series != design.series:
        raise LightingClassError(
            f"cannot light class {target} with a luminaire designed for {design}: "
            f"series {target.series} and {design.series} differ"
        )
    return min(1.0, target.value / design.value)
