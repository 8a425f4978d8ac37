"""python-dali's serial drivers as a :class:`lykta.dali_bus.DaliBus`: Lunatone interfaces.

python-dali (``dali.driver.serial``, extra ``python-dali[driver-serial]``) drives the Lunatone
RS232 LUBA (URI ``luba232:/dev/ttyUSB0``) and SCI RS232 (``scirs232:/dev/ttyS0``) DALI
interfaces. :class:`PythonDaliBus` adapts any such driver to the gateway's frame-level
interface::

    bus = await PythonDaliBus.open("luba232:/dev/ttyUSB0")
    driver = DaliLuminaireDriver(bus, luminaires)

The interface handles send-twice and the reply window itself; frames other masters put on the
bus (e.g. occupancy sensor events) arrive through ``bus_events()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import ParseResult, urlparse

from dali.command import Command
from dali.driver.serial import DriverSerialBase, drivers_map
from dali.frame import ForwardFrame

from lykta.dali_bus import Backward, Collision, DaliReply, NoAnswer


class PythonDaliBus:
    """A python-dali serial driver (connected) as a ``DaliBus``."""

    def __init__(self, driver: DriverSerialBase, *, name: str | None = None) -> None:
        self.driver = driver
        uri = driver.uri
        self.name = name or (uri.path if isinstance(uri, ParseResult) else uri) or repr(driver)

    @classmethod
    async def open(cls, uri: str, *, name: str | None = None) -> PythonDaliBus:
        """Connect the python-dali driver for ``uri`` (scheme ``luba232`` or ``scirs232``)."""
        scheme = urlparse(uri).scheme
        drivers = drivers_map()
        if scheme not in drivers:
            raise ValueError(
                f"DALI interface {uri!r}: unknown scheme {scheme!r} "
                f"(python-dali knows {', '.join(sorted(drivers))})"
            )
        driver = drivers[scheme](uri)
        await driver.connect()
        return cls(driver, name=name)

    async def send_frame(
        self, frame: ForwardFrame, *, send_twice: bool = False, priority: int = 4
    ) -> DaliReply:
        """Send one forward frame through the interface and return the reply."""
        if not 1 <= priority <= 5:
            raise ValueError(f"DALI priority {priority} outside 1..5")
        cmd = Command.from_frame(frame)
        if cmd.sendtwice != send_twice:
            cmd.sendtwice = send_twice  # the interface repeats the frame when this is set
        # python-dali reserves priority 1 for the frames inside a transaction
        response = await self.driver.send(cmd, priority=max(2, priority))
        if response is None or response.raw_value is None:
            return NoAnswer()
        if response.raw_value.error:
            return Collision()
        return Backward(response.raw_value.as_integer)

    async def bus_events(self) -> AsyncIterator[ForwardFrame]:
        """Forward frames the interface saw from other bus masters."""
        queue = self.driver.new_dali_rx_queue()
        while True:
            cmd = await queue.get()
            yield cmd.frame

    async def close(self) -> None:
        """Close the serial connection (python-dali drivers have no public close)."""
        transport = getattr(self.driver, "_transport", None)
        if transport is not None:
            transport.close()
