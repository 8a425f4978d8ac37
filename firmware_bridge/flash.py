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
    """Transfer, verify and activate ``image``; return the version running afterwards.

    ``progress(done, total)`` is called with the bytes the link has delivered. Raises
    :class:`TransferFailed` if the board rejects the image (a hash mismatch never activates)
    or the version reported after the reboot is not the image's, and
    :class:`BoardUnavailable` after ``max_resumes`` interruptions.
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
            upload.on_activate(await _firmware_request(board, upload.activate, 10.0))
            break
        except BoardUnavailable as exc:
            if resumes >= max_resumes:
                raise
            resumes += 1
            log.warning("transfer interrupted (%s); resuming", exc)
    version = await _running_version(board, image, reconnect_timeout_s)
    return FlashResult(version, resumes, tuple(resumed_from), transferred - started)


async def _running_version(board: BoardConnection, image: FirmwareImage, timeout_s: float) -> str:
    # The board answers activate and then reboots: a new session shows the new version.
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        try:
            await board.reconnect(max(0.1, end - loop.time()))
            status = await board.status(timeout_s=max(0.1, end - loop.time()))
        except BoardUnavailable:
            if loop.time() >= end:
                raise
            continue
        if status.firmware_version != image.version:
            if loop.time() >= end:
                raise TransferFailed(
                    f"board runs {status.firmware_version!r} after activation, "
                    f"expected {image.version!r}"
                )
            await asyncio.sleep(0.2)  # not rebooted yet
            continue
        return status.firmware_version
