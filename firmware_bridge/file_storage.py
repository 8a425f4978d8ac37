"""The emulated board's flash: staging area and installed image in a directory.

Files in ``directory``: ``staged.json`` (size, SHA-256, version of the announced image),
``staged.bin`` (bytes received so far, appended chunk by chunk, so a killed emulator resumes
where it stopped), ``installed.img`` (the image the board boots: one JSON line with its version
and SHA-256, then the image).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from firmware_bridge.transfer import StagedImage

#: Version the emulated board runs before anything was flashed.
FACTORY_VERSION = "0.0.0-factory"


class FileStorage:
    """An :class:`~firmware_bridge.transfer.ImageStorage` in a directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._meta_path = directory / "staged.json"
        self._data_path = directory / "staged.bin"
        self._installed = directory / "installed.img"
        self._meta: tuple[int, bytes, str] | None = None
        if self._meta_path.exists():
            try:
                raw = json.loads(self._meta_path.read_text())
                self._meta = (int(raw["size"]), bytes.fromhex(raw["sha256"]), str(raw["version"]))
            except (ValueError, KeyError, TypeError):
                self._meta = None  # a torn write: the staging area counts as empty
        self._file = open(self._data_path, "ab")  # noqa: SIM115 - kept open while receiving

    def staged(self) -> StagedImage | None:
        """See ``ImageStorage``."""
        if self._meta is None:
            return None
        return StagedImage(*self._meta, received=self._file.tell())

    def start(self, size: int, sha256: bytes, version: str) -> None:
        """See ``ImageStorage``."""
        self._file.truncate(0)
        self._file.seek(0)
        self._meta = (size, sha256, version)
        meta = {"size": size, "sha256": sha256.hex(), "version": version}
        tmp = self._meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self._meta_path)

    def append(self, data: bytes) -> None:
        """See ``ImageStorage``."""
        self._file.write(data)
        self._file.flush()  # in the OS's hands: survives the emulator being killed

    def read(self) -> bytes:
        """See ``ImageStorage``."""
        self._file.flush()
        return self._data_path.read_bytes()

    def clear(self) -> None:
        """See ``ImageStorage``."""
        self._file.truncate(0)
        self._file.seek(0)
        self._meta = None
        self._meta_path.unlink(missing_ok=True)

    def install(self) -> None:
        """See ``ImageStorage``."""
        if self._meta is not None:
            # Description and image in one file, replaced in one step: after a kill the board
            # runs the old or the new image, and reports the version of the one it runs.
            info = {"version": self._meta[2], "sha256": self._meta[1].hex()}
            tmp = self._installed.with_suffix(".tmp")
            tmp.write_bytes(json.dumps(info).encode() + b"\n" + self.read())
            os.replace(tmp, self._installed)
        self.clear()

    def _read_installed(self) -> tuple[dict[str, str], bytes] | None:
        if not self._installed.exists():
            return None
        head, _, image = self._installed.read_bytes().partition(b"\n")
        return json.loads(head), image

    def installed_version(self) -> str:
        """Version of the installed image (the factory version if none was flashed)."""
        installed = self._read_installed()
        return FACTORY_VERSION if installed is None else str(installed[0]["version"])

    def installed_image(self) -> bytes | None:
        """The installed image, if one was flashed."""
        installed = self._read_installed()
        return None if installed is None else installed[1]

    def close(self) -> None:
        """Close the staging file."""
        self._file.close()
