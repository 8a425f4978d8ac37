"""InfluxQL targets for Grafana's InfluxDB data source, and the macros Grafana expands in them.

The foundation SDK ships no InfluxDB query builder, so an InfluxQL target is a ``Dataquery``
variant of our own, registered with the SDK's runtime under the data source type
``influxdb``: the SDK then builds it into panels and reads it back from JSON like its own.

:func:`expand` does what Grafana's InfluxDB data source does to a raw query before sending it
(``$timeFilter``, ``$__interval``, ``$__interval_ms``, dashboard variables), so ``lykta
dashboards check`` runs the very text a Grafana would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Self

from grafana_foundation_sdk.cog import builder, runtime, variants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DATASOURCE_TYPE = "influxdb"
DATASOURCE_UID = "lykta-influxdb"
DATASOURCE = DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class InfluxQuery(variants.Dataquery):
    """A raw InfluxQL target (``rawQuery``), as Grafana's InfluxDB data source stores it."""

    def __init__(
        self,
        query: str = "",
        ref_id: str = "A",
        result_format: str = "time_series",
        alias: str | None = None,
        datasource: DataSourceRef | None = None,
    ) -> None:
        self.query = query
        self.ref_id = ref_id
        self.result_format = result_format
        self.alias = alias
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        """The target as Grafana's dashboard JSON holds it."""
        out: dict[str, object] = {
            "refId": self.ref_id,
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            out["alias"] = self.alias
        if self.datasource is not None:
            out["datasource"] = self.datasource.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Read a target back (keys it does not know are dropped: the round trip shows it)."""
        ds = data.get("datasource")
        return cls(
            query=data.get("query", ""),
            ref_id=data.get("refId", ""),
            result_format=data.get("resultFormat", "time_series"),
            alias=data.get("alias"),
            datasource=DataSourceRef.from_json(ds) if isinstance(ds, dict) else None,
        )


class Target(builder.Builder[variants.Dataquery]):
    """Builder of an :class:`InfluxQuery` (the SDK's panels take builders)."""

    def __init__(self, query: str, ref_id: str = "A", *, table: bool = False,
                 alias: str | None = None) -> None:  # fmt: skip
        self._query = InfluxQuery(query, ref_id, "table" if table else "time_series", alias,
                                  DATASOURCE)  # fmt: skip

    def build(self) -> variants.Dataquery:
        """The target."""
        return self._query


def register() -> None:
    """Make the SDK read ``influxdb`` targets back as :class:`InfluxQuery` (idempotent)."""
    runtime.register_dataquery_variant(
        runtime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=InfluxQuery.from_json)
    )


# Grafana's interval: the range over the panel's data points, rounded to a "nice" step
_NICE_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
           86400, 604800]  # fmt: skip


def interval_s(range_ms: int, max_data_points: int = 1000, min_s: int = 60) -> int:
    """``$__interval`` in seconds for a time range, at least ``min_s`` (Lykta writes its
    minute measurements once a minute: a finer step only shows holes)."""
    raw = max(range_ms / 1000 / max_data_points, min_s)
    return next((n for n in _NICE_S if n >= raw), _NICE_S[-1])


def expand(query: str, *, from_ms: int, to_ms: int, variables: Mapping[str, str],
           max_data_points: int = 1000) -> str:  # fmt: skip
    """The query as Grafana sends it for the range ``from_ms`` … ``to_ms``.

    ``variables`` holds each dashboard variable's value as Grafana interpolates it (for
    "All" the variable's ``allValue``, ``.*`` here). Raises ``KeyError`` naming a variable
    the query uses that has no value.
    """
    step = interval_s(to_ms - from_ms, max_data_points)
    out = query.replace("$timeFilter", f"time >= {from_ms}ms and time <= {to_ms}ms")
    out = out.replace("$__interval_ms", str(step * 1000)).replace("$__interval", f"{step}s")

    def var(m: re.Match[str]) -> str:
        name = m[1] or m[2]
        if name not in variables:
            raise KeyError(name)
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", var, out)
