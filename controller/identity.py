"""The controller's stable identity and its claim on the state dir.

A controller's MQTT client id is the key of its persistent broker session and of its place in
the shared subscription. A new id on every start would leave the old session behind, still
drawing its share of every gateway's messages for nobody. So the id is configured
(``[mqtt] client_id``) or made once: ``lykta-controller-{site}-{instance}``, where the
instance id is created in the state dir on first start and read back ever after.

Two processes on one state dir would share that id (the broker would throw one off every time
the other connects) and the InfluxDB spool; the second refuses to start: the state dir is
claimed by an exclusive ``flock`` on ``controller.lock``, released by the kernel when the
holder exits, however it exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

INSTANCE_FILE = "instance-id"
LOCK_FILE = "controller.lock"
_INSTANCE_RE = re.compile(r"^[0-9a-f]{12}$")


class IdentityError(RuntimeError):
    """The state dir cannot be claimed (another process holds it, or it is unusable)."""


@dataclass(slots=True)
class Identity:
    """A claimed state dir: the instance id, the MQTT client id, the held lock."""

    state_dir: Path
    instance_id: str
    client_id: str
    _fd: int | None

    def release(self) -> None:
        """Give the state dir up (also happens when the process exits)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def instance_id(state_dir: Path) -> str:
    """The instance id kept in ``state_dir``, created (durably) if there is none yet."""
    path = Path(state_dir) / INSTANCE_FILE
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if _INSTANCE_RE.match(value):
        return value
    if value:
        raise IdentityError(
            f"{path} holds {value[:40]!r}, not an instance id (12 hex digits): fix or remove it"
        )
    value = uuid.uuid4().hex[:12]
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, f"{value}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    return value


def claim(state_dir: Path, site: str, client_id: str | None = None) -> Identity:
    """Claim ``state_dir`` for this process; raise :class:`IdentityError` if another holds it.

    ``client_id`` is the configured one; without it the id is derived from ``site`` and the
    instance id."""
    state_dir = Path(state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise IdentityError(f"state dir {state_dir}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise IdentityError(
            f"another controller (pid {holder}) is running on state dir {state_dir}; "
            "each controller process needs its own state_dir (and so its own MQTT client id): "
            "see 'Running several controllers' in docs/controller.md"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    try:
        inst = instance_id(state_dir)
    except BaseException:
        os.close(fd)
        raise
    return Identity(state_dir, inst, client_id or f"lykta-controller-{site}-{inst}", fd)
