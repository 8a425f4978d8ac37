"""Which package may import which (ARCHITECTURE.md, "Which part may import which").

Read from the source with ``ast`` (imports inside functions count too), so a cycle cannot come
back unnoticed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    # (its board emulator puts the field simulator's gear behind the serial line)
    "firmware_bridge": {"gateway", "controller"},
    "gateway": {"controller", "fieldsim"},
    "controller": {"gateway", "firmware_bridge", "fieldsim"},
}
# the shared core imports no role; only its CLI (which starts the roles) reaches them
CORE_FORBIDDEN = {"gateway", "controller", "firmware_bridge", "fieldsim"}


def imported_packages(path: Path) -> set[str]:
    """Top-level package names ``path`` imports (absolute imports only)."""
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_roles_import_only_what_they_may(package: str) -> None:
    bad = {
        str(f.relative_to(ROOT)): sorted(imported_packages(f) & FORBIDDEN[package])
        for f in _files(package)
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_shared_core_imports_no_role() -> None:
    bad = {
        str(f.relative_to(ROOT)): sorted(imported_packages(f) & CORE_FORBIDDEN)
        for f in _files("lykta")
        if "cli" not in f.relative_to(ROOT / "lykta").parts
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_dali_bus_interface_is_a_leaf() -> None:
    """``lykta.dali_bus`` needs only python-dali (and the standard library)."""
    assert imported_packages(ROOT / "lykta" / "dali_bus.py") <= {
        "__future__",
        "collections",
        "dataclasses",
        "typing",
        "dali",
    }
