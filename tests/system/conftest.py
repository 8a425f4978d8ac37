"""Helpers for system tests (the fixtures live in tests/conftest.py)."""

from __future__ import annotations

from lykta.stack import StackInfo, influx_query


def query(stack: StackInfo, db: str, q: str) -> list[dict]:
    """InfluxQL -> the result's series (empty list when there are none)."""
    return influx_query(stack.influx_url, q, db)["results"][0].get("series", [])
