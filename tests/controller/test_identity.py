"""The controller's stable identity (controller/identity.py): made once in the state dir,
configurable, and a second process on the same state dir refuses to start."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.config import ControllerConfig
from controller.identity import IdentityError, claim
from controller.service import ControllerService


def test_the_default_client_id_is_made_once_and_kept(tmp_path: Path) -> None:
    first = claim(tmp_path, "norrkoping")
    first.release()
    again = claim(tmp_path, "norrkoping")
    again.release()
    assert first.client_id == again.client_id == f"lykta-controller-norrkoping-{first.instance_id}"
    other = claim(tmp_path / "elsewhere", "norrkoping")
    other.release()
    assert other.client_id != first.client_id  # another state dir, another controller


def test_a_configured_client_id_wins(tmp_path: Path) -> None:
    ident = claim(tmp_path, "norrkoping", "ctl-east-1")
    ident.release()
    assert ident.client_id == "ctl-east-1"


def test_a_second_process_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from controller.identity import claim; "
         f"claim({str(tmp_path)!r}, 'norrkoping'); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(IdentityError, match=f"pid {holder.pid}.*own state_dir"):
            claim(tmp_path, "norrkoping")
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 5
    while True:  # the lock dies with its holder, however it died
        try:
            claim(tmp_path, "norrkoping").release()
            break
        except IdentityError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


async def test_the_service_uses_and_holds_its_identity(controller_cfg: ControllerConfig) -> None:
    async with ControllerService(controller_cfg) as svc:
        await svc.wait_ready()
        assert svc.ingest.client_id == svc.identity.client_id
        with pytest.raises(IdentityError):
            ControllerService(controller_cfg)
    async with ControllerService(controller_cfg) as again:  # released at the end
        assert again.ingest.client_id == svc.ingest.client_id


def test_the_cli_refuses_with_a_clear_message(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = tmp_path / "controller.toml"
    cfg.write_text(
        f'site = "norrkoping"\nstate_dir = "{state}"\n[mqtt]\nport = 1\n[api]\nenabled = false\n'
        f'[programs]\nkey_file = "{state}/k.key"\n'
    )
    held = claim(state, "norrkoping")
    try:
        r = subprocess.run(
            [str(Path(sys.executable).parent / "lykta"), "controller", "run", "--config",
             str(cfg)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        held.release()
    assert r.returncode == 1
    assert "another controller" in r.stderr and str(state) in r.stderr.replace("\n", "")
