"""Files that hold secrets (passwords, tokens, private keys) must be private to their owner.

A secret file readable by group or others is refused with a message naming the file and the
``chmod`` that fixes it, rather than used: on a shared controller host or a gateway with a
service account, a world-readable broker password is a leaked one. Secrets are read only
through :func:`read_secret` and never logged.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class SecretFileError(ValueError):
    """A secret file that is missing, unreadable or not private (the message says why)."""


def check_secret_file(path: Path, what: str = "secret") -> Path:
    """``path`` if it exists and only its owner may access it; else :class:`SecretFileError`."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise SecretFileError(f"{path}: no such file ({what})") from None
    except OSError as e:
        raise SecretFileError(f"{path}: cannot read it ({what}): {e.strerror}") from None
    _check_mode(path, mode, what)
    return path


def _check_mode(path: Path, mode: int, what: str) -> None:
    if mode & 0o077:
        raise SecretFileError(
            f"{path} holds a {what} but is readable or writable by group or others "
            f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )


def check_if_present(path: Path | None, what: str = "secret") -> Path | None:
    """Like :func:`check_secret_file` for a configured path, but a file not there yet (a
    config checked before it is deployed) passes: reading it later checks again."""
    if path is not None and Path(path).exists():
        check_secret_file(path, what)
    return path


def read_secret(path: Path, what: str = "secret") -> str:
    """The stripped content of secret file ``path``, refused (:class:`SecretFileError`) when
    group or others may access it. A missing file raises ``FileNotFoundError`` as for any file
    (a process that cannot reconnect without it ends, and systemd shows why)."""
    with open(path) as f:
        _check_mode(Path(path), os.fstat(f.fileno()).st_mode, what)
        return f.read().strip()
