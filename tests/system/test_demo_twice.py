"""`lykta demo --keep-stack` twice on the same data dir (issue #10): the second run finds the
first run's broker, sessions and retained births, and still stores every reading it published
— the controller keeps its identity (and so its broker session) across runs — and a healthy
site has no alarm open while it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _demo(data_dir: Path, summary: Path) -> dict:
    lykta = Path(sys.executable).parent / "lykta"
    r = subprocess.run(
        [str(lykta), "demo", "--duration", "8", "--luminaires", "8", "--keep-stack",
         "--data-dir", str(data_dir), "--summary-json", str(summary)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return json.loads(summary.read_text())


def test_demo_twice_on_the_same_data_dir_stores_everything_both_times(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    lykta = Path(sys.executable).parent / "lykta"
    try:
        first = _demo(data, tmp_path / "first.json")
        identity = (data / "controller" / "instance-id").read_text()
        second = _demo(data, tmp_path / "second.json")
    finally:
        subprocess.run([str(lykta), "stack", "down", "--data-dir", str(data / "stack")],
                       capture_output=True, timeout=60)  # fmt: skip
    for run in (first, second):
        assert run["readings_published"] > 0
        assert run["readings_stored"] == run["readings_published"], run
        assert run["seq_gaps"] == 0 and run["malformed"] == 0, run
        assert run["open_alarms"] == 0, run  # a healthy site raises nothing while it runs
    assert (data / "controller" / "instance-id").read_text() == identity  # the same controller
