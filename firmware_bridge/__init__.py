"""The serial link between the gateway and the DALI-master board, and an emulator of the board.

Pure core (no I/O, clock injected): ``framing`` (COBS + CRC-16 frames), ``messages`` (typed
messages and their payloads), ``link`` (sessions, ACK/NAK, retransmission), ``transfer``
(firmware image transfer), ``board`` (what the board firmware does).

I/O shell (asyncio): ``port`` (pyserial URLs, pseudo-terminals), ``driver`` (runs a core object
on a port), ``connection`` (the gateway's connection to a board), ``flash`` (image transfer
with resume),
``emulator`` and ``file_storage`` (the emulated board). Protocol: ``docs/firmware-bridge.md``.

The package depends on :mod:`lykta` alone; the gateway's ``DaliBus`` on a board lives in
:mod:`gateway.dali.board`.
"""
