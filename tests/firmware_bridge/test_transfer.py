"""Firmware transfer, pure: resume after interruptions, verification gates activation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.messages import (
    FirmwareActivate,
    FirmwareChunk,
    FirmwareStatus,
    TransferError,
    TransferState,
)
from firmware_bridge.transfer import (
    FirmwareImage,
    MemoryStorage,
    Receiver,
    TransferFailed,
    Upload,
)


def deliver(upload: Upload, receiver: Receiver, start: int, limit: int | None = None) -> None:
    for i, chunk in enumerate(upload.chunks(start)):
        if limit is not None and i >= limit:
            return
        receiver.chunk(chunk)


@given(
    st.binary(min_size=1, max_size=5000),
    st.integers(1, 700),
    st.lists(st.integers(0, 20), max_size=4),
)
@settings(max_examples=150, deadline=None)
def test_interrupted_transfer_resumes_and_installs_the_exact_image(
    data: bytes, chunk_size: int, cuts: list[int]
) -> None:
    """Invariant: however often the transfer is cut (board restarted: a fresh receiver on the
    same flash), resuming from the offset the board reports ends with exactly the image
    installed, and never re-sends more than one chunk the board already had."""
    image = FirmwareImage(data, "2.1.0")
    storage = MemoryStorage()
    upload = Upload(image, chunk_size)
    for cut in [*cuts, None]:
        receiver = Receiver(storage)  # a reset board starts from what its flash holds
        start = upload.on_begin(receiver.begin(upload.begin(1)))
        assert start == len(storage.data)
        deliver(upload, receiver, start, cut)
    assert upload.on_verify(receiver.verify(upload.verify(2))) is None
    upload.on_activate(receiver.activate(upload.activate(3)))
    assert receiver.activated == "2.1.0"
    storage.install()
    assert storage.installed == ("2.1.0", data)


def test_verify_reports_incomplete_with_the_resume_offset() -> None:
    image = FirmwareImage(bytes(range(256)) * 10, "1.0.1")
    receiver, upload = Receiver(MemoryStorage()), Upload(image, 256)
    upload.on_begin(receiver.begin(upload.begin(1)))
    deliver(upload, receiver, 0, limit=3)
    receiver.chunk(FirmwareChunk(1024, image.data[1024:1280]))  # a gap: refused
    assert receiver.rejected_chunks == 1
    assert upload.on_verify(receiver.verify(upload.verify(2))) == 768


def test_hash_mismatch_never_activates_and_discards_the_image() -> None:
    image = FirmwareImage(b"\x11" * 3000, "3.0.0")
    storage = MemoryStorage()
    receiver, upload = Receiver(storage), Upload(image, 512)
    upload.on_begin(receiver.begin(upload.begin(1)))
    deliver(upload, receiver, 0)
    storage.data[1234] ^= 0xFF  # a flash bit error
    status = receiver.verify(upload.verify(2))
    assert status.error is TransferError.HASH_MISMATCH
    with pytest.raises(TransferFailed, match="HASH_MISMATCH"):
        upload.on_verify(status)
    with pytest.raises(TransferFailed, match="not verified"):
        upload.activate(3)
    refused = receiver.activate(FirmwareActivate(4))  # even if a host asked anyway
    assert refused.error is TransferError.NOT_VERIFIED
    assert receiver.activated is None
    assert storage.staged() is None


def test_a_different_image_starts_over() -> None:
    storage = MemoryStorage()
    old = Upload(FirmwareImage(b"a" * 1000, "1"), 100)
    receiver = Receiver(storage)
    old.on_begin(receiver.begin(old.begin(1)))
    deliver(old, receiver, 0, limit=5)
    new = Upload(FirmwareImage(b"b" * 1000, "2"), 100)
    assert new.on_begin(Receiver(storage).begin(new.begin(2))) == 0


def test_too_large_and_out_of_order_steps_are_refused() -> None:
    receiver = Receiver(MemoryStorage(), capacity=100)
    upload = Upload(FirmwareImage(bytes(200), "9"), 50)
    status = receiver.begin(upload.begin(1))
    assert status.error is TransferError.TOO_LARGE
    with pytest.raises(TransferFailed, match="TOO_LARGE"):
        upload.on_begin(status)
    assert receiver.verify(upload.verify(2)).error is TransferError.NO_TRANSFER
    with pytest.raises(TransferFailed, match="claims"):
        upload.on_begin(FirmwareStatus(1, TransferState.RECEIVING, 999, 200))
