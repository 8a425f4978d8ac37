"""The lighting strategy engine: the belysningsstrategi as code.

Public interface (stable; other parts import these):

- ``load_strategy(path) -> Strategy`` — TOML + inventory, raises :class:`StrategyError`
  listing every problem as ``file: key.path: reason``.
- ``evaluate(strategy, luminaire_id, at, *, overrides=None, presence=None, lux_lit=None,
  flow_per_h=None) -> Target`` — pure; ``at`` is an aware UTC datetime; ``Target.level`` is the
  DALI arc level, never below the safety floor while lit; ``flow_per_h`` is counted traffic for
  adaptive classes (``lykta.strategy.adaptive``; ``None``: unknown, no adaptation).
- ``compile_program(strategy, gateway_id, start, hours) -> lykta.contract.Program``.
- Program execution at the gateway (``lykta.strategy.execution``): ``program_level``,
  ``program_target``, ``program_valid``, ``in_lit_window``, ``enforce_floor``,
  ``presence_corridor``, ``presence_reach`` (a corridor's luminaires on neighbouring
  gateways), ``lux_program_level``; fail-safe
  ``safe_default_level(latitude, longitude, now)``.
- DALI curve (``lykta.strategy.dali_curve``): ``arc_level_to_percent``,
  ``percent_to_arc_level``, ``arc_level_at_least``, ``fade_time_code``.
- ``estimate_energy`` / ``year_energy`` and ``preview_night`` for the operator tools.
"""

from lykta.strategy.astronomy import LuxHysteresis, lux_switch, safe_default_level
from lykta.strategy.compiler import (
    CompileError,
    compile_program,
    corridor_neighbours,
    presence_neighbours,
)
from lykta.strategy.energy import EnergyReport, estimate_energy, year_energy
from lykta.strategy.evaluator import Target, class_level, evaluate
from lykta.strategy.execution import (
    ProgramNotValid,
    enforce_floor,
    in_lit_window,
    lux_program_level,
    presence_corridor,
    presence_reach,
    program_level,
    program_target,
    program_valid,
)
from lykta.strategy.model import Override, Strategy, StrategyError, load_strategy, parse_strategy
from lykta.strategy.presence import Detection
from lykta.strategy.preview import preview_night

__all__ = [
    "CompileError",
    "Detection",
    "EnergyReport",
    "LuxHysteresis",
    "Override",
    "ProgramNotValid",
    "Strategy",
    "StrategyError",
    "Target",
    "class_level",
    "compile_program",
    "corridor_neighbours",
    "enforce_floor",
    "estimate_energy",
    "evaluate",
    "in_lit_window",
    "load_strategy",
    "lux_program_level",
    "lux_switch",
    "parse_strategy",
    "presence_corridor",
    "presence_neighbours",
    "presence_reach",
    "preview_night",
    "program_level",
    "program_target",
    "program_valid",
    "safe_default_level",
    "year_energy",
]
