"""Device profiles load with precise errors; decoding inverts the simulator's encoding."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.modbus.decode import decode_register, decode_values, encode_register
from gateway.modbus.health import DeviceHealth, Transition
from gateway.modbus.profile import ProfileError, RegisterSpec, load_profile, load_profiles

PROFILES = load_profiles()


def test_shipped_profiles_load() -> None:
    assert {"eastron_sdm630", "eastron_sdm120", "radar_presence", "lux_sensor"} <= set(PROFILES)
    sdm630 = PROFILES["eastron_sdm630"]
    total = next(r for r in sdm630.registers if r.field == "total_energy")
    assert (total.address, total.type, total.function) == (0x0156, "float32", 4)
    assert sdm630.max_registers == 80


def test_profile_error_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nkind = "meter"\nmeasurement = "m"\nmax_registers = 10\n'
                   '[[registers]]\nfield = "v"\naddress = 1\ntype = "u64"\n')
    with pytest.raises(ProfileError, match=r"bad\.toml: registers\.0\.type"):
        load_profile(bad)
    bad.write_text('name = "x"\nkind = "meter"\nmeasurement = "m"\nmax_registers = 10\n'
                   '[[forbidden]]\nfunction = 4\nstart = 0\nend = 5\n'
                   '[[registers]]\nfield = "v"\naddress = 1\n')
    with pytest.raises(ProfileError, match="forbidden range"):
        load_profile(bad)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(["u16", "s16", "u32", "s32", "float32"]),
       order=st.sampled_from(["big", "little"]), scale=st.sampled_from([1.0, 0.1, 0.01, 10.0]))
def test_decode_inverts_encode(data: st.DataObject, dtype: str, order: str,
                               scale: float) -> None:
    """Invariant: a value the simulator encodes decodes to itself (to the type's resolution)."""
    bits = {"u16": (0, 2**16 - 1), "s16": (-(2**15), 2**15 - 1), "u32": (0, 2**32 - 1),
            "s32": (-(2**31), 2**31 - 1)}
    profile = PROFILES["lux_sensor"]
    reg = RegisterSpec(field="x", address=0, type=dtype, word_order=order, scale=scale)
    if dtype == "float32":
        value = data.draw(st.floats(-1e6, 1e6, width=32))
        assert math.isclose(decode_register(profile, reg, encode_register(profile, reg, value)),
                            value, rel_tol=1e-6, abs_tol=1e-6 * scale)
    else:
        lo, hi = bits[dtype]
        raw = data.draw(st.integers(lo, hi))
        assert decode_register(profile, reg, encode_register(profile, reg, raw * scale)) == \
            pytest.approx(raw * scale)


def test_partial_image_decodes_what_is_there() -> None:
    profile = PROFILES["lux_sensor"]
    assert decode_values(profile, {(4, 2): 0xFFFF}) == {"temperature": pytest.approx(-0.1)}
    # illuminance is low word first on this sensor: 0x0001_0000 -> 65536 * 0.1
    assert decode_values(profile, {(4, 0): 0, (4, 1): 1})["illuminance"] == pytest.approx(6553.6)


def test_health_goes_offline_and_comes_back() -> None:
    h = DeviceHealth(interval_s=10, offline_after=3, offline_interval_s=60)
    assert h.record(0, answered=False) is None and h.online
    assert h.record(10, answered=False) is None
    assert h.record(20, answered=False) is Transition.WENT_OFFLINE
    assert not h.due(79) and h.due(80)  # polled less often while offline
    assert h.record(80, answered=False) is None
    assert h.record(140, answered=True) is Transition.CAME_ONLINE
    assert h.next_poll_s == 150
