"""Firmware image transfer: the host's upload plan and the board's receiver. Pure code.

Sequence (each step is an application message, delivered reliably by the link):

1. ``FirmwareBegin(size, sha256, version)`` → ``FirmwareStatus(RECEIVING, offset)``. The board
   keeps a partly received image with the same SHA-256, size and version, so ``offset`` is where
   to resume after an interruption or a board reset; otherwise it starts over at 0.
2. ``FirmwareChunk(offset, data)`` … in order up to ``size`` (no answer; the link acknowledges).
3. ``FirmwareVerify`` → ``VERIFIED``, or ``INCOMPLETE`` with the offset to resume from, or
   ``HASH_MISMATCH`` (the staged image is discarded: it can never be activated).
4. ``FirmwareActivate`` → ``ACTIVATING``; the board reboots into the new image and reports its
   version in ``BoardStatus.firmware_version`` afterwards. Activation without a successful
   verification is refused with ``NOT_VERIFIED``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from firmware_bridge.messages import (
    FirmwareActivate,
    FirmwareBegin,
    FirmwareChunk,
    FirmwareStatus,
    FirmwareVerify,
    TransferError,
    TransferState,
)


class TransferFailed(RuntimeError):
    """The board refused the image for a reason that resuming cannot fix."""


# -- host side ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FirmwareImage:
    """An image to flash and the version string it reports once running."""

    data: bytes
    version: str

    @property
    def sha256(self) -> bytes:
        """SHA-256 of the image, as sent in ``FirmwareBegin``."""
        return hashlib.sha256(self.data).digest()

    @property
    def size(self) -> int:
        """Image size in bytes."""
        return len(self.data)


@dataclass(slots=True)
class Upload:
    """The host's plan for one image: which chunk comes next and what an answer means.

    ``confirmed`` is the board's last reported offset: what is stored for sure.
    """

    image: FirmwareImage
    chunk_size: int
    confirmed: int = 0
    verified: bool = False
    _sha256: bytes = b""

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError(f"chunk size {self.chunk_size} must be positive")
        self._sha256 = self.image.sha256

    def begin(self, tag: int) -> FirmwareBegin:
        """The message that starts or resumes the transfer."""
        return FirmwareBegin(tag, self.image.size, self._sha256, self.image.version)

    def on_begin(self, status: FirmwareStatus) -> int:
        """Take the board's answer to ``begin``; return the offset to send from."""
        self._expect_ok(status, "begin")
        if status.state is not TransferState.RECEIVING or status.size != self.image.size:
            raise TransferFailed(
                f"board answered begin with {status.state.name} for {status.size} bytes"
            )
        if status.offset > self.image.size:
            raise TransferFailed(f"board claims {status.offset} bytes of a {self.image.size}")
        self.confirmed = status.offset
        return status.offset

    def chunks(self, start: int) -> Iterator[FirmwareChunk]:
        """The chunks from ``start`` to the end of the image."""
        data = self.image.data
        for offset in range(start, len(data), self.chunk_size):
            yield FirmwareChunk(offset, data[offset : offset + self.chunk_size])

    def verify(self, tag: int) -> FirmwareVerify:
        """The message asking the board to check the hash."""
        return FirmwareVerify(tag)

    def on_verify(self, status: FirmwareStatus) -> int | None:
        """Take the answer to ``verify``: ``None`` when verified, else the offset to resume.

        Raises :class:`TransferFailed` when the board's hash does not match (the board has
        discarded the image) or it refused for another reason.
        """
        if status.error is TransferError.INCOMPLETE:
            self.confirmed = status.offset
            return status.offset
        self._expect_ok(status, "verify")
        if status.state is not TransferState.VERIFIED:
            raise TransferFailed(f"board answered verify with {status.state.name}")
        self.confirmed = self.image.size
        self.verified = True
        return None

    def activate(self, tag: int) -> FirmwareActivate:
        """The message asking the board to boot the image; only after a verification."""
        if not self.verified:
            raise TransferFailed("refusing to activate an image the board has not verified")
        return FirmwareActivate(tag)

    def on_activate(self, status: FirmwareStatus) -> None:
        """Take the answer to ``activate``."""
        self._expect_ok(status, "activate")
        if status.state is not TransferState.ACTIVATING:
            raise TransferFailed(f"board answered activate with {status.state.name}")

    @staticmethod
    def _expect_ok(status: FirmwareStatus, step: str) -> None:
        if status.error is not TransferError.NONE:
            raise TransferFailed(
                f"board refused {step}: {status.error.name} (state {status.state.name}, "
                f"offset {status.offset} of {status.size})"
            )


# -- board side -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StagedImage:
    """What the board's staging area holds: the announced image and the bytes so far."""

    size: int
    sha256: bytes
    version: str
    received: int


class ImageStorage(Protocol):
    """Where the board keeps the staged image (flash on the board; a file in the emulator)."""

    def staged(self) -> StagedImage | None:
        """The staged image's description, or ``None`` when the area is empty."""
        ...

    def start(self, size: int, sha256: bytes, version: str) -> None:
        """Erase the area and announce a new image."""
        ...

    def append(self, data: bytes) -> None:
        """Store ``data`` after what is already there."""
        ...

    def read(self) -> bytes:
        """All bytes received so far."""
        ...

    def clear(self) -> None:
        """Erase the area."""
        ...

    def install(self) -> None:
        """Make the staged image the one the board boots, then erase the staging area."""
        ...


@dataclass(slots=True)
class MemoryStorage:
    """An :class:`ImageStorage` in RAM (tests; a board without persistence)."""

    meta: tuple[int, bytes, str] | None = None
    data: bytearray = field(default_factory=bytearray)
    installed: tuple[str, bytes] | None = None

    def staged(self) -> StagedImage | None:
        """See :class:`ImageStorage`."""
        if self.meta is None:
            return None
        return StagedImage(*self.meta, received=len(self.data))

    def start(self, size: int, sha256: bytes, version: str) -> None:
        """See :class:`ImageStorage`."""
        self.meta = (size, sha256, version)
        self.data.clear()

    def append(self, data: bytes) -> None:
        """See :class:`ImageStorage`."""
        self.data += data

    def read(self) -> bytes:
        """See :class:`ImageStorage`."""
        return bytes(self.data)

    def clear(self) -> None:
        """See :class:`ImageStorage`."""
        self.meta = None
        self.data.clear()

    def install(self) -> None:
        """See :class:`ImageStorage`."""
        if self.meta is not None:
            self.installed = (self.meta[2], bytes(self.data))
        self.clear()


@dataclass(slots=True)
class Receiver:
    """The board's side of a transfer over an :class:`ImageStorage`.

    After a successful ``activate``, ``activated`` holds the new image's version; the board
    then reboots into it (the emulator clears the staging area and records the version).
    """

    storage: ImageStorage
    capacity: int = 1 << 20
    state: TransferState = TransferState.IDLE
    activated: str | None = None
    rejected_chunks: int = 0

    def __post_init__(self) -> None:
        # After a restart a partly received image waits for a resuming begin.
        self.state = TransferState.IDLE

    def _status(self, tag: int, error: TransferError = TransferError.NONE) -> FirmwareStatus:
        staged = self.storage.staged()
        offset, size = (staged.received, staged.size) if staged else (0, 0)
        return FirmwareStatus(tag, self.state, offset, size, error)

    def begin(self, msg: FirmwareBegin) -> FirmwareStatus:
        """Start or resume receiving the announced image."""
        if msg.size > self.capacity:
            self.state = TransferState.IDLE
            return FirmwareStatus(msg.tag, self.state, 0, msg.size, TransferError.TOO_LARGE)
        staged = self.storage.staged()
        same = staged is not None and (staged.size, staged.sha256, staged.version) == (
            msg.size,
            msg.sha256,
            msg.version,
        )
        if not same or staged is None or staged.received > msg.size:
            self.storage.start(msg.size, msg.sha256, msg.version)
        self.state = TransferState.RECEIVING
        return self._status(msg.tag)

    def chunk(self, msg: FirmwareChunk) -> None:
        """Store a chunk if it continues the image; anything else is counted and dropped.

        There is no answer: a gap shows up as ``INCOMPLETE`` at verification, with the offset
        to resume from.
        """
        staged = self.storage.staged()
        if self.state is not TransferState.RECEIVING or staged is None:
            self.rejected_chunks += 1
            return
        end = msg.offset + len(msg.data)
        if msg.offset > staged.received or end > staged.size:
            self.rejected_chunks += 1
            return
        if end > staged.received:  # skip what a resumed sender sent twice
            self.storage.append(msg.data[staged.received - msg.offset :])

    def verify(self, msg: FirmwareVerify) -> FirmwareStatus:
        """Check the staged image's SHA-256; a mismatch discards it."""
        staged = self.storage.staged()
        if staged is None or self.state is TransferState.IDLE:
            return self._status(msg.tag, TransferError.NO_TRANSFER)
        if staged.received < staged.size:
            return self._status(msg.tag, TransferError.INCOMPLETE)
        if hashlib.sha256(self.storage.read()).digest() != staged.sha256:
            self.storage.clear()
            self.state = TransferState.IDLE
            return FirmwareStatus(msg.tag, self.state, 0, staged.size, TransferError.HASH_MISMATCH)
        self.state = TransferState.VERIFIED
        return self._status(msg.tag)

    def activate(self, msg: FirmwareActivate) -> FirmwareStatus:
        """Accept activation of a verified image (the caller reboots the board)."""
        staged = self.storage.staged()
        if self.state is not TransferState.VERIFIED or staged is None:
            return self._status(msg.tag, TransferError.NOT_VERIFIED)
        self.state = TransferState.ACTIVATING
        self.activated = staged.version
        return self._status(msg.tag)
