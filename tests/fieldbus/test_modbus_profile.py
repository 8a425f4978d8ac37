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
    total = next(r for r in sdm630.registers if r.field == "energy_total_kwh")
    assert (total.address, total.type, total.function) == (0x0156, "float32", 4)
    assert sdm630.max_registers == 80


def test_profile_error_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nkind = "meter"\nmeasurement = "m"\nmax_registers = 10\n'
                   '[[registers]]\nfield = "v"\naddress = 1\ntype = "u128"\n')
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
    assert decode_values(profile, {(4, 2): 0xFFFF}) == {"temperature_c": pytest.approx(-0.1)}
    # illuminance is low word first on this sensor: 0x0001_0000 -> 65536 * 0.1
    assert decode_values(profile, {(4, 0): 0, (4, 1): 1})["lux"] == pytest.approx(6553.6)


def test_health_goes_offline_and_comes_back() -> None:
    h = DeviceHealth(interval_s=10, offline_after=3, offline_interval_s=60)
    assert h.record(0, answered=False) is None and h.online
    assert h.record(10, answered=False) is None
    assert h.record(20, answered=False) is Transition.WENT_OFFLINE
    assert not h.due(79) and h.due(80)  # polled less often while offline
    assert h.record(80, answered=False) is None
    assert h.record(140, answered=True) is Transition.CAME_ONLINE
    assert h.next_poll_s == 150


def _profile(registers: str) -> str:
    return 'name = "x"\nkind = "meter"\nmeasurement = "m"\nmax_registers = 10\n' + registers


@pytest.mark.parametrize("registers, message", [
    ('[[registers]]\nfield = "a"\naddress = 0\ntype = "u32"\n'
     '[[registers]]\nfield = "b"\naddress = 1\n', "also read by a"),
    ('[[registers]]\nfield = "a"\naddress = 0\nscale = 0.0\n', "non-zero"),
    ('[[registers]]\nfield = "a"\naddress = 0\nscale = nan\n', "finite"),
    ('[[registers]]\nfield = "a"\naddress = 0\nmin = 5.0\nmax = 1.0\n', "below min"),
    ('[[registers]]\nfield = "a"\naddress = 0\ntype = "bit"\n', "needs 'bit'"),
    ('[[registers]]\nfield = "a"\nfunction = 3\naddress = 0\ntype = "bool"\n', "function 1 or 2"),
    ('[[registers]]\nfield = "a"\naddress = 0\ntype = "string"\n', "length"),
    ('[[registers]]\nfield = "a"\naddress = 0\ntype = "bit"\nbit = 3\n'
     '[[registers]]\nfield = "b"\naddress = 0\ntype = "bit"\nbit = 3\n', "also read by a"),
])
def test_profile_rejects_overlaps_and_bad_numbers(tmp_path: Path, registers: str,
                                                  message: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(_profile(registers))
    with pytest.raises(ProfileError, match=message):
        load_profile(bad)


def test_bit_fields_may_share_a_register(tmp_path: Path) -> None:
    ok = tmp_path / "ok.toml"
    ok.write_text(_profile('[[registers]]\nfield = "a"\naddress = 0\ntype = "bit"\nbit = 0\n'
                           '[[registers]]\nfield = "b"\naddress = 0\ntype = "bit"\nbit = 7\n'))
    profile = load_profile(ok)
    assert decode_values(profile, {(4, 0): 0x0081}) == {"a": 1.0, "b": 1.0}


WIDE = {"u16": (0, 2**16 - 1), "s16": (-(2**15), 2**15 - 1), "u32": (0, 2**32 - 1),
        "s32": (-(2**31), 2**31 - 1),
        # readings are floats: 64-bit counters are exact up to 2**53
        "u64": (0, 2**53), "s64": (-(2**53), 2**53)}


@settings(max_examples=300, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([*WIDE, "float32", "float64"]),
       order=st.sampled_from(["ABCD", "CDAB", "BADC", "DCBA"]))
def test_every_type_and_byte_order_round_trips(data: st.DataObject, dtype: str,
                                               order: str) -> None:
    """Invariant: the simulator's encoding decodes to the same value in every byte order, and
    the byte orders are the byte permutations they name."""
    profile = PROFILES["lux_sensor"]
    reg = RegisterSpec(field="x", address=0, type=dtype, order=order)
    if dtype.startswith("float"):
        value = data.draw(st.floats(allow_nan=False, allow_infinity=False,
                                    width=32 if dtype == "float32" else 64))
    else:
        value = float(data.draw(st.integers(*WIDE[dtype])))
    raw = encode_register(profile, reg, value)
    decoded = decode_register(profile, reg, raw)
    assert decoded == value or math.isclose(decoded, value, rel_tol=1e-15)
    abcd = encode_register(profile, reg.model_copy(update={"order": "ABCD"}), value)
    wire = b"".join(w.to_bytes(2, "big") for w in raw)
    ref = b"".join(w.to_bytes(2, "big") for w in abcd)
    if order == "DCBA":
        assert wire == ref[::-1]
    elif order == "BADC":
        assert wire == b"".join(ref[i:i + 2][::-1] for i in range(0, len(ref), 2))


def test_invalid_values_are_left_out_with_a_reason_and_precision_rounds() -> None:
    profile = load_profiles()["lux_sensor"].model_copy(update={"registers": (
        RegisterSpec(field="e", address=0, type="float64", precision=2),
        RegisterSpec(field="t", address=4, type="s16", scale=0.1, min=-50, max=80),
        RegisterSpec(field="n", address=5, type="u16", nan_value=0xFFFF),
        RegisterSpec(field="f", address=6, type="float32"),
    )})
    from gateway.modbus.decode import decode_checked
    image = {}
    for reg, value in zip(profile.registers, [123456.70000000001, 99.9, 65535.0, math.nan],
                          strict=True):
        for i, w in enumerate(encode_register(profile, reg, value)):
            image[(4, reg.address + i)] = w
    values, rejected = decode_checked(profile, image)
    assert values == {"e": 123456.7}
    assert {(r.field, r.reason) for r in rejected} == {
        ("t", "out_of_range"), ("n", "not_available"), ("f", "not_finite")}
