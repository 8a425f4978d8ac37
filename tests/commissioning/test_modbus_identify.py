"""The pure core of `scan modbus`: line settings, unit ids, identification, decoding for ad-hoc
access, and the gateway config written from a scan."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsim.modbus import SimulatedModbusDevice
from gateway.commissioning.gateway_config import (
    gateway_config_text,
    head,
    write_gateway_config,
)
from gateway.modbus.decode import decode_words, encode_words
from gateway.modbus.identify import judge, probe_requests, proposal
from gateway.modbus.line_settings import LineSettings, candidates, parse_ids
from gateway.modbus.profile import REGISTER_WIDTH, load_profiles, parse_profile
from lykta.config import ConfigError

PROFILES = load_profiles()


def test_line_settings_and_ids_parse_like_a_technician_writes_them() -> None:
    assert str(LineSettings.parse("2400-8N1")) == "2400 8N1"
    assert str(LineSettings.parse("9600")) == "9600 8E1"
    assert [str(s) for s in candidates("9600,19200", parity="N")] == ["9600 8N1", "19200 8N1"]
    auto = [str(s) for s in candidates("auto")]
    assert auto[:3] == ["9600 8N1", "9600 8E1", "2400 8N1"] and len(set(auto)) == len(auto)
    assert parse_ids("1-3,7,2") == [1, 2, 3, 7]
    for bad in ("0-5", "5-1", "x", "1-300"):
        with pytest.raises(ValueError, match="--ids"):
            parse_ids(bad)
    with pytest.raises(ValueError, match="baud rate 1234"):
        LineSettings.parse("1234")
    assert {str(LineSettings.parse(f"9600{sep}8N1")) for sep in ("", " ", "-", "/", ":")} == {
        "9600 8N1"}
    for bad in ("9600+8N1", "9600.8N1", "9600*8N1"):
        with pytest.raises(ValueError, match="line settings"):
            LineSettings.parse(bad)
    # silence waited for grows with the character time: slow lines wait longer
    assert LineSettings(2400, "N").silence_s() > LineSettings(115200, "N").silence_s() > 0.08


ORDERS = st.sampled_from(["ABCD", "CDAB", "BADC", "DCBA"])


@given(data=st.data(), order=ORDERS,
       data_type=st.sampled_from(["u16", "s16", "u32", "s32", "u64", "s64", "float32",
                                  "float64"]))
def test_ad_hoc_encoding_round_trips(data: st.DataObject, order: str, data_type: str) -> None:
    """Invariant: what `modbus write` encodes, `modbus read` decodes to the same value, in
    every byte order, and it takes the type's width in registers."""
    bits = 16 * REGISTER_WIDTH[data_type]
    if data_type.startswith("float"):
        value: float = data.draw(st.floats(allow_nan=False, allow_infinity=False,
                                           width=32 if data_type == "float32" else 64))
    elif data_type.startswith("s"):
        value = data.draw(st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1))
    else:
        value = data.draw(st.integers(0, (1 << bits) - 1))
    words = encode_words(data_type, order, value)  # type: ignore[arg-type]
    assert len(words) == REGISTER_WIDTH[data_type] and all(0 <= w <= 0xFFFF for w in words)
    assert decode_words(data_type, order, words) == value  # type: ignore[arg-type]


def test_ad_hoc_encoding_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="outside"):
        encode_words("u16", "ABCD", 70000)
    with pytest.raises(ValueError, match="whole number"):
        encode_words("s32", "ABCD", 1.5)
    assert encode_words("float32", "ABCD", 2.0) == [0x4000, 0]  # 9600 baud on an Eastron


def _answers(device: SimulatedModbusDevice, name: str) -> dict[Any, Any]:
    """What ``device`` answers to the probe requests of profile ``name`` (None for silence
    is not possible here: the device is present)."""
    reqs = probe_requests(PROFILES[name], PROFILES.values())
    return {r: device.answer(r.function, r.start, r.count) for r in reqs}


def _values(profile_name: str, draw: Any) -> dict[str, float]:
    profile = PROFILES[profile_name]
    out: dict[str, float] = {}
    for reg in profile.registers:
        if reg.type.startswith("float"):
            out[reg.field] = draw(st.floats(0.5, 5e4))
        elif reg.type in ("u16", "u32", "u64"):
            out[reg.field] = draw(st.integers(0, 6000)) * reg.scale
        elif reg.type.startswith("s"):
            out[reg.field] = draw(st.integers(-300, 300)) * reg.scale
    return out


@settings(max_examples=40, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(PROFILES)))
def test_every_shipped_device_is_proposed_its_own_profile(data: st.DataObject,
                                                          name: str) -> None:
    """Invariant: a device behaving like shipped profile P, with any plausible readings, is
    proposed P — probing every candidate profile, never a range any of them forbids."""
    device = SimulatedModbusDevice(PROFILES[name], 1, _values(name, data.draw))
    verdicts = [judge(n, p, _answers(device, n)) for n, p in sorted(PROFILES.items())]
    best = proposal(verdicts)
    assert best is not None and best.profile == name, verdicts
    for n in PROFILES:
        for r in probe_requests(PROFILES[n], PROFILES.values()):
            assert not any(f.function == r.function and r.start <= f.end and f.start <= r.end
                           for p in PROFILES.values() for f in p.forbidden)


def test_a_wrong_model_code_rules_a_profile_out_and_garbage_is_not_plausible() -> None:
    sdm120 = SimulatedModbusDevice(PROFILES["eastron_sdm120"], 1, {"voltage_v": 230.0},
                                   settings={"meter_code": 0x99})
    v = judge("eastron_sdm120", PROFILES["eastron_sdm120"], _answers(sdm120, "eastron_sdm120"))
    assert v.score == 0 and "meter_code" in v.reason
    # a lux sensor whose readings are float garbage is not proposed
    lux = PROFILES["lux_sensor"]
    weird = parse_profile({**lux.model_dump(), "registers": [
        {"field": "lux", "address": 0, "type": "float32", "unit": "lx"}]})
    garbage = SimulatedModbusDevice(weird, 1, {"lux": 1e-30})
    v = judge("x", weird, {r: garbage.answer(r.function, r.start, r.count)
                           for r in probe_requests(weird, [weird])})
    assert v.score == 0 and "0/1 readings plausible" in v.reason
    # an answer of silence or an exception to a read of the plan rules out by readings
    req = probe_requests(lux, [lux])[0]
    assert judge("lux_sensor", lux, {req: None}).score == 0
    assert judge("lux_sensor", lux, {req: 2}).reason.endswith("exception 2")


def _journal(found: dict[str, dict[str, Any]], port: str = "/dev/ttyUSB1") -> dict[str, Any]:
    return {"args": {}, "steps": {}, "units": {"gear": {}, "device": {}},
            "modbus": {"lines": {port: {"args": {"ids": [1, 2, 3]}, "found": found,
                                        "done": [], "requests": 0, "elapsed_s": 0,
                                        "finished": True}}}}


def test_gateway_config_takes_the_line_settings_most_devices_use(tmp_path: Path) -> None:
    journal = _journal({
        "1": {"unit": 1, "settings": "9600 8E1", "profile": "eastron_sdm630"},
        "2": {"unit": 2, "settings": "9600 8E1", "profile": "radar_presence"},
        "3": {"unit": 3, "settings": "2400 8N1", "profile": "eastron_sdm120"},
        "4": {"unit": 4, "settings": "9600 8E1", "profile": None, "reason": "nothing fits"},
    })
    base = head(site="norrkoping", gateway="gw-test", latitude=58.6, longitude=16.2)
    text, notes = gateway_config_text(journal, PROFILES, base=base)
    cfg = write_gateway_config(tmp_path / "gateway.toml", text)
    [line] = cfg.modbus
    assert (line.port, line.baudrate, line.parity, line.stopbits) == ("/dev/ttyUSB1", 9600, "E", 1)
    assert [(d.unit, d.profile) for d in line.devices] == [(1, "eastron_sdm630"),
                                                          (2, "radar_presence")]
    assert any("unit 3" in n and "2400 8N1" in n for n in notes)
    assert any("unit 4" in n and "no profile" in n for n in notes)
    with pytest.raises(ValueError, match="already has"):
        gateway_config_text(journal, PROFILES, base=text)


def test_a_config_that_would_not_load_is_not_written(tmp_path: Path) -> None:
    journal = _journal({"1": {"unit": 1, "settings": "9600 8E1", "profile": "eastron_sdm630"}})
    out = tmp_path / "gateway.toml"
    out.write_text("# the old one\n")
    text, _ = gateway_config_text(journal, PROFILES, base=head(
        site="s", gateway="gw", latitude=99.0, longitude=0.0))  # latitude out of range
    with pytest.raises(ConfigError, match="latitude"):
        write_gateway_config(out, text)
    assert out.read_text() == "# the old one\n" and len(list(tmp_path.iterdir())) == 1
    # a device whose profile the gateway would not find
    text, _ = gateway_config_text(journal, PROFILES, base=head(
        site="s", gateway="gw", latitude=58.0, longitude=16.0))
    with pytest.raises(ConfigError, match="no profile 'nonexistent'"):
        write_gateway_config(out, text.replace("eastron_sdm630", "nonexistent"))
    assert math.isclose(write_gateway_config(out, text).latitude, 58.0)


def test_gateway_config_has_the_dali_bus_and_its_luminaires(tmp_path: Path) -> None:
    journal = _journal({"1": {"unit": 1, "settings": "9600 8E1", "profile": "eastron_sdm630"}})
    journal["args"] = {"port": "/dev/ttyACM0", "transport": "firmware-bridge", "bus": "dali1"}
    journal["units"]["gear"] = {"0": {"luminaire_id": 11}, "5": {}, "12": {}}
    journal["steps"]["assign"] = {"rows": [{"id": "STR-001", "zone": "park", "short_address": 5,
                                            "group": 2}]}
    text, notes = gateway_config_text(journal, PROFILES, base=head(
        site="s", gateway="gw", latitude=58.0, longitude=16.0))
    cfg = write_gateway_config(tmp_path / "gateway.toml", text)
    assert [(b.name, b.url, b.transport) for b in cfg.dali] == [
        ("dali1", "/dev/ttyACM0", "firmware-bridge")]
    assert [(lum.id, lum.short_address, lum.groups) for lum in cfg.all_luminaires()] == [
        ("dali1-00", 0, []), ("STR-001", 5, [2]), ("dali1-12", 12, [])]
    assert len(cfg.modbus[0].devices) == 1 and not notes
