"""The fast encoder writes exactly what ``influxdb_client.Point`` writes, for any input."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client import Point, WritePrecision

from controller.lineprotocol import encode_line, format_field_value

# Names and values full of the characters line protocol must escape, and non-ASCII text.
_tricky = st.sampled_from(list(' ,="\\\n\t\r#') + ["Östra Promenaden", "å", "\u00a0", "é"])
text = st.lists(st.one_of(_tricky, st.characters(codec="utf-8")), max_size=12).map("".join)
field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6).map(float),
    st.integers(-1000, 1000).map(float),  # whole floats: "12", not "12.0" nor "12i"
    text,
)
tag_values = st.one_of(st.none(), text)


def _point(measurement: str, tags: dict, fields: dict, ts: int | None) -> str:
    p = Point(measurement)
    for k, v in tags.items():
        p.tag(k, v)
    for k, v in fields.items():
        p.field(k, v)
    if ts is not None:
        p.time(ts, WritePrecision.MS)
    return p.to_line_protocol()


@settings(max_examples=400, deadline=None)
@given(
    measurement=text.filter(lambda m: not m.startswith("#")),  # Point warns, output the same
    tags=st.dictionaries(text, tag_values, max_size=5),
    fields=st.dictionaries(text, field_values, max_size=5),
    ts=st.one_of(st.none(), st.integers(min_value=0, max_value=2**53)),
)
def test_encode_line_equals_point(measurement: str, tags: dict, fields: dict, ts: int | None):
    # Invariant: for every measurement, tag set, field set and timestamp, the two encoders
    # produce the same string (including the empty string when no field is left).
    assert encode_line(measurement, tags, fields, ts) == _point(measurement, tags, fields, ts)


@settings(max_examples=200, deadline=None)
@given(st.floats())
def test_float_fields_never_look_like_integers(x: float):
    # A float field must never gain an "i" suffix, or InfluxDB would see a type conflict.
    v = format_field_value(x)
    if math.isfinite(x):
        assert v is not None and not v.endswith("i") and float(v) == x
    else:
        assert v is None


def test_examples_from_the_field():
    line = encode_line(
        "luminaire",
        {"site": "norrkoping", "zone": "Östra Promenaden", "group": "", "luminaire": None},
        {"power_w": 12.0, "level": 254, "lit": True, "note": 'say "hej"\\'},
        1_700_000_000_123,
    )
    assert line == (
        "luminaire,site=norrkoping,zone=Östra\\ Promenaden "
        'level=254i,lit=true,note="say \\"hej\\"\\\\",power_w=12 1700000000123'
    )
    assert encode_line("m", {}, {"x": None, "y": float("nan")}, 1) == ""


def test_unsupported_field_type_names_the_value():
    try:
        format_field_value(b"bytes")  # type: ignore[arg-type]
    except TypeError as e:
        assert "bytes" in str(e)
    else:
        raise AssertionError("bytes accepted as a field value")
