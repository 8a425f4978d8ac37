"""The commissioning journal: what is done, on disk, so that ``lykta commission resume``
continues after Ctrl-C or a power cut without redoing finished steps.

One JSON file, rewritten atomically (temporary file, fsync, rename) after every step and
every unit addressed: whatever moment the power goes, the file is the old or the new version.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

JOURNAL_NAME = "commission.json"
VERSION = 1


class JournalError(ValueError):
    """The journal file is unreadable or from another version (names the file)."""


class Journal:
    """Progress of one commissioning run; ``data`` is plain JSON."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def create(cls, state_dir: Path, args: dict[str, Any]) -> Journal:
        """A new journal in ``state_dir`` remembering the run's ``args`` (for resume)."""
        state_dir.mkdir(parents=True, exist_ok=True)
        journal = cls(state_dir / JOURNAL_NAME, {"version": VERSION, "args": args, "steps": {},
                                                "assigned": {"gear": [], "device": []},
                                                "units": {"gear": {}, "device": {}},
                                                "interrupted": 0})
        journal.save()
        return journal

    @classmethod
    def load(cls, state_dir: Path) -> Journal:
        """The journal in ``state_dir`` (JournalError if there is none or it is damaged)."""
        path = state_dir / JOURNAL_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise JournalError(f"{path}: no commissioning run to resume here") from None
        except (OSError, ValueError) as exc:
            raise JournalError(f"{path}: unreadable journal ({exc})") from None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise JournalError(f"{path}: journal version {data.get('version')!r}, "
                               f"expected {VERSION}")
        return cls(path, data)

    def done(self, step: str) -> bool:
        """Whether ``step`` finished."""
        return step in self.data["steps"]

    def result(self, step: str) -> Any:
        """What ``step`` returned (KeyError if it did not finish)."""
        return self.data["steps"][step]

    def finish(self, step: str, result: Any) -> None:
        """Record ``step`` as finished with ``result`` and save."""
        self.data["steps"][step] = result
        self.save()

    def save(self) -> None:
        """Write the journal atomically."""
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".commission-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
