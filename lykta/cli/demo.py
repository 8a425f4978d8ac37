"""`lykta demo` (being written)."""

from __future__ import annotations


def demo() -> None:
    """Run the local demo."""
