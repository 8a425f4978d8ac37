"""Which shipped profile a found Modbus device is (pure): what to read, and how to judge it.

``lykta commission scan modbus`` reads, for every candidate profile, the requests of
:func:`probe_requests` and hands the answers to :func:`identify`:

- a profile with ``identify`` (a model-code register, e.g. Eastron's meter code) is decided by
  it: the value matches (the device is that model, whatever else) or it does not (it is not);
- a profile without one is judged by its readings: every request of its read plan must be
  answered with data (a device of that kind has all of them), and each value must be
  plausible for its type — finite, not a garbage float (the bit pattern of two unrelated
  registers read as float32 is mostly huge or tiny), inside the profile's min/max.

Nothing is ever read that *any* candidate profile forbids (a radar sensor's counters clear when
its configuration block is read, so an SDM's settings are not probed where a radar might be).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.modbus.decode import decode_checked, decode_register, decode_text
from gateway.modbus.planner import ReadRequest, plan_profile
from gateway.modbus.profile import DeviceProfile, RegisterSpec

Answer = list[int] | int | None
"""What a probe request got: the registers, a Modbus exception code, or None (no answer)."""

FLOAT_PLAUSIBLE = (1e-6, 1e7)
"""A float reading outside this magnitude (other than exactly 0) is taken as garbage."""


def _touches_forbidden(req: ReadRequest, profiles: Iterable[DeviceProfile]) -> bool:
    return any(f.function == req.function and req.start <= f.end and f.start <= req.end
               for p in profiles for f in p.forbidden)


def identify_requests(profile: DeviceProfile) -> list[ReadRequest]:
    """One read per ``identify`` field of ``profile``."""
    return [ReadRequest(s.function, s.address, s.count)
            for s in (profile.spec(name) for name in sorted(profile.identify))]


def probe_requests(profile: DeviceProfile, candidates: Iterable[DeviceProfile]
                   ) -> list[ReadRequest]:
    """What to read to judge ``profile``: its ``identify`` registers if it has any, else its
    read plan; requests touching a range some candidate forbids are left out."""
    candidates = list(candidates)
    reqs = identify_requests(profile) or plan_profile(profile)
    return [r for r in reqs if not _touches_forbidden(r, candidates)]


@dataclass(frozen=True, slots=True)
class Verdict:
    """How well a device matches one profile: ``score`` 0..1 (1 = certain), ``by`` how it
    was decided (``model code`` or ``readings``), ``reason`` in words."""

    profile: str
    score: float
    by: str
    reason: str


def _image(answers: Mapping[ReadRequest, Answer]) -> dict[tuple[int, int], int]:
    image: dict[tuple[int, int], int] = {}
    for req, got in answers.items():
        if isinstance(got, list):
            for i, v in enumerate(got):
                image[(req.function, req.start + i)] = v
    return image


def _matches(profile: DeviceProfile, spec: RegisterSpec, raw: list[int], expected: str) -> bool:
    if not spec.numeric:
        return decode_text(profile, spec, raw) == expected
    return math.isclose(decode_register(profile, spec, raw), float(expected), abs_tol=1e-9)


def _plausible(spec: RegisterSpec, value: float) -> bool:
    if spec.type.startswith("float") and value != 0:
        lo, hi = FLOAT_PLAUSIBLE
        return lo <= abs(value) <= hi
    return True


def judge(name: str, profile: DeviceProfile, answers: Mapping[ReadRequest, Answer]) -> Verdict:
    """The verdict on ``profile`` given the ``answers`` to its :func:`probe_requests`."""
    if not answers:
        return Verdict(name, 0.0, "readings", "nothing could be probed safely")
    failed = {r: a for r, a in answers.items() if not isinstance(a, list)}
    if profile.identify:
        if failed:
            req, got = next(iter(failed.items()))
            why = "no answer" if got is None else f"exception {got}"
            return Verdict(name, 0.0, "model code",
                           f"model register fc{req.function} {req.start:#06x}: {why}")
        for field, expected in sorted(profile.identify.items()):
            spec = profile.spec(field)
            req = ReadRequest(spec.function, spec.address, spec.count)
            raw = answers.get(req)
            if not isinstance(raw, list) or not _matches(profile, spec, raw, expected):
                shown = raw if isinstance(raw, list) else None
                return Verdict(name, 0.0, "model code",
                               f"{field} is {shown}, this model has {expected}")
        said = ", ".join(f"{k} = {v}" for k, v in sorted(profile.identify.items()))
        return Verdict(name, 1.0, "model code", said)
    if failed:
        req, got = next(iter(failed.items()))
        why = "no answer" if got is None else f"exception {got}"
        return Verdict(name, 0.0, "readings",
                       f"fc{req.function} {req.start:#06x}+{req.count}: {why}")
    values, rejected = decode_checked(profile, _image(answers))
    numeric = [s for s in profile.registers if s.numeric]
    good = [s.field for s in numeric if s.field in values and _plausible(s, values[s.field])]
    score = len(good) / len(numeric) if numeric else 0.0
    bad = sorted({s.field for s in numeric} - set(good))
    reason = f"{len(good)}/{len(numeric)} readings plausible"
    if bad:
        reason += f" (not: {', '.join(bad[:4])}{', …' if len(bad) > 4 else ''})"
    if rejected:
        reason += f"; {len(rejected)} rejected by the profile"
    # a reading-based match is never as sure as a model code
    return Verdict(name, round(0.9 * score, 3), "readings", reason)


MIN_SCORE = 0.5
"""Below this no profile is proposed (the device is listed as unidentified)."""


def rank(verdicts: Iterable[Verdict]) -> list[Verdict]:
    """Verdicts best first (ties by profile name, so the order is stable)."""
    return sorted(verdicts, key=lambda v: (-v.score, v.profile))


def proposal(verdicts: Iterable[Verdict]) -> Verdict | None:
    """The profile to propose: the best verdict if it reaches :data:`MIN_SCORE` and is not
    tied with another profile's."""
    ranked = rank(verdicts)
    if not ranked or ranked[0].score < MIN_SCORE:
        return None
    if len(ranked) > 1 and ranked[1].score == ranked[0].score:
        return None
    return ranked[0]
