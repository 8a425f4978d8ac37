"""InfluxDB line protocol, encoded fast and exactly as ``influxdb_client.Point`` does.

Pure functions, no I/O. The output of :func:`encode_line` is byte-for-byte what
``Point(measurement).tag(...).field(...).time(ts, WritePrecision.MS).to_line_protocol()``
produces (proven with hypothesis in ``tests/ingest/test_lineprotocol.py``), including the
Point's quirks, which we keep so that either encoder can write the same series:

- tags and fields are sorted by key;
- a tag whose value is ``None`` is left out, and so is a tag whose escaped key or value is
  empty; a tag value ending in a backslash gets a trailing escaped space (``\\ ``) so the
  backslash cannot escape the separator;
- a field whose value is ``None`` or a non-finite float is left out; a line with no fields
  left is the empty string (InfluxDB would reject it);
- floats are ``repr`` without a trailing ``.0`` (``12.0`` -> ``12``, still a float to
  InfluxDB because it has no ``i`` suffix), integers get ``i``, booleans are ``true``/``false``,
  strings are double-quoted with ``"`` and ``\\`` escaped;
- the measurement escapes comma, space and ``\\n \\t \\r``; keys and tag values also ``=``.

Timestamps are integers in the writer's precision; Lykta writes milliseconds since the epoch
(``precision=ms``) everywhere.

Escaping is cached: tag values and keys come from bounded sets (that is the rule of the data
model), so a dictionary lookup replaces ``str.translate`` on the hot path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

FieldValue = float | int | bool | str
"""What a field may hold. ``None`` (and NaN/inf) means "leave this field out"."""

_ESCAPE_MEASUREMENT = str.maketrans(
    {",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_ESCAPE_KEY = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})

# Bounded caches of escaped names: cleared when they grow past this many entries, so a
# stream of unbounded names (which the data model forbids) costs speed, never memory.
_CACHE_LIMIT = 100_000
_measurements: dict[str, str] = {}
_keys: dict[str, str] = {}
_tag_values: dict[str, str] = {}
_prefixes: dict[tuple[str, tuple[tuple[str, str | None], ...]], str] = {}


def _remember(cache: dict, key: object, value: str) -> str:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


def escape_measurement(name: str) -> str:
    """Escape a measurement name (comma, space, newline, tab, carriage return)."""
    got = _measurements.get(name)
    if got is None:
        got = _remember(_measurements, name, str(name).translate(_ESCAPE_MEASUREMENT))
    return got


def escape_key(key: str) -> str:
    """Escape a tag key or field key (comma, equals, space, newline, tab, carriage return)."""
    got = _keys.get(key)
    if got is None:
        got = _remember(_keys, key, str(key).translate(_ESCAPE_KEY))
    return got


def escape_tag_value(value: str) -> str:
    """Escape a tag value like a key; a trailing backslash gets an escaped space after it."""
    got = _tag_values.get(value)
    if got is None:
        esc = str(value).translate(_ESCAPE_KEY)
        if esc.endswith("\\"):
            esc += " "
        got = _remember(_tag_values, value, esc)
    return got


def format_float(value: float) -> str:
    """A float field value: ``repr`` without the trailing ``.0`` of whole numbers."""
    s = repr(value)
    return s[:-2] if s.endswith(".0") else s


def format_field_value(value: FieldValue | None) -> str | None:
    """Encode one field value, or ``None`` when the Point would leave the field out."""
    if value is None:
        return None
    t = type(value)
    if t is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            return None
        return format_float(value)  # type: ignore[arg-type]
    if t is int:
        return f"{value}i"
    if t is bool:
        return "true" if value else "false"
    if t is str:
        return '"' + value.translate(_ESCAPE_STRING) + '"'  # type: ignore[union-attr]
    # Subclasses (IntEnum, StrEnum, numpy-free float subclasses) take the slow, exact path.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(float(value)) if math.isfinite(value) else None
    if isinstance(value, int):
        return f"{int(value)}i"
    if isinstance(value, str):
        return '"' + str(value).translate(_ESCAPE_STRING) + '"'
    raise TypeError(f"line protocol: field value {value!r} has unsupported type {t.__name__}")


def series_prefix(measurement: str, tags: Mapping[str, str | None]) -> str:
    """``measurement,tag=value,... `` (with the trailing space): the series key of a line.

    Cached per (measurement, tags): the data model keeps tags bounded, so this is a dictionary
    lookup on the hot path.
    """
    key = (measurement, tuple(sorted(tags.items())))
    got = _prefixes.get(key)
    if got is not None:
        return got
    parts = [escape_measurement(measurement)]
    for tag_key, tag_value in key[1]:
        if tag_value is None:
            continue
        k = escape_key(tag_key)
        v = escape_tag_value(tag_value)
        if k and v:
            parts.append(f"{k}={v}")
    return _remember(_prefixes, key, ",".join(parts) + " ")


def encode_fields(fields: Mapping[str, FieldValue | None]) -> str:
    """``key=value,...`` sorted by key, leaving out ``None`` and non-finite floats."""
    out = []
    for key, value in sorted(fields.items()):
        v = format_field_value(value)
        if v is not None:
            out.append(f"{escape_key(key)}={v}")
    return ",".join(out)


def encode_line(
    measurement: str,
    tags: Mapping[str, str | None],
    fields: Mapping[str, FieldValue | None],
    ts: int | None = None,
) -> str:
    """One line of line protocol, identical to ``Point.to_line_protocol()``.

    ``ts`` is an integer timestamp in the write precision (Lykta: ms since the epoch) or
    ``None`` to let the server stamp it. Returns ``""`` when no field is left (as Point does).
    """
    f = encode_fields(fields)
    if not f:
        return ""
    if ts is None:
        return f"{series_prefix(measurement, tags)}{f}"
    return f"{series_prefix(measurement, tags)}{f} {int(ts)}"
