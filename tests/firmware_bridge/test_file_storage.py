"""The emulated board's flash keeps a partial transfer and the installed image across restarts."""

from __future__ import annotations

from pathlib import Path

from firmware_bridge.file_storage import FACTORY_VERSION, FileStorage
from firmware_bridge.transfer import StagedImage


def test_partial_transfer_and_installed_image_survive_a_restart(tmp_path: Path) -> None:
    flash = FileStorage(tmp_path)
    assert flash.staged() is None and flash.installed_version() == FACTORY_VERSION
    flash.start(10, b"\x01" * 32, "2.0")
    flash.append(b"abcd")
    flash.close()  # the emulator is killed here

    flash = FileStorage(tmp_path)
    assert flash.staged() == StagedImage(10, b"\x01" * 32, "2.0", received=4)
    flash.append(b"efghij")
    assert flash.read() == b"abcdefghij"
    flash.install()
    assert flash.staged() is None
    flash.close()

    flash = FileStorage(tmp_path)
    assert flash.installed_version() == "2.0"
    assert flash.installed_image() == b"abcdefghij"
    assert flash.staged() is None
    flash.close()


def test_torn_description_counts_as_empty(tmp_path: Path) -> None:
    (tmp_path / "staged.json").write_text('{"size": 1')
    flash = FileStorage(tmp_path)
    assert flash.staged() is None
    flash.close()
