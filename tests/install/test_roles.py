"""Role extras: a cabinet's gateway-only install works and carries none of the controller.

A real virtualenv is built from ``uv.lock`` with only the ``gateway`` extra (uv links the wheels
from its cache, which ``./run.sh`` filled: a few seconds, no network), and the real ``lykta``
entry point runs in it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.example_files import example_gateway_config

ROOT = Path(__file__).resolve().parents[2]
# What a cabinet must not load (and, installed from the gateway extra, does not even have).
CONTROLLER_SIDE = ["fastapi", "uvicorn", "sqlalchemy", "matplotlib", "httpx", "influxdb_client"]

pytestmark = pytest.mark.install

# Runs `lykta ...` in-process, then reports which top-level modules were loaded.
_PROBE = """
import json, sys
from lykta.cli.main import app
try:
    app(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "modules": sorted({m.split('.')[0] for m in sys.modules})}))
"""


@pytest.fixture(scope="module")
def gateway_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("gateway-venv") / "venv"
    uv = Path(sys.executable).with_name("uv")
    assert uv.exists(), "uv is part of the dev extra; ./run.sh test installs it"
    result = subprocess.run(
        [str(uv), "sync", "--locked", "--offline", "--quiet", "--no-dev", "--extra", "gateway",
         "--python", sys.executable],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"},
    )
    assert result.returncode == 0, result.stderr
    return venv


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config/gateway.toml, with the /etc/lykta files it names made for real."""
    return example_gateway_config(tmp_path_factory.mktemp("example"))


def _probe(python: Path, *args: str) -> dict:
    out = subprocess.run(
        [str(python), "-c", _PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip(), out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_gateway_only_install_has_no_controller_packages(gateway_venv: Path) -> None:
    found = subprocess.run(
        [str(gateway_venv / "bin" / "python"), "-c",
         "import importlib.util, sys; "
         "print([m for m in sys.argv[1:] if importlib.util.find_spec(m)])", *CONTROLLER_SIDE],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()
    assert found == "[]"


def test_gateway_check_and_run_help_work_in_a_gateway_only_install(
    gateway_venv: Path, example: Path
) -> None:
    lykta = gateway_venv / "bin" / "lykta"
    check = subprocess.run(
        [str(lykta), "gateway", "check", "--config", str(example)],
        capture_output=True, text=True, timeout=120,
    )
    assert check.returncode == 0, check.stderr
    assert "ok: gateway" in check.stdout + check.stderr
    run_help = subprocess.run(
        [str(lykta), "gateway", "run", "--help"], capture_output=True, text=True, timeout=120
    )
    assert run_help.returncode == 0, run_help.stderr
    assert "--config" in run_help.stdout


@pytest.mark.parametrize("where", ["gateway-only", "full"])
def test_gateway_check_loads_nothing_of_the_controller(
    gateway_venv: Path, example: Path, where: str
) -> None:
    # In the full venv everything is installed: only lazy imports keep it out of the process.
    python = gateway_venv / "bin" / "python" if where == "gateway-only" else Path(sys.executable)
    report = _probe(python, "gateway", "check", "--config", str(example))
    assert report["code"] in (0, None), report
    loaded = set(report["modules"])
    assert "gateway" in loaded
    assert loaded.isdisjoint([*CONTROLLER_SIDE, "controller", "fieldsim"]), sorted(
        loaded & {*CONTROLLER_SIDE, "controller", "fieldsim"}
    )


@pytest.mark.parametrize(
    ("argv", "extra"),
    [(["controller", "run", "-c", "controller.toml"], "controller"),
     (["demo", "--duration", "1"], "tools"),
     (["dashboards", "build"], "tools"),
     (["alarms", "--help"], "controller")],
)
def test_a_missing_extra_is_one_line_naming_it(
    gateway_venv: Path, argv: list[str], extra: str
) -> None:
    out = subprocess.run(
        [str(gateway_venv / "bin" / "lykta"), *argv], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 1
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert f"pip install 'lykta[{extra}]'" in lines[0]
