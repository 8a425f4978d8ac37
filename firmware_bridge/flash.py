"""Flashing an image onto a board: the asyncio shell around ``transfer.Upload``.

Survives interruptions: when the link is lost (the board reset, the cable was pulled, the
emulator was killed and restarted) it waits for a new session, asks the board where it stands
(``FirmwareBegin`` answers with the stored offset) and continues from there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge.connection import BoardConnection, BoardUnavailable
from firmware_bridge.messages import FirmwareChunk, FirmwareStatus, Message
from firmware_bridge.transfer import FirmwareImage, TransferFailed, Upload

log = logging.getLogger(__name__)

#: Interruptions tolerated in one flash before giving up.
MAX_RESUMES = 20
#: How long to wait for the answer to activate (the board reboots right after it).
ACTIVATE_TIMEOUT_S = 3.0
#: How long to wait for the board to come back after a reset or reboot.
RECONNECT_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class FlashResult:
    """What a flash achieved."""

    running_version: str
    resumes: int
    #: the offsets the board reported when the transfer resumed after each interruption
    resumed_from: tuple[int, ...]
    #: seconds from the first begin to the successful verification (the image on the wire)
    transfer_s: float


async def _firmware_request(
    board: BoardConnection, build: Callable[[int], Message], timeout_s: float
) -> FirmwareStatus:
    answer = await board.request(build, timeout_s=timeout_s)
    if not isinstance(answer, FirmwareStatus):
        raise TransferFailed(f"board answered with {type(answer).__name__}, not FirmwareStatus")
    return answer


async def flash(
    board: BoardConnection,
    image: FirmwareImage,
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
    max_resumes: int = MAX_RESUMES,
    reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
) -> FlashResult:
    """Transfer, verify and activate ``image``; return once the board runs it.

    ``progress(done, total)`` is called with the bytes sent so far. Interruptions (link lost,
    board reset, no reboot after activation) resume from the board's stored offset; a board
    that comes back with another version is activated again. Raises :class:`TransferFailed`
    if the board rejects the image (a hash mismatch never activates) and
    :class:`BoardUnavailable` / :class:`TransferFailed` after ``max_resumes`` retries.
    """
    upload = Upload(image, board.link.config.max_payload - FirmwareChunk.HEADER.size)
    resumes = 0
    resumed_from: list[int] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    transferred = started
    while True:
        try:
            await board.wait_up(reconnect_timeout_s)
            # The session's payload limit may differ from the configured one after a reset.
            upload.chunk_size = board.link.max_payload - FirmwareChunk.HEADER.size
            start = upload.on_begin(
                await _firmware_request(board, upload.begin, reconnect_timeout_s)
            )
            if resumes > len(resumed_from):
                resumed_from.append(start)
                log.info("resuming transfer at %d of %d bytes", start, image.size)
            progress(start, image.size)
            while True:
                session = board.sessions
                for chunk in upload.chunks(start):
                    await board.send(chunk, timeout_s=reconnect_timeout_s)
                    progress(min(chunk.offset, image.size), image.size)
                await board.drain(session, timeout_s=reconnect_timeout_s)
                progress(image.size, image.size)
                resume_at = upload.on_verify(
                    await _firmware_request(board, upload.verify, reconnect_timeout_s)
                )
                if resume_at is None:
                    transferred = loop.time()
                    break
                start = resume_at  # the board lost chunks (e.g. reset between begin and now)
            activated_at = loop.time()
            try:
                upload.on_activate(
                    await _firmware_request(board, upload.activate, ACTIVATE_TIMEOUT_S)
                )
            except BoardUnavailable:
                pass  # the answer can be lost as the board reboots: its version will tell
            version = await _version_after_reboot(board, activated_at, reconnect_timeout_s)
        except BoardUnavailable as exc:
            if resumes >= max_resumes:
                raise
            resumes += 1
            log.warning("transfer interrupted (%s); resuming", exc)
            continue
        if version == image.version:
            return FlashResult(version, resumes, tuple(resumed_from), transferred - started)
        # The board rebooted without installing (e.g. it lost power between its answer and
        # the install): the staged image is still there, so this costs a verify.
        if resumes >= max_resumes:
            raise TransferFailed(
                f"board runs {version!r} after activating {image.version!r}, {resumes + 1} times"
            )
        resumes += 1
        upload.verified = False
        log.warning("board came back with %r, not %r: activating again", version, image.version)


async def _version_after_reboot(
    board: BoardConnection, activated_at: float, timeout_s: float
) -> str:
    """The version the board runs once it has rebooted after ``activated_at`` (loop time)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        left = end - loop.time()
        if left <= 0:
            raise BoardUnavailable(f"board did not come back within {timeout_s} s of activation")
        try:
            status = await board.status(timeout_s=min(left, 2.0))
        except BoardUnavailable:
            await asyncio.sleep(0.05)  # the connection starts a new session by itself
            continue
        # Uptime shorter than the time since activation: it has rebooted since.
        if status.uptime_ms / 1000 < loop.time() - activated_at:
            return status.firmware_version
        await asyncio.sleep(0.1)
