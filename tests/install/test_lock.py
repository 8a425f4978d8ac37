"""The environment the tests run in is the one ``uv.lock`` describes, and the lock is current.

``./run.sh`` installs with ``uv sync --locked``; these tests catch the cases it cannot: a venv
changed by hand (``pip install X``), or a ``pyproject.toml`` edited without ``./run.sh lock``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "uv.lock"


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _locked() -> dict[str, set[str]]:
    """Package name -> versions the lock pins (a universal lock may hold several per name)."""
    out: dict[str, set[str]] = {}
    for pkg in tomllib.loads(LOCK.read_text())["package"]:
        if "version" in pkg:
            out.setdefault(_norm(pkg["name"]), set()).add(pkg["version"])
    return out


def _uv() -> str:
    uv = Path(sys.executable).with_name("uv")
    found = str(uv) if uv.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed: it is part of the dev extra (./run.sh test installs it)")
    return found


def test_every_installed_distribution_has_the_locked_version() -> None:
    locked = _locked()
    wrong = {}
    for dist in metadata.distributions():
        name = _norm(dist.metadata["Name"])
        if name == "lykta":
            continue
        if name not in locked:
            # pip and setuptools come with a venv that pip made; nothing else may be extra.
            if name not in {"pip", "setuptools", "wheel"}:
                wrong[name] = f"{dist.version} (not in uv.lock)"
        elif dist.version not in locked[name]:
            wrong[name] = f"{dist.version} (uv.lock: {', '.join(sorted(locked[name]))})"
    assert not wrong, f"environment differs from uv.lock: {wrong}; run ./run.sh test to resync"


def test_the_lock_agrees_with_pyproject() -> None:
    result = subprocess.run(
        [_uv(), "lock", "--check", "--offline", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    assert result.returncode == 0, (
        f"uv.lock is out of date with pyproject.toml (run ./run.sh lock): {result.stderr}"
    )

