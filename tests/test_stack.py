"""The local stack: starts real services, reports clear errors, stops what it started."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from lykta.stack import LocalStack, StackError, StackInfo, _pid_alive, influx_query


def test_stack_services_answer(stack: StackInfo, influx_db: str) -> None:
    with socket.create_connection((stack.mqtt_host, stack.mqtt_port), timeout=2):
        pass
    r = influx_query(stack.influx_url, "SHOW DATABASES")
    names = [v[0] for v in r["results"][0]["series"][0]["values"]]
    assert influx_db in names


def test_port_in_use_is_a_clear_error(tmp_path: Path, stack: StackInfo) -> None:
    with pytest.raises(StackError, match=f"port {stack.mqtt_port} .* already in use"):
        LocalStack(tmp_path / "other", mqtt_port=stack.mqtt_port).up()
    assert not (tmp_path / "other" / "stack.json").exists()


def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(StackError, match="not writable"):
        LocalStack(blocker / "sub").up()


def test_missing_binary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lykta.stack as st

    monkeypatch.setattr(st.shutil, "which", lambda name: None)
    monkeypatch.setattr(st.os, "access", lambda *a: False)
    with pytest.raises(StackError, match="apt-get install mosquitto"):
        LocalStack(tmp_path).up()


def test_up_down_stops_exactly_its_processes(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path)
    info = stack.up()
    assert stack.status() == info  # a second look finds the same processes
    assert stack.up() == info  # up on a running stack is idempotent
    assert sorted(stack.down()) == ["influxdb", "mosquitto"]
    assert not _pid_alive(info.mqtt.pid, info.mqtt.config)
    assert not _pid_alive(info.influx.pid, info.influx.config)
    assert stack.status() is None
    assert stack.down() == []
    # our own process was never a target
    assert os.getpid() not in (info.mqtt.pid, info.influx.pid)
